"""The LoRA list: the open shot's LoRA files, each with its strength, in the order they are fused.

A view of the open shot's model (:attr:`model`, ``shot.loras``): Add LoRA… takes ``.safetensors``
files (a pickle, a file that cannot be read or one that holds no LoRA weights is refused with one
sentence under the list: :func:`shotsketch.app.loras.lora_file_problem`); each row has its
strength (-4 to 4; 1 is as trained) and a Remove button. Every change is one edit on the window's
undo stack (Edit ▸ Undo, Ctrl+Z in the panel); spinning one strength is one edit. The LoRAs are
saved with the shot, are part of its variant, and go into every request Generate queues.
A file moved or deleted since it was added shows "not found" on its row with Locate…, which points
the row at where the file is now (same place, same strength; one undoable edit).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView, QDoubleSpinBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
    QTableWidgetItem, QToolButton, QVBoxLayout, QWidget,
)

from shotsketch.app import loras as lora_list
from shotsketch.app.shot import OpenShot
from shotsketch.engine.requests import MAX_LORA_STRENGTH, MAX_LORAS, LoraChoice, LoraError
from shotsketch.ui.errors import sentence
from shotsketch.ui.shot_view import ShotView
from shotsketch.ui.undo import LorasEdit

FILE_FILTER = "LoRA files (*.safetensors)"
EMPTY_NOTE = ("No LoRAs: the model as it is. Add LoRA files (.safetensors) made for Wan2.2 TI2V-5B; "
              "each is fused into the model with its strength.")


class LoraPanel(QWidget, ShotView):
    lorasChanged = Signal(int)  # how many LoRAs the shot has now

    def __init__(self, undo_stack: QUndoStack | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loraPanel")
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self._rows: list[tuple[str, bool]] = []  # (path, missing) of each row as built
        self._shown: tuple[LoraChoice, ...] = ()  # the list as the undo stack last knew it
        self._applying = False
        self._missing_said = False  # the line under the list is about files not found
        self._last_folder = ""
        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName("loraTable")
        self.table.setHorizontalHeaderLabels(["LoRA file", "Strength", ""])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.add_button = QPushButton("Add LoRA…")
        self.add_button.setObjectName("addLora")
        self.add_button.setToolTip(f"Add LoRA files (.safetensors only; at most {MAX_LORAS})")
        self.add_button.clicked.connect(self.choose_files)
        self.note = QLabel(EMPTY_NOTE)
        self.note.setObjectName("placeholderNote")
        self.note.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setObjectName("problemText")
        self.problem.setWordWrap(True)
        self.problem.setVisible(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addLayout(buttons)
        box.addWidget(self.table, 1)
        box.addWidget(self.note)
        box.addWidget(self.problem)

    # -- the model
    def bind(self, shot: OpenShot) -> None:
        self.observe(shot.events.opened, self._on_opened)
        self.observe(shot.events.loras, self._on_loras)
        self._on_opened(shot)

    def _on_opened(self, shot: OpenShot) -> None:
        """Another shot: its list (the sketch panel gives the shared undo stack a fresh history)."""
        self.set_problem(None)
        self._shown = shot.loras
        self.show_loras(shot.loras)

    def _on_loras(self, loras: tuple[LoraChoice, ...]) -> None:
        if not self._applying and loras != self._shown:  # changed elsewhere (a variant put back): one undoable edit
            self.undo_stack.push(LorasEdit(self._apply, self._shown, loras, "LoRAs of the variant"))
        self._shown = loras
        self.show_loras(loras)

    def loras(self) -> tuple[LoraChoice, ...]:
        return self._model.loras if self._model is not None else ()

    def refresh(self) -> None:
        """Look again at which files are there (a file moved since it was added)."""
        self.show_loras(self.loras())

    def show_loras(self, loras: tuple[LoraChoice, ...]) -> None:
        rows = [(c.path, lora_list.is_missing(c)) for c in loras]
        if rows != self._rows:
            self._rebuild(loras, rows)
            gone = [c.name for c, (_p, missing) in zip(loras, rows) if missing]
            if gone:
                self.set_problem(f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} not where "
                                 f"{'it was' if len(gone) == 1 else 'they were'} added: Locate… points the row at "
                                 "the file's new place, or Remove it.")
                self._missing_said = True
            elif self._missing_said:
                self.set_problem(None)
        for row, choice in enumerate(loras):  # the same files: only the strengths, the boxes kept (focus, typing)
            spin = self.strength_box(row)
            if spin is not None and abs(spin.value() - choice.strength) > 1e-9:
                spin.blockSignals(True)
                spin.setValue(choice.strength)
                spin.blockSignals(False)
        self.note.setVisible(not loras)
        self.table.setVisible(bool(loras))
        self.add_button.setEnabled(self._model is not None and self._model.shot_id is not None and len(loras) < MAX_LORAS)
        self.lorasChanged.emit(len(loras))

    def _rebuild(self, loras: tuple[LoraChoice, ...], rows: list[tuple[str, bool]]) -> None:
        self._rows = rows
        self.table.setRowCount(len(loras))
        for row, (choice, (_path, missing)) in enumerate(zip(loras, rows)):
            item = QTableWidgetItem(choice.name)
            if missing:
                item.setForeground(QBrush(QColor("#d9534f")))
                item.setToolTip(f"{choice.path} is not there any more: Locate… points this row at where it is now")
            else:
                item.setToolTip(choice.path)
            self.table.setItem(row, 0, item)
            spin = QDoubleSpinBox()
            spin.setObjectName("loraStrength")
            spin.setRange(-MAX_LORA_STRENGTH, MAX_LORA_STRENGTH)
            spin.setDecimals(2)
            spin.setSingleStep(0.05)
            spin.setValue(choice.strength)
            spin.setToolTip(f"How strongly {choice.name} acts: 1 as trained, 0 off, negative to push away from it "
                            f"(-{MAX_LORA_STRENGTH:g} to {MAX_LORA_STRENGTH:g})")
            spin.valueChanged.connect(lambda value, path=choice.path: self._on_strength(path, value))
            self.table.setCellWidget(row, 1, spin)
            cell = QWidget()
            buttons = QHBoxLayout(cell)
            buttons.setContentsMargins(0, 0, 0, 0)
            if missing:
                buttons.addWidget(self._row_button("Locate…", "locateLora", f"Point to where {choice.name} is now "
                                                   "(its strength is kept)", self._choose_location, choice.path))
            buttons.addWidget(self._row_button("Remove", "removeLora", f"Generate without {choice.name}",
                                               self._remove_path, choice.path))
            buttons.addStretch(1)
            self.table.setCellWidget(row, 2, cell)

    def _row_button(self, text: str, name: str, tip: str, action, path: str) -> QToolButton:  # noqa: ANN001
        button = QToolButton()
        button.setText(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: action(path))
        return button

    def strength_box(self, row: int) -> QDoubleSpinBox | None:
        widget = self.table.cellWidget(row, 1)
        return widget if isinstance(widget, QDoubleSpinBox) else None

    def remove_button(self, row: int) -> QToolButton | None:
        return self._button(row, "removeLora")

    def locate_button(self, row: int) -> QToolButton | None:
        """The row's Locate… button: only on a row whose file is not found."""
        return self._button(row, "locateLora")

    def _button(self, row: int, name: str) -> QToolButton | None:
        cell = self.table.cellWidget(row, 2)
        return cell.findChild(QToolButton, name) if cell is not None else None

    # -- the person's changes
    def choose_files(self) -> None:
        start = self._last_folder or os.path.expanduser("~")
        files, _ = QFileDialog.getOpenFileNames(self, "Add LoRA", start, FILE_FILTER)
        if files:
            self.add_files(files)

    def add_files(self, files: Iterable[str | os.PathLike[str]]) -> bool:
        """Add the files, as one undoable edit; the first that cannot be used stops it (nothing
        added) and its sentence shows under the list. Returns whether they were added."""
        if self._model is None:
            return False
        after = self.loras()
        try:
            for path in files:
                after = lora_list.added(after, path)
                self._last_folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        except LoraError as exc:
            self.set_problem(f"Not added: {sentence(str(exc))}")
            return False
        added = len(after) - len(self.loras())
        self.set_problem(None)
        return self._edit(after, f"Add {added} LoRA{'s' if added != 1 else ''}")

    def remove(self, row: int) -> bool:
        loras = self.loras()
        if not 0 <= row < len(loras):
            return False
        return self._edit(lora_list.removed(loras, row), f"Remove LoRA {loras[row].name}")

    def set_strength(self, row: int, value: float) -> bool:
        loras = self.loras()
        if not 0 <= row < len(loras):
            return False
        return self._edit(lora_list.with_strength(loras, row, value), f"LoRA {loras[row].name} strength",
                          merge_key=("strength", loras[row].path))

    def relocate(self, row: int, path: str | os.PathLike[str]) -> bool:
        """Point one row at another file, as one undoable edit; a file that cannot be used is
        refused with one sentence under the list. Returns whether the row changed."""
        loras = self.loras()
        try:
            after = lora_list.relocated(loras, row, path)
        except LoraError as exc:
            self.set_problem(f"Not changed: {sentence(str(exc))}")
            return False
        self._last_folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        self.set_problem(None)
        return self._edit(after, f"Locate LoRA {loras[row].name}")

    def _choose_location(self, path: str) -> None:
        rows = [i for i, c in enumerate(self.loras()) if c.path == path]
        if not rows:
            return
        folder = os.path.dirname(path)
        start = folder if os.path.isdir(folder) else (self._last_folder or os.path.expanduser("~"))
        found, _ = QFileDialog.getOpenFileName(self, f"Locate {os.path.basename(path)}", start, FILE_FILTER)
        if found:
            self.relocate(rows[0], found)

    def _remove_path(self, path: str) -> None:
        rows = [i for i, c in enumerate(self.loras()) if c.path == path]
        if rows:
            self.remove(rows[0])

    def _on_strength(self, path: str, value: float) -> None:
        rows = [i for i, c in enumerate(self.loras()) if c.path == path]
        if rows:
            self.set_strength(rows[0], value)

    def _edit(self, after: tuple[LoraChoice, ...], text: str, merge_key: object = None) -> bool:
        before = self.loras()
        if after == before or self._model is None:
            return False
        self.undo_stack.push(LorasEdit(self._apply, before, after, text, merge_key))
        return True

    def _apply(self, loras: tuple[LoraChoice, ...]) -> None:
        if self._model is None:
            return
        self._applying = True
        try:
            self._model.set_loras(loras)
        except LoraError as exc:  # not reached by the panel's own edits (checked before); never a traceback
            self.set_problem(sentence(str(exc)))
        finally:
            self._applying = False
        self._shown = self._model.loras

    def set_problem(self, text: str | None) -> None:
        self._missing_said = False
        self.problem.setText(text or "")
        self.problem.setVisible(bool(text))


__all__ = ["FILE_FILTER", "LoraPanel"]
