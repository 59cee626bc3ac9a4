"""Plain Space, arrows and Delete go to the widget that uses them, never to a window shortcut."""

from __future__ import annotations

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox, QComboBox,
                               QGraphicsView, QLineEdit, QPlainTextEdit, QTextEdit, QWidget)


class KeyRouter(QObject):
    """Leaves plain Space, arrows and Delete to the widget that has the focus when it uses them
    (text fields, the sketch canvas, lists, sliders, buttons), so the window's shortcuts for
    play/pause and frame step never steal them; inside ``player`` (the preview) they go to the
    shortcuts. Install it on the application."""

    KEYS = {Qt.Key.Key_Space, Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Delete, Qt.Key.Key_Backspace}
    TAKERS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox, QGraphicsView, QAbstractItemView,
              QAbstractSlider, QComboBox)

    def __init__(self, player: QWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._player = player

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(obj, QWidget):
            key = event.key()  # type: ignore[attr-defined]
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier  # type: ignore[attr-defined]
            if key in self.KEYS and mods == Qt.KeyboardModifier.NoModifier and self.widget_takes(obj, key):
                event.accept()
                return True  # handled: the key goes to the widget as a key press, not to a shortcut
        return False

    def widget_takes(self, widget: QWidget, key: int) -> bool:
        if widget is self._player or self._player.isAncestorOf(widget):
            return isinstance(widget, (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox))
        if isinstance(widget, self.TAKERS):
            return True
        return key == Qt.Key.Key_Space and isinstance(widget, QAbstractButton)


__all__ = ["KeyRouter"]
