"""The one place errors surface: a sentence a person can act on, shown once; details to the log.

Every part of the window reports through :meth:`ErrorReporter.report`. The message appears in
the status bar and in a non-modal message box (one at a time; repeats of the same message
while it is showing are folded into it), and the full detail goes to the log file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

from shotsketch.logs import log_file

log = logging.getLogger("shotsketch.ui")


def sentence(text: str) -> str:
    """An engine message as a sentence: capital first letter, full stop."""
    text = text.strip()
    if not text:
        return "Something went wrong."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


@dataclass(frozen=True)
class Problem:
    message: str  # one or two sentences, in the user's words
    detail: str = ""  # for the log
    title: str = "Something went wrong"


class ErrorReporter(QObject):
    reported = Signal(object)  # Problem

    def __init__(self, parent_widget: QWidget | None = None, status_bar: QStatusBar | None = None,
                 show_dialogs: bool = True) -> None:
        super().__init__(parent_widget)
        self._parent = parent_widget
        self._status = status_bar
        self.show_dialogs = show_dialogs
        self._box: QMessageBox | None = None
        self.history: list[Problem] = []

    def report(self, message: str, detail: str = "", title: str = "Something went wrong") -> Problem:
        problem = Problem(message.strip(), detail, title)
        log.error("%s%s", problem.message, f"\n{detail}" if detail else "")
        self.history.append(problem)
        if self._status is not None:
            self._status.showMessage(problem.message, 15_000)
        if self.show_dialogs:
            self._show(problem)
        self.reported.emit(problem)
        return problem

    def _show(self, problem: Problem) -> None:
        if self._box is not None and self._box.isVisible():
            if self._box.text() == problem.message:
                return
            self._box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, problem.title, problem.message,
                          QMessageBox.StandardButton.Ok, self._parent)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setInformativeText(f"Details are in the log file: {log_file()}")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.finished.connect(self._forget_box)
        self._box = box
        box.show()

    def _forget_box(self, _result: int = 0) -> None:
        self._box = None

    def close_dialog(self) -> None:
        box, self._box = self._box, None
        if box is not None:
            box.close()
