"""A take's exported clips, as the library records them: show one in the file manager, see which
were moved or deleted, and write one again.

:class:`ExportsView` lists the exports of one take (``set_take``), newest first: the file, its
format, the editor timeline it was put on, when it was written, and "Missing" (struck out, in red,
"moved or deleted" in its tooltip) for a file that is no longer where it was written (the status
column shows only while one is). In a narrow panel the timeline column gives way to the file name
(the file's tooltip names the timeline). The folders of the listed files are watched, so a file
moved away in the file manager is marked at once.

- **Show in Folder** opens the file manager on the file (selected, where the file manager can) or,
  for a missing one, on its folder.
- **Export Again** writes the export again from its take, in the same place, format and frame rate
  (:func:`shotsketch.app.exports.reexport`, the service the export dialog and ``shotsketch export``
  use), on a worker thread with a progress bar; a file still there is replaced only after asking, a
  removed folder is created again only after asking.
- **Forget** removes the record (never the file).

Signals: ``reexported(int)`` (export id, after it was written again), ``exportsChanged(int)``
(take id: the list changed), ``problem(str)`` (a one-line message, also shown in the view).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QMessageBox, QProgressBar,
                               QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from shotsketch.app.exports import reexport
from shotsketch.core.library import Export, Library, LibraryError
from shotsketch.media.encode import ClipFormat, EncodeCancelled, EncodeError

log = logging.getLogger(__name__)

MISSING = "Missing"
NARROW = 440  # below this width the timeline column is hidden
_SHORT_FORMATS = {"mp4": "MP4", "prores": "ProRes", "dnxhr": "DNxHR", "png": "PNG frames", "gif": "GIF"}
_MISSING_COLOUR = QColor(200, 60, 50)


def show_in_file_manager(path: Path) -> bool:
    """Open the system file manager on ``path``: the file selected where the file manager can do
    that (Windows Explorer, macOS Finder, freedesktop file managers), else its folder."""
    path = Path(path)
    try:
        if sys.platform == "darwin":
            return subprocess.run(["open", "-R", str(path)], check=False).returncode == 0
        if sys.platform == "win32":
            subprocess.Popen(["explorer", "/select,", str(path)])  # noqa: S603, S607 - fixed program, our path
            return True
        if path.is_file() and _freedesktop_show_items(path):
            return True
    except OSError:
        log.debug("file manager call failed for %s", path, exc_info=True)
    folder = path if path.is_dir() else path.parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def _freedesktop_show_items(path: Path) -> bool:
    """org.freedesktop.FileManager1.ShowItems (Nautilus, Dolphin, Nemo, Thunar...)."""
    try:
        from PySide6.QtDBus import QDBusConnection, QDBusInterface, QDBusMessage
    except ImportError:
        return False
    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    manager = QDBusInterface("org.freedesktop.FileManager1", "/org/freedesktop/FileManager1",
                             "org.freedesktop.FileManager1", bus)
    if not manager.isValid():
        return False
    reply = manager.call("ShowItems", [QUrl.fromLocalFile(str(path)).toString()], "")
    return reply.type() != QDBusMessage.MessageType.ErrorMessage


def _format_label(value: str) -> str:
    try:
        return ClipFormat.parse(value).label
    except ValueError:
        return value


def _when(created_at: str) -> str:
    """Short local time: "17:49" today, "29 Nov 17:49" this year, "29 Nov 2025" before."""
    try:
        when = datetime.fromisoformat(created_at).astimezone()
    except ValueError:
        return created_at
    now = datetime.now().astimezone()
    if when.date() == now.date():
        return when.strftime("%H:%M")
    return when.strftime("%d %b %H:%M" if when.year == now.year else "%d %b %Y")


class _Reporter(QObject):
    """Signals from the re-export thread, delivered on the UI thread."""

    progress = Signal(int, int)        # frames done, total
    finished = Signal(int, str, str)   # export id, note ("" or the GIF rate sentence), error ("" when it worked)


class ExportsView(QWidget):
    """The exports of one take (see the module docstring)."""

    reexported = Signal(int)      # export id
    exportsChanged = Signal(int)  # take id
    problem = Signal(str)

    COLUMNS = ("File", "Format", "Timeline", "Exported", "Status")

    def __init__(self, library: Library | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.library = library
        self.take_id: int | None = None
        self._exports: list[Export] = []
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        # replaceable by tests and by the window
        self.show_in_file_manager: Callable[[Path], bool] = show_in_file_manager
        self.confirm_replace: Callable[[Path], bool] = self._confirm_replace_with_a_box
        self.ask_create_folder: Callable[[Path], bool] = self._ask_create_folder_with_a_box

        self._report = _Reporter(self)
        self._report.progress.connect(self._on_progress)
        self._report.finished.connect(self._on_finished)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(lambda _path: self.refresh())

        self.title = QLabel("Exports")
        self.title.setObjectName("exportsTitle")
        self.empty_label = QLabel("No exports of this take yet. File ▸ Export… writes it as MP4, ProRes, "
                                  "DNxHR, PNG frames or a GIF, with an editor timeline.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setEnabled(False)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(self.COLUMNS))
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(48)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)  # a long timeline name is elided
        self.tree.setColumnWidth(2, 120)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda _item, _col: self.reveal_selected())

        self.reveal_button = QPushButton("Show in Folder")
        self.reveal_button.setToolTip("Open the file manager on the exported file (its folder if it is missing)")
        self.reveal_button.clicked.connect(self.reveal_selected)
        self.reexport_button = QPushButton("Export Again")
        self.reexport_button.setToolTip("Write this export again from its take: same place, format and frame rate")
        self.reexport_button.clicked.connect(self.reexport_selected)
        self.forget_button = QPushButton("Forget")
        self.forget_button.setToolTip("Remove this export from the library's list (the file is not touched)")
        self.forget_button.clicked.connect(self.forget_selected)
        self.button_row = QWidget()
        buttons = QHBoxLayout(self.button_row)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.reveal_button)
        buttons.addWidget(self.reexport_button)
        buttons.addStretch(1)
        buttons.addWidget(self.forget_button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.hide()
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.addWidget(self.title)
        root.addWidget(self.empty_label, 1)
        root.addWidget(self.tree, 1)
        root.addWidget(self.button_row)
        root.addWidget(self.progress_bar)
        root.addWidget(self.status_label)
        self.refresh()

    # -- what is shown
    def set_library(self, library: Library | None) -> None:
        self.library = library
        self.set_take(None)

    def set_take(self, take_id: int | None) -> None:
        """Show the exports of ``take_id`` (None: none)."""
        changed = take_id != self.take_id
        if changed:
            self.status_label.clear()
        self.take_id = take_id
        self.refresh()
        if changed and self._exports:  # the newest, so its buttons work at once
            self.select_export(self._exports[0].id)

    def refresh(self) -> None:
        """Read the take's exports again and mark the missing ones (keeps the selection)."""
        selected = self.selected_export()
        exports: list[Export] = []
        if self.library is not None and self.take_id is not None:
            try:
                exports = self.library.list_exports(self.take_id)
            except LibraryError as exc:
                self._say(str(exc))
        self._exports = exports
        self.tree.clear()
        for export in exports:
            self.tree.addTopLevelItem(self._row(export))
        self.title.setText("Exports" if self.take_id is None else f"Exports of take {self.take_id}")
        self.empty_label.setVisible(not exports)
        self.tree.setVisible(bool(exports))
        self.button_row.setVisible(bool(exports))
        self.tree.setColumnHidden(4, not any(e.missing for e in exports))  # room for the names until one is
        self._watch(exports)
        if selected is not None:
            self.select_export(selected.id)
        self._update_buttons()

    def _row(self, export: Export) -> QTreeWidgetItem:
        timeline = export.timeline.name if export.timeline else ""
        item = QTreeWidgetItem([export.file.name, _SHORT_FORMATS.get(export.format, export.format), timeline,
                                _when(export.created_at), MISSING if export.missing else ""])
        item.setData(0, Qt.ItemDataRole.UserRole, export.id)
        on = f"\nOn the timeline {export.timeline}" if export.timeline else ""
        item.setToolTip(0, f"{export.file}{on}")
        item.setToolTip(2, str(export.timeline) if export.timeline else "Not put on an editor timeline")
        fps = f" at {export.fps:.4g} fps" if export.fps else ""
        item.setToolTip(1, f"{_format_label(export.format)}{fps}")
        item.setToolTip(3, f"Written {export.created_at.replace('T', ' ')[:19]} (UTC)")
        if export.missing:
            font = item.font(0)
            font.setStrikeOut(True)
            item.setFont(0, font)
            for column in range(len(self.COLUMNS)):
                item.setForeground(column, _MISSING_COLOUR)
            tip = f"{export.file} is no longer there: moved or deleted. Export Again writes it back from the take."
            item.setToolTip(4, tip)
            item.setToolTip(0, tip)
        return item

    def _watch(self, exports: list[Export]) -> None:
        folders = sorted({str(e.file.parent) for e in exports if e.file.parent.is_dir()})
        old = self._watcher.directories()
        if old:
            self._watcher.removePaths(old)
        if folders:
            self._watcher.addPaths(folders)

    # -- selection
    def export_id_at(self, row: int) -> int:
        return int(self.tree.topLevelItem(row).data(0, Qt.ItemDataRole.UserRole))

    def select_export(self, export_id: int) -> bool:
        for row in range(self.tree.topLevelItemCount()):
            if self.export_id_at(row) == export_id:
                self.tree.setCurrentItem(self.tree.topLevelItem(row))
                return True
        return False

    def selected_export(self) -> Export | None:
        item = self.tree.currentItem() if hasattr(self, "tree") else None
        if item is None or not item.isSelected():
            return None
        export_id = item.data(0, Qt.ItemDataRole.UserRole)
        return next((e for e in self._exports if e.id == export_id), None)

    def _update_buttons(self) -> None:
        chosen = self.selected_export() is not None
        busy = self.is_running()
        self.reveal_button.setEnabled(chosen)
        self.reexport_button.setEnabled(chosen and not busy)
        self.forget_button.setEnabled(chosen and not busy)

    # -- actions
    def reveal_selected(self) -> bool:
        export = self.selected_export()
        if export is None:
            return False
        if not export.missing:
            return self.show_in_file_manager(export.file)
        folder = export.file.parent
        if folder.is_dir():
            self._say(f"{export.file.name} is missing (moved or deleted); showing the folder it was in.")
            return self.show_in_file_manager(folder)
        self._say(f"{export.file.name} is missing, and its folder {folder} is gone too.")
        return False

    def reexport_selected(self) -> bool:
        """Write the selected export again on a worker thread; False when nothing started."""
        export = self.selected_export()
        if export is None or self.library is None or self.is_running():
            return False
        if not export.missing and not self.confirm_replace(export.file):
            return False
        create_folder = False
        if not export.file.parent.is_dir():
            if not self.ask_create_folder(export.file.parent):
                self._say(f"Not exported: the folder {export.file.parent} is gone too. "
                          "Create it, or export the take elsewhere with File ▸ Export….")
                return False
            create_folder = True
        self._cancel.clear()
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.status_label.setText(f"Exporting {export.file.name} again…")
        library = self.library
        self._thread = threading.Thread(target=self._run_reexport, args=(library, export.id, create_folder),
                                        name="shotsketch-reexport", daemon=True)
        self._thread.start()
        self._update_buttons()
        return True

    def _run_reexport(self, library: Library, export_id: int, create_folder: bool) -> None:
        note, error = "", ""
        try:
            done = reexport(library, export_id, create_folder=create_folder,
                            progress=self._report.progress.emit, cancelled=self._cancel.is_set)
            note = done.note
        except EncodeCancelled:
            error = "Cancelled; nothing was replaced."
        except EncodeError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - the thread must always report back; the log has the trace
            log.exception("exporting %s again failed", export_id)
            error = f"Could not export it again ({exc}); the details are in the log."
        try:
            self._report.finished.emit(export_id, note, error)
        except RuntimeError:  # the view was deleted while exporting (the window closing)
            log.info("re-export %s finished after its view closed", export_id)

    def forget_selected(self) -> bool:
        export = self.selected_export()
        if export is None or self.library is None or self.is_running():
            return False
        try:
            self.library.forget_export(export.id)
        except LibraryError as exc:
            self._say(str(exc))
            return False
        self.status_label.setText(f"{export.file.name} is no longer listed (the file was not touched).")
        self.refresh()
        if self.take_id is not None:
            self.exportsChanged.emit(self.take_id)
        return True

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float = 30.0) -> None:
        """Block until a re-export ends (tests and shutdown only)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def cancel(self) -> None:
        self._cancel.set()

    # -- worker reports (UI thread)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setValue(round(100 * done / max(total, 1)))

    def _on_finished(self, export_id: int, note: str, error: str) -> None:
        self._thread = None
        self.progress_bar.hide()
        self.refresh()
        if error:
            self._say(error[0].upper() + error[1:])
            return
        name = next((e.file.name for e in self._exports if e.id == export_id), "the export")
        self.status_label.setText(f"Exported again: {name}." + (f" {note}." if note else ""))
        self.reexported.emit(export_id)
        if self.take_id is not None:
            self.exportsChanged.emit(self.take_id)

    def _say(self, message: str) -> None:
        self.status_label.setText(message)
        log.info("exports: %s", message)
        self.problem.emit(message)

    # -- questions
    def _confirm_replace_with_a_box(self, path: Path) -> bool:
        answer = QMessageBox.question(
            self, "Replace the file?", f"{path.name} is still in {path.parent}.\n\nReplace it with a new export "
            "of the take?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_create_folder_with_a_box(self, folder: Path) -> bool:
        from shotsketch.ui.export_dialog import ask_create_folder_with_a_box

        return ask_create_folder_with_a_box(self, folder)

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802
        super().resizeEvent(event)
        self.tree.setColumnHidden(2, self.width() < NARROW)

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802
        self.cancel()
        super().closeEvent(event)


__all__ = ["ExportsView", "MISSING", "show_in_file_manager"]
