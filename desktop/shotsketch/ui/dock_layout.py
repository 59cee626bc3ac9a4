"""Where the window's panels go: the docks, their default arrangement and sizes, and the layout
the person made (saved in the config folder, restored at the next start)."""

from __future__ import annotations

import logging
from pathlib import Path

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QByteArray, QSettings, QSize, Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QWidget

from shotsketch.core import paths

log = logging.getLogger(__name__)

LAYOUT_VERSION = 4  # bump when docks are added, renamed or rearranged: old saved states are then ignored
COMPACT_BELOW = 1500  # window width (px) under which the queue shares the library's place, as a tab
DOCK_TITLES = {"library": "Library", "sketch": "Sketch", "timeline": "Preview", "prompt": "Prompt", "queue": "Queue",
               "loras": "LoRAs"}


def make_docks(window: QMainWindow, panels: dict[str, QWidget]) -> dict[str, QDockWidget]:
    """One movable, closable, floatable dock per panel; the central area stays empty."""
    window.setDockNestingEnabled(True)
    window.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowNestedDocks
                          | QMainWindow.DockOption.AllowTabbedDocks)
    docks = {}
    for key, title in DOCK_TITLES.items():
        dock = QDockWidget(title, window)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(panels[key])
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        docks[key] = dock
    spacer = QWidget()
    spacer.setMaximumSize(0, 0)
    window.setCentralWidget(spacer)
    spacer.hide()
    return docks


def is_compact(window: QMainWindow) -> bool:
    return window.width() < COMPACT_BELOW


def arrange_default(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """The library on the left; sketch and preview side by side with the prompt below both; the
    queue, with the LoRA list a tab beside it, on the right of wide windows, and both tabs beside
    the library's in narrower ones (below COMPACT_BELOW pixels), so that the preview and the
    library keep usable sizes at 1280x720."""
    for dock in docks.values():
        dock.setFloating(False)
        window.removeDockWidget(dock)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, docks["library"])
    if not is_compact(window):
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, docks["queue"])
    window.splitDockWidget(docks["library"], docks["sketch"], Qt.Orientation.Horizontal)
    window.splitDockWidget(docks["sketch"], docks["prompt"], Qt.Orientation.Vertical)
    window.splitDockWidget(docks["sketch"], docks["timeline"], Qt.Orientation.Horizontal)
    if is_compact(window):
        window.tabifyDockWidget(docks["library"], docks["queue"])
    # the LoRA list a tab beside the queue's (beside the prompt, its tab bar took the preview's height)
    window.tabifyDockWidget(docks["queue"], docks["loras"])
    for dock in docks.values():
        dock.show()
    docks["queue"].raise_()
    docks["library"].raise_()
    size_docks(window, docks)


def size_docks(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """Sizes for the default arrangement: the sketch and the preview as large as the prompt
    below them allows (the prompt keeps about a third of the height, at least 210 px)."""
    width = max(window.width(), 1024)
    height = max(window.height(), 600)
    usable_h = height - 100  # menu, toolbar, status bar, dock titles
    compact = is_compact(window)
    side, queue = (250, 0) if compact else (280, 320)
    middle = max(400, width - side - queue - (12 if compact else 24))
    sketch_w = int(middle * (0.48 if compact else 0.53))  # the sketch panel also holds its subject list
    row = [docks["library"], docks["sketch"], docks["timeline"]] + ([] if compact else [docks["queue"]])
    sizes = [side, sketch_w, middle - sketch_w] + ([] if compact else [queue])
    window.resizeDocks(row, sizes, Qt.Orientation.Horizontal)
    # The top row more than half the height, as tall as a 16:9 picture of the preview's width plus
    # its controls where that fits, leaving the prompt at least 210 px (a third of tall windows).
    picture_h = int((middle - sketch_w) * 9 / 16)
    top = max(int(usable_h * 0.58), min(usable_h - max(210, usable_h // 3), picture_h + 170))
    top = min(top, usable_h - 210)
    window.resizeDocks([docks["sketch"], docks["prompt"]], [top, usable_h - top], Qt.Orientation.Vertical)


def layout_file() -> Path:
    return paths.config_dir() / "window.ini"


def default_size() -> QSize:
    screen = QApplication.primaryScreen()
    if screen is None:
        return QSize(1280, 800)
    avail = screen.availableGeometry()
    return QSize(min(1600, max(1024, int(avail.width() * 0.9))), min(1000, max(700, int(avail.height() * 0.9))))


def restore_layout(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """The size and dock layout saved at the last close, else the default ones."""
    store = QSettings(str(layout_file()), QSettings.Format.IniFormat)
    geometry = store.value("geometry")
    state = store.value("state")
    if isinstance(geometry, QByteArray) and not geometry.isEmpty():
        window.restoreGeometry(geometry)
    else:
        window.resize(default_size())
    arrange_default(window, docks)
    if isinstance(state, QByteArray) and not state.isEmpty() and not window.restoreState(state, LAYOUT_VERSION):
        log.info("saved window layout is from another version; using the default")


def save_layout(window: QMainWindow) -> None:
    store = QSettings(str(layout_file()), QSettings.Format.IniFormat)
    store.setValue("geometry", window.saveGeometry())
    store.setValue("state", window.saveState(LAYOUT_VERSION))
    store.sync()


__all__ = ["COMPACT_BELOW", "DOCK_TITLES", "LAYOUT_VERSION", "arrange_default", "is_compact", "make_docks",
           "restore_layout", "save_layout", "size_docks"]
