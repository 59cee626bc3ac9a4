"""The window's actions (with their shortcuts) and its menus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from shotsketch.ui.generate_bar import QUEUE_SEEDS

if TYPE_CHECKING:
    from shotsketch.ui.main_window import MainWindow


@dataclass(frozen=True)
class WindowActions:
    new_project: QAction
    new_shot: QAction
    open: QAction
    export: QAction
    settings: QAction
    model: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    delete: QAction
    generate: QAction
    variants: QAction
    cancel_all: QAction
    play: QAction
    prev: QAction
    next: QAction
    reset_layout: QAction
    about: QAction
    log: QAction


def build_actions(w: MainWindow) -> WindowActions:
    def action(text: str, slot: Callable[[], Any], shortcut: QKeySequence | str | None = None,
               tip: str = "") -> QAction:
        act = QAction(text, w)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        w.addAction(act)
        return act

    undo = w.undo_stack.createUndoAction(w, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = w.undo_stack.createRedoAction(w, "&Redo")
    redo.setShortcut(QKeySequence.StandardKey.Redo)
    for act in (undo, redo):  # the sketch's and the LoRA list's edits share the window's undo stack
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        w.sketch.addAction(act)
        w.lora_panel.addAction(act)
    generate = action("&Generate", lambda: w.generate(1), "Ctrl+Return")
    generate.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
    return WindowActions(
        new_project=action("&New project…", w.new_project, QKeySequence.StandardKey.New),
        new_shot=action("New &shot", w.new_shot, "Ctrl+Shift+N"),
        open=action("&Open shot…", w.open_project, QKeySequence.StandardKey.Open),
        export=action("&Export…", w.export_selected, "Ctrl+E",
                      "Export the takes selected in the library (or the one in the preview)"),
        settings=action("&Settings…", w.show_settings, QKeySequence.StandardKey.Preferences),
        model=action("Set up &model…", w.show_model_setup),
        quit=action("&Quit", w.close, QKeySequence.StandardKey.Quit),
        undo=undo,
        redo=redo,
        delete=action("&Delete", lambda: w.sketch.canvas.delete_selection(), QKeySequence.StandardKey.Delete,
                      "Delete the selected subject"),
        generate=generate,
        variants=action(f"Queue &{QUEUE_SEEDS} seeds", lambda: w.generate(QUEUE_SEEDS), "Ctrl+Shift+Return"),
        cancel_all=action("&Cancel all jobs", w.cancel_all),
        play=action("&Play / pause", lambda: w.timeline.toggle_play(), "Space"),
        prev=action("Previous &frame", lambda: w.step_frame(-1), "Left"),
        next=action("&Next frame", lambda: w.step_frame(1), "Right"),
        reset_layout=action("&Reset layout", w.reset_layout),
        about=action("&About Shotsketch", w.show_about),
        log=action("Show the &log file", w.show_log_location),
    )


def build_menus(w: MainWindow, a: WindowActions) -> None:
    bar = w.menuBar()
    file = bar.addMenu("&File")
    for act in (a.new_project, a.new_shot, a.open):
        file.addAction(act)
    file.addSeparator()
    file.addAction(a.export)
    file.addSeparator()
    file.addAction(a.settings)
    file.addSeparator()
    file.addAction(a.quit)
    edit = bar.addMenu("&Edit")
    edit.addAction(a.undo)
    edit.addAction(a.redo)
    edit.addSeparator()
    edit.addAction(a.delete)
    view = bar.addMenu("&View")
    for dock in w.docks.values():
        view.addAction(dock.toggleViewAction())
    view.addSeparator()
    view.addAction(a.reset_layout)
    gen = bar.addMenu("&Generate")
    for act in (a.generate, a.variants, a.cancel_all):
        gen.addAction(act)
    play = bar.addMenu("&Playback")
    for act in (a.play, a.prev, a.next):
        play.addAction(act)
    bar.addMenu("&Model").addAction(a.model)
    help_ = bar.addMenu("&Help")
    help_.addAction(a.log)
    help_.addAction(a.about)


__all__ = ["WindowActions", "build_actions", "build_menus"]
