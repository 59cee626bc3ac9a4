"""The sketch dock: canvas, keyframe time slider, a small toolbar and the subject list."""

from __future__ import annotations

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QPixmap, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from shotsketch.app.shot import OpenShot
from shotsketch.core.layout import Easing, Layout
from shotsketch.core.phrasing import PALETTE
from shotsketch.ui.canvas import SketchCanvas, hex_color, qcolor
from shotsketch.ui.shot_view import ShotView
from shotsketch.ui.time_slider import KeyframeSlider

_EASING_LABELS = {Easing.LINEAR: "Linear", Easing.EASE_IN_OUT: "Ease in/out"}


def _swatch(color: str, size: int = 12) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(qcolor(color))
    return QIcon(pix)


class SketchPanel(QWidget, ShotView):
    sketchChanged = Signal(object)  # Layout
    timeChanged = Signal(float)
    selectionChanged = Signal(object)

    def __init__(self, undo_stack: QUndoStack | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self.canvas = SketchCanvas(self.undo_stack, self)
        self.slider = KeyframeSlider(self)
        self.time_label = QLabel(self)
        self.time_label.setMinimumWidth(48)
        self.time_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.time_label.setToolTip("Clip time (0 = first frame, 1 = last)")
        self.subject_list = QListWidget(self)
        self.subject_list.setToolTip("Subjects: click to select, double-click to rename")
        self.subject_list.setMinimumWidth(90)
        self.subject_list.setMaximumWidth(220)
        self.subject_list.setIconSize(QSize(12, 12))

        # toolbar
        self.toolbar = QToolBar(self)
        self.toolbar.setIconSize(QSize(14, 14))
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.delete_action = QAction("Delete", self)
        self.delete_action.setToolTip("Delete the selected subject (or its selected keyframe) — Delete")
        self.delete_action.triggered.connect(self.canvas.delete_selection)
        self.color_button = QToolButton(self)
        self.color_button.setText("Colour ▾")  # the arrow drawn with the word, not in a corner apart
        self.color_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        self.color_button.setToolTip("The selected subject's colour")
        self.color_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        color_menu = QMenu(self.color_button)
        for c in PALETTE:
            act = color_menu.addAction(_swatch(c), hex_color(qcolor(c)))
            act.triggered.connect(lambda _=False, c=c: self._set_color(hex_color(qcolor(c))))
        color_menu.addSeparator()
        color_menu.addAction("Custom…", self._choose_color)
        self.color_button.setMenu(color_menu)
        self.easing_box = QComboBox(self)
        for easing, label in _EASING_LABELS.items():
            self.easing_box.addItem(label, easing)
        self.easing_box.setToolTip("How the selected subject moves between keyframes")
        self.easing_box.activated.connect(self._set_easing)
        self.onion_action = QAction("Paths", self, checkable=True, checked=True)
        self.onion_action.setToolTip("Onion skin: show each subject's keyframe boxes and path")
        self.onion_action.toggled.connect(self.canvas.set_onion_skin)
        self.snap_action = QAction("Snap", self, checkable=True, checked=True)
        self.snap_action.setToolTip("Snap to the thirds, edges and centre (hold Alt while dragging to not snap)")
        self.snap_action.toggled.connect(self.canvas.set_snapping)
        self.clear_path_action = QAction("Clear path", self)
        self.clear_path_action.setToolTip("Make the selected subject stationary where it is now")
        self.clear_path_action.triggered.connect(self._clear_path)
        self.toolbar.addAction(self.delete_action)
        self.toolbar.addWidget(self.color_button)
        self.toolbar.addWidget(self.easing_box)
        self.toolbar.addAction(self.clear_path_action)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.onion_action)
        self.toolbar.addAction(self.snap_action)

        # layout
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.canvas)
        split.addWidget(self.subject_list)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setCollapsible(0, False)
        split.setSizes([600, 120])
        self.splitter = split
        time_row = QHBoxLayout()
        time_row.setContentsMargins(0, 0, 0, 0)
        time_row.addWidget(self.slider, 1)
        time_row.addWidget(self.time_label)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 2, 4, 4)
        box.setSpacing(2)
        box.addWidget(self.toolbar)
        box.addWidget(split, 1)
        box.addLayout(time_row)

        # wiring
        self.canvas.sketchChanged.connect(self._on_sketch_changed)
        self.canvas.selectionChanged.connect(self._on_selection_changed)
        self.canvas.timeChanged.connect(self._on_time_changed)
        self.canvas.keyframeSelected.connect(self.slider.set_selected_keyframe)
        self.slider.timeChanged.connect(self.canvas.set_time)
        self.slider.keyframeSelected.connect(self._on_slider_keyframe)
        self.slider.keyframeMoveRequested.connect(self._move_keyframe)
        self.slider.keyframeDeleteRequested.connect(self._delete_keyframe)
        self.subject_list.currentItemChanged.connect(self._on_list_current)
        self.subject_list.itemDoubleClicked.connect(lambda item: self.canvas._rename_interactively(item.text()))
        self._refresh()

    NARROW = 460
    """Below this width the subject list hides, so the canvas keeps the room."""

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        super().resizeEvent(event)
        narrow = self.width() < self.NARROW
        if self.subject_list.isHidden() != narrow:
            self.subject_list.setVisible(not narrow)

    # -- the open shot's model
    def bind(self, shot: OpenShot) -> None:
        """Show ``shot``'s sketch; edits are written back to it."""
        self.observe(shot.events.opened, lambda _s: self._show_opened())
        self.observe(shot.events.layout, self._show_layout)
        self._show_opened()

    def _show_opened(self) -> None:
        """Another shot: its sketch, with a fresh undo history."""
        if self._model is not None:
            self.set_sketch(self._model.layout, undoable=False)
            self.undo_stack.clear()

    def _show_layout(self, layout: Layout) -> None:
        if layout != self.sketch():  # changed elsewhere (a variant put back): one undoable edit
            self.set_sketch(layout, undoable=True)

    # -- public API, forwarded to the canvas
    def sketch(self) -> Layout:
        return self.canvas.sketch()

    def set_sketch(self, layout: Layout, undoable: bool = True) -> None:
        self.canvas.set_sketch(layout, undoable)

    def current_time(self) -> float:
        return self.canvas.current_time()

    def set_time(self, t: float) -> None:
        self.canvas.set_time(t)

    def selected_subject(self) -> str | None:
        return self.canvas.selected_subject()

    # -- reactions
    def _on_sketch_changed(self, layout: Layout) -> None:
        self._refresh()
        if self._model is not None:
            self._model.set_layout(layout)
        self.sketchChanged.emit(layout)

    def _on_selection_changed(self, name: object) -> None:
        self._refresh()
        self.selectionChanged.emit(name)

    def _on_time_changed(self, t: float) -> None:
        self.slider.set_time(t)
        self.time_label.setText(f"t {t:.2f}")
        self.timeChanged.emit(t)

    def _on_slider_keyframe(self, t: object) -> None:
        self.canvas.select_keyframe(t if isinstance(t, float) else None)

    def _move_keyframe(self, old: float, new: float) -> None:
        name = self.canvas.selected_subject()
        if name is None:
            return
        moved = self.canvas.move_keyframe(name, old, new)
        if moved is not None:
            self.canvas.set_time(moved)
            self.canvas.select_keyframe(moved)

    def _delete_keyframe(self, t: float) -> None:
        name = self.canvas.selected_subject()
        if name is not None:
            self.canvas.remove_keyframe(name, t)

    def _on_list_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.canvas.select_subject(current.text())

    def _set_color(self, color: str) -> None:
        name = self.canvas.selected_subject()
        if name is not None:
            self.canvas.set_subject_color(name, color)

    def _choose_color(self) -> None:
        name = self.canvas.selected_subject()
        if name is not None:
            self.canvas._choose_color(name)

    def _set_easing(self, index: int) -> None:
        name = self.canvas.selected_subject()
        easing = self.easing_box.itemData(index)
        if name is not None and isinstance(easing, Easing):
            self.canvas.set_subject_easing(name, easing)

    def _clear_path(self) -> None:
        name = self.canvas.selected_subject()
        if name is not None:
            self.canvas.clear_path(name)

    def _refresh(self) -> None:
        layout = self.canvas.sketch()
        name = self.canvas.selected_subject()
        with QSignalBlocker(self.subject_list):
            self.subject_list.clear()
            for s in layout.subjects:
                item = QListWidgetItem(_swatch(s.color), s.name)
                moving = len(s.keyframes) > 1
                item.setToolTip(f"{s.name} — {len(s.keyframes)} keyframe{'s' if moving else ''}")
                self.subject_list.addItem(item)
                if name is not None and s.name == name:
                    self.subject_list.setCurrentItem(item)
            if name is None:
                self.subject_list.setCurrentRow(-1)
        subject = layout.subject(name) if name is not None and layout.has_subject(name) else None
        for w in (self.delete_action, self.color_button, self.easing_box):
            w.setEnabled(subject is not None)
        self.clear_path_action.setEnabled(subject is not None and len(subject.keyframes) > 1)
        if subject is not None:
            with QSignalBlocker(self.easing_box):
                self.easing_box.setCurrentIndex(self.easing_box.findData(subject.easing))
            self.color_button.setIcon(_swatch(subject.color))
            self.color_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            self.slider.set_keyframes([k.t for k in subject.keyframes], subject.color)
            self.slider.set_selected_keyframe(self.canvas.selected_keyframe())
        else:
            self.color_button.setIcon(QIcon())
            self.color_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            self.slider.set_keyframes([])
        self.slider.set_other_keyframes(
            [(k.t, s.color) for s in layout.subjects if subject is None or s.name != subject.name for k in s.keyframes]
        )
        self.slider.set_time(self.canvas.current_time())
        self.time_label.setText(f"t {self.canvas.current_time():.2f}")


__all__ = ["SketchPanel"]
