"""Stand-ins for panels whose modules are not in this build yet.

The window imports the real panels (SketchPanel, PromptPanel, TimelinePanel, LibraryPanel)
lazily; when a module is missing it uses these, which keep the same public API (see
CONTRACTS.md) with the plainest widgets, so the rest of the window works unchanged.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QLabel, QLineEdit, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from shotsketch.core.layout import Layout

log = logging.getLogger(__name__)


def load_panel_class(module: str, name: str) -> type | None:
    """The real panel class, or None when its module is not in this build."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return getattr(mod, name, None)


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setObjectName("placeholderNote")
    return label


class PlaceholderSketchPanel(QWidget):
    sketchChanged = Signal(object)

    def __init__(self, undo_stack: QUndoStack | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = undo_stack or QUndoStack(self)
        self.canvas = None
        self._layout = Layout()
        self._label = _note("")
        box = QVBoxLayout(self)
        box.addWidget(self._label)
        self._show()

    def sketch(self) -> Layout:
        return self._layout

    def set_sketch(self, layout: Layout, undoable: bool = True) -> None:
        self._layout = layout
        self._show()
        self.sketchChanged.emit(layout)

    def _show(self) -> None:
        names = ", ".join(self._layout.names) or "no subjects"
        self._label.setText(f"Sketch canvas (not in this build)\nSubjects: {names}")


class PlaceholderPromptPanel(QWidget):
    promptChanged = Signal(str)
    draftRequested = Signal(str)
    generateRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clause = ""
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("Describe the shot")
        self.negative_edit = QLineEdit()
        self.negative_edit.setPlaceholderText("Negative prompt")
        self.clause_label = QLabel()
        self.clause_label.setWordWrap(True)
        generate = QPushButton("Generate")
        generate.clicked.connect(self.generateRequested)
        box = QVBoxLayout(self)
        box.addWidget(self.prompt_edit, 1)
        box.addWidget(self.negative_edit)
        box.addWidget(self.clause_label)
        box.addWidget(generate)
        self.prompt_edit.textChanged.connect(lambda: self.promptChanged.emit(self.prompt()))
        self.negative_edit.textChanged.connect(lambda _t: self.promptChanged.emit(self.prompt()))

    def prompt(self) -> str:
        return self.prompt_edit.toPlainText()

    def negative_prompt(self) -> str:
        return self.negative_edit.text()

    def final_prompt(self) -> str:
        prompt = self.prompt().strip()
        if self._clause and self._clause.lower() not in prompt.lower():
            return f"{prompt.rstrip('.')}. {self._clause}".strip(". ") if prompt else self._clause
        return prompt

    def set_prompt(self, text: str) -> None:
        if text != self.prompt():
            self.prompt_edit.setPlainText(text)

    def set_negative_prompt(self, text: str) -> None:
        if text != self.negative_prompt():
            self.negative_edit.setText(text)

    def set_spatial_clause(self, text: str) -> None:
        self._clause = text
        self.clause_label.setText(f"Spatial clause: {text}" if text else "")


class PlaceholderTimelinePanel(QWidget):
    frameChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._path: Path | None = None
        self._frame = 0
        self._count = 0
        self._playing = False
        self._label = _note("Timeline preview (not in this build)\nNo take loaded")
        box = QVBoxLayout(self)
        box.addWidget(self._label)

    def load_take(self, path: Path, layout: Layout | None = None, heatmaps: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._frame = 0
        self._label.setText(f"Timeline preview (not in this build)\nTake: {self._path.name}")

    def loaded_path(self) -> Path | None:
        return self._path

    def compare_with(self, path: Path | None) -> None:
        pass

    def play(self) -> None:
        self._playing = True

    def pause(self) -> None:
        self._playing = False

    def toggle_play(self) -> None:
        self._playing = not self._playing

    def step(self, n: int) -> None:
        self.seek(self._frame + n)

    def seek(self, frame: int) -> None:
        self._frame = max(0, frame)
        self.frameChanged.emit(self._frame)

    def set_loop(self, loop: bool) -> None:
        pass

    def set_fps(self, fps: float) -> None:
        pass

    def set_overlay(self, on: bool) -> None:
        pass

    def current_frame(self) -> int:
        return self._frame

    def frame_count(self) -> int:
        return self._count


class PlaceholderLibraryPanel(QWidget):
    shotOpened = Signal(int)
    variantSelected = Signal(int)
    branchRequested = Signal(int)
    takeActivated = Signal(int)
    exportRequested = Signal(list)

    def __init__(self, library: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self._label = _note("")
        box = QVBoxLayout(self)
        box.addWidget(self._label)
        self.refresh()

    def refresh(self) -> None:
        lines = ["Library (not in this build)"]
        try:
            for project in self.library.list_projects():
                lines.append(project.name)
                for shot in self.library.list_shots(project.id):
                    takes = sum(len(self.library.list_takes(v.id)) for v in self.library.list_variants(shot.id))
                    lines.append(f"  {shot.name} — {takes} take(s)")
        except Exception:  # noqa: BLE001 - a placeholder never fails the window
            log.debug("placeholder library refresh failed", exc_info=True)
        self._label.setText("\n".join(lines))

    def select_shot(self, shot_id: int) -> None:
        pass
