"""Input widgets whose limits come from the one table of ranges (core/ranges.py), so the toolbar,
Settings and the CLI accept the same values."""

from __future__ import annotations

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import QDoubleSpinBox, QLineEdit, QSlider, QSpinBox, QWidget

from shotsketch.core.ranges import RANGES, RangeName

SLIDER_STEPS_PER_UNIT = 10  # the layout-strength slider moves in tenths


def spin_box(name: RangeName, *, suffix: str = "", prefix: str = "",
             parent: QWidget | None = None) -> QSpinBox | QDoubleSpinBox:
    """A spin box limited to the range ``name``, stepping by its step, with its label as tooltip."""
    r = RANGES[name]
    box: QSpinBox | QDoubleSpinBox
    if r.whole:
        box = QSpinBox(parent)
        box.setRange(int(r.low), int(r.high))
        box.setSingleStep(int(r.step))
    else:
        box = QDoubleSpinBox(parent)
        box.setDecimals(2)
        box.setRange(float(r.low), float(r.high))
        box.setSingleStep(float(r.step))
    box.setSuffix(suffix)
    box.setPrefix(prefix)
    box.setValue(r.default)  # type: ignore[arg-type]
    return box


def strength_slider(parent: QWidget | None = None) -> QSlider:
    """A horizontal slider over the layout-strength range, in tenths."""
    from PySide6.QtCore import Qt

    r = RANGES["layout_strength"]
    slider = QSlider(Qt.Orientation.Horizontal, parent)
    slider.setRange(round(r.low * SLIDER_STEPS_PER_UNIT), round(r.high * SLIDER_STEPS_PER_UNIT))
    return slider


class SeedEdit(QLineEdit):
    """The seed as digits: every seed of the range (0 .. 2^64-1), which a spin box cannot hold."""

    valueChanged = Signal(object)  # an int of up to 64 bits (a Signal(int) is 32)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = 0
        self.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,20}"), self))
        self.setText("0")
        self.setPlaceholderText("seed")
        self.editingFinished.connect(self._commit)
        self.textEdited.connect(lambda _t: self._commit(quiet_empty=True))
        self.setFixedWidth(self.fontMetrics().horizontalAdvance("0" * 11) + 14)  # longer seeds scroll

    def value(self) -> int:
        return self._value

    def setValue(self, value: int) -> None:  # noqa: N802 - as the spin boxes it stands beside
        value = int(min(max(value, RANGES["seed"].low), RANGES["seed"].high))
        if self.text() != str(value):
            self.setText(str(value))
        if value != self._value:
            self._value = value
            self.valueChanged.emit(value)

    def _commit(self, quiet_empty: bool = False) -> None:
        text = self.text().strip()
        if not text:
            if not quiet_empty:
                self.setText(str(self._value))
            return
        self.setValue(int(text))


__all__ = ["SeedEdit", "SLIDER_STEPS_PER_UNIT", "spin_box", "strength_slider"]
