"""The one table of ranges for every number a person can set on a shot.

The toolbar's widgets, the Settings dialog, the CLI's options, request validation and the
loading of stored values (settings, shot states, recipes, queued jobs) all read :data:`RANGES`,
so a value accepted in one place is accepted everywhere, and one shown in a widget is the one
used to generate. A value that is stored outside its range is brought inside by :func:`clamp`,
which logs a line saying so (nothing is silently cut).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 32
"""Width and height are multiples of this: 16x VAE compression times the transformer's 2x2 patches."""

FRAME_STEP = 4
"""Clip lengths are 4k+1 frames (the VAE compresses time by 4)."""

FAST_MODE_STEPS = 16
"""Fast mode: UniPC at 16 steps instead of the official 50 (bench/RESULTS.md)."""

MAX_SEED = 2**64 - 1
"""The largest seed: torch's generators take any unsigned 64-bit number, and a recipe (JSON) holds it."""

RangeName = Literal["width", "height", "frames", "steps", "guidance", "seed", "layout_strength", "fps"]


@dataclass(frozen=True)
class Range:
    """The values a setting may take: ``low <= value <= high``, in steps of ``step`` from
    ``origin`` (``origin + k * step``); ``default`` is what a new shot gets."""

    name: str
    label: str  # the words a person reads ("layout guidance strength")
    low: int | float
    high: int | float
    default: int | float
    step: int | float = 1
    origin: int | float = 0
    whole: bool = True  # a whole number (int) rather than a decimal (float)

    def contains(self, value: float) -> bool:
        """Inside the range and on its grid (a multiple of 32 for sizes, 4k+1 for frames)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if not self.low <= value <= self.high:
            return False
        return not self.whole or (int(value) == value and (int(value) - self.origin) % self.step == 0)

    def nearest(self, value: float) -> int | float:
        """The valid value closest to ``value`` (inside the range, on its grid)."""
        if isinstance(value, float) and not math.isfinite(value):
            return self.default
        value = min(max(value, self.low), self.high)
        if not self.whole:
            return float(value)
        k = round((value - self.origin) / self.step)
        snapped = int(self.origin + k * self.step)
        if snapped > self.high:
            snapped -= int(self.step)
        if snapped < self.low:
            snapped += int(self.step)
        return snapped

    def problem(self, value: float) -> str | None:
        """None when ``value`` is valid; otherwise one sentence saying what to change."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{self.label} must be a number"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.label} must be between {self.low:g} and {self.high:g} (got {value})"
        if self.whole and int(value) != value:
            return f"{self.label} must be a whole number (got {value})"
        if self.name in ("width", "height") and value <= 0:
            return f"{self.label} must be positive (got {value}); try {self.default}"
        if self.name in ("width", "height") and value % self.step:
            return (f"{self.label} {value} is not a multiple of {self.step}; the nearest valid {self.label} is "
                    f"{max(self.step, round(value / self.step) * self.step)}")
        if self.name == "frames" and (value < 1 or (value - self.origin) % self.step):
            return (f"frames must be of the form 4k+1 (1, 5, ..., 17, ..., 121); the nearest to {value} is "
                    f"{self.nearest(value)}")
        if self.name in ("width", "height", "frames") and value > self.high:
            return f"{self.label} {value} is more than {self.high}"
        if not self.low <= value <= self.high:
            return f"{self.label} must be between {self.low:g} and {self.high:g} (got {value:g})" \
                if not self.whole else f"{self.label} must be between {self.low} and {self.high} (got {value})"
        return None


RANGES: dict[str, Range] = {r.name: r for r in (
    Range("width", "width", SIZE_MULTIPLE, 2048, 832, step=SIZE_MULTIPLE),
    Range("height", "height", SIZE_MULTIPLE, 2048, 480, step=SIZE_MULTIPLE),
    Range("frames", "frames", 1, 241, 17, step=FRAME_STEP, origin=1),
    Range("steps", "steps", 1, 200, 25),
    Range("guidance", "guidance", 1.0, 20.0, 5.0, step=0.5, whole=False),
    Range("seed", "seed", 0, MAX_SEED, 0),
    Range("layout_strength", "layout guidance strength", 0.0, 3.0, 1.0, step=0.1, whole=False),
    Range("fps", "fps", 1, 120, 24),
)}
"""Every range, by name. The one place these numbers are written."""


def check(name: RangeName, value: float) -> None:
    """Raise ValueError with the range's sentence when ``value`` is not valid for ``name``."""
    problem = RANGES[name].problem(value)
    if problem:
        raise ValueError(problem)


def clamp(name: RangeName, value: object, *, where: str = "") -> int | float:
    """``value`` brought into its range (and onto its grid); a change is logged with ``where``
    (e.g. "settings file", "shot 3"). A value that is not a number becomes the default, logged too."""
    r = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        log.warning("%s%s %r is not a number; using %s", f"{where}: " if where else "", r.label, value, r.default)
        return r.default
    if r.contains(value):
        return int(value) if r.whole else float(value)
    fixed = r.nearest(value)
    log.warning("%s%s %s is outside %s..%s; using %s", f"{where}: " if where else "", r.label, value,
                r.low, r.high, fixed)
    return fixed


__all__ = ["RANGES", "Range", "RangeName", "check", "clamp", "MAX_SEED", "SIZE_MULTIPLE", "FRAME_STEP",
           "FAST_MODE_STEPS"]
