"""Shotsketch: sketch a shot, generate it locally with Wan2.2 TI2V-5B, hand it to your editor."""

__version__ = "0.1.0"

DEMO_LABEL = "demo model — random weights, for trying the interface"
