"""The PySide6 desktop app: views of the application layer (:mod:`shotsketch.app`) and their wiring.
PySide6 is imported only under this package; see docs/DESIGN.md for the layers."""
