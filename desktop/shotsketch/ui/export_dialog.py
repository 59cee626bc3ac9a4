"""Export takes as files (MP4 / ProRes 422 HQ / DNxHR HQ / PNG sequence / GIF) plus an editor timeline.

Everything runs on one worker thread; the dialog only shows progress (per take and overall) and
the outcome of each take. ``shotsketch.media`` writes atomically (a temporary name, renamed when
ffmpeg succeeded), so a failure or a cancel never leaves a half-written file under a final name.

Each take goes through :func:`shotsketch.app.exports.export_clip`, the service ``shotsketch export``
uses too: the same files, recipes and frame rates from the window and the terminal, and every
export of a library take recorded in the library with the timeline it was put on.

A destination folder that does not exist is offered to be created (asked once, before anything
starts). Faults each get one plain sentence, shown once: before starting, in the line under the
progress bar (a folder that is a file, or read-only); while exporting, in the take's row and in the
log pane below: a folder that is read-only or full (the batch stops: the next take would fail the
same way), a file that is already there (asked once before starting: overwrite, number, or skip),
an ffmpeg failure (its last lines go to the log pane and the log file), a take whose file was
deleted (that take is skipped, the others go on).
"""

from __future__ import annotations

import enum
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from shotsketch.app.exports import ExportedClip, ExportRequest, export_clip, record_timeline
from shotsketch.core.library import Library
from shotsketch.media.encode import (ClipFormat, DestinationExists, DestinationNotWritable, DiskFull, EncodeCancelled,
                                     EncodeError, FfmpegFailed, MissingSource, free_name, suggested_name)
from shotsketch.media.timeline import TIMELINE_FORMATS, TimelineError, write_timeline

log = logging.getLogger(__name__)

TIMELINE_LABELS = {".otio": "OpenTimelineIO (.otio)", ".xml": "Final Cut Pro 7 XML (.xml)",
                   ".edl": "CMX 3600 EDL (.edl)"}
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def safe_stem(text: str, fallback: str = "take") -> str:
    """A file name stem that every desktop file system accepts."""
    stem = _UNSAFE.sub("_", " ".join(text.split())).strip(" .")
    return stem[:120] or fallback


class ExistingChoice(enum.Enum):
    OVERWRITE = "overwrite"
    NUMBER = "number"
    SKIP = "skip"


class RowState(enum.Enum):
    WAITING = "Waiting"
    EXPORTING = "Exporting…"
    DONE = "Done"
    SKIPPED = "Skipped"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


@dataclass(frozen=True)
class ExportItem:
    """One take to export: its clip, the name stem for the exported file, its recipe if known."""

    path: Path
    stem: str
    take_id: int | None = None
    recipe: dict[str, Any] | None = None
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.stem


@dataclass(frozen=True)
class ExportPlan:
    """Everything the worker needs, built on the UI thread (the worker never reads a widget)."""

    items: tuple[ExportItem, ...]
    folder: Path
    fmt: ClipFormat
    destinations: tuple[Path | None, ...]   # None: skip (exists and the user chose to skip)
    on_exists: str
    sidecars: bool
    timeline: Path | None
    timeline_overwrite: bool
    timeline_name: str
    library: Library | None = None  # where exports of library takes are recorded


@dataclass(frozen=True)
class ExportSummary:
    written: tuple[Path, ...]
    timeline: Path | None
    problems: tuple[str, ...]
    skipped: int
    cancelled: bool

    @property
    def ok(self) -> bool:
        return not self.problems and not self.cancelled


@dataclass
class _Stop:
    cancel: threading.Event = field(default_factory=threading.Event)


class _Reporter(QObject):
    """Signals emitted by the worker thread, delivered on the UI thread."""

    started = Signal(int)                 # row
    progress = Signal(int, int, int)      # row, frames done, frames total
    done = Signal(int, str)               # row, written path
    skipped = Signal(int, str)            # row, reason
    failed = Signal(int, str, str, str)   # row, short status, message, details (ffmpeg's last lines)
    cancelled = Signal(int)               # row
    note = Signal(str)                    # a log line
    finished = Signal(object)             # ExportSummary


def export_one(item: ExportItem, dest: Path, fmt: ClipFormat, on_exists: str, sidecar: bool,
               progress: Callable[[int, int], None], cancelled: Callable[[], bool],
               library: Library | None = None) -> ExportedClip:
    """Export one take through the export service (recorded in ``library`` when it is a take)."""
    request = ExportRequest(item.path, dest, fmt, on_exists=on_exists, sidecar=sidecar,  # type: ignore[arg-type]
                            take_id=item.take_id, recipe=item.recipe)
    return export_clip(request, library=library, progress=progress, cancelled=cancelled)


def run_export(plan: ExportPlan, report: _Reporter, stop: _Stop) -> ExportSummary:
    """The worker: every take in turn, then the timeline. Never raises; reports through ``report``."""
    written: list[Path] = []
    exported: list[ExportedClip] = []
    problems: list[str] = []
    skipped = 0
    cancelled = False
    for row, (item, dest) in enumerate(zip(plan.items, plan.destinations)):
        if stop.cancel.is_set():
            cancelled = True
            report.cancelled.emit(row)
            continue
        if dest is None:
            skipped += 1
            report.skipped.emit(row, "already there; skipped as asked")
            continue
        report.started.emit(row)
        try:
            done = export_one(item, dest, plan.fmt, plan.on_exists, plan.sidecars,
                              lambda d, t, row=row: report.progress.emit(row, d, t), stop.cancel.is_set,
                              plan.library)
        except EncodeCancelled:
            cancelled = True
            report.cancelled.emit(row)
            continue
        except DestinationExists as exc:
            msg = f"{exc.path.name} appeared in the folder while exporting; nothing was replaced"
            problems.append(f"{item.title}: {msg}")
            report.failed.emit(row, "Already there: nothing replaced", msg, "")
            continue
        except (DiskFull, DestinationNotWritable) as exc:
            problems.append(f"{item.title}: {exc}")
            short = "Disk full" if isinstance(exc, DiskFull) else "Cannot write into the folder"
            report.failed.emit(row, short, str(exc), "")
            for later in range(row + 1, len(plan.items)):  # the same folder: the next ones would fail too
                report.skipped.emit(later, "not exported: " + str(exc).split(";")[0])
            break
        except FfmpegFailed as exc:
            problems.append(f"{item.title}: {exc}")
            report.failed.emit(row, "ffmpeg failed: see the log below", str(exc), exc.details)
            continue
        except MissingSource as exc:
            problems.append(f"{item.title}: {exc}")
            report.failed.emit(row, "File missing: deleted or moved", str(exc), "")
            continue
        except EncodeError as exc:
            problems.append(f"{item.title}: {exc}")
            report.failed.emit(row, "Failed: see the log below", str(exc), "")
            continue
        except Exception as exc:  # noqa: BLE001 - one bad take must not end the batch; the log has the trace
            log.exception("exporting %s failed", item.path)
            msg = f"could not export it ({exc}); the details are in the log"
            problems.append(f"{item.title}: {msg}")
            report.failed.emit(row, "Failed: see the log below", msg, "")
            continue
        written.append(done.path)
        exported.append(done)
        if done.note:
            report.note.emit(f"{item.title}: {done.note}.")
        if done.not_recorded:
            report.note.emit(f"{item.title}: exported, but not recorded in the library: {done.not_recorded}")
        report.done.emit(row, str(done.path))

    timeline: Path | None = None
    if plan.timeline is not None and not cancelled:
        if not written:
            report.note.emit("No timeline was written: no take was exported.")
        else:
            try:
                timeline = write_timeline(written, plan.timeline, plan.timeline_name,
                                          overwrite=plan.timeline_overwrite)
                record_timeline(plan.library, exported, timeline)
                report.note.emit(f"Timeline written: {timeline}")
            except TimelineError as exc:
                problems.append(f"timeline: {exc}")
                report.note.emit(f"The timeline was not written: {exc}")
            except Exception as exc:  # noqa: BLE001 - e.g. OTIO refusing a rate; the clips are fine
                log.exception("writing the timeline %s failed", plan.timeline)
                msg = (f"The timeline {plan.timeline.name} was not written ({exc}); the exported clips are fine. "
                       "The details are in the log.")
                problems.append(f"timeline: {msg}")
                report.note.emit(msg)
    summary = ExportSummary(tuple(written), timeline, tuple(problems), skipped, cancelled)
    report.finished.emit(summary)
    return summary


def _run_quietly(plan: ExportPlan, report: _Reporter, stop: _Stop) -> None:
    try:
        run_export(plan, report, stop)
    except RuntimeError:  # the dialog was deleted (the app closing): stop quietly
        stop.cancel.set()
        log.info("export stopped: its dialog was closed")


def ask_existing_with_a_box(parent: QWidget, paths: Sequence[Path]) -> ExistingChoice | None:
    """Ask once what to do with files already in the folder; None means "don't export"."""
    names = "\n".join(f"  {p.name}" for p in paths[:8]) + (f"\n  … and {len(paths) - 8} more" if len(paths) > 8 else "")
    box = QMessageBox(QMessageBox.Icon.Question, "Files already there",
                      f"{len(paths)} of the files to write {'is' if len(paths) == 1 else 'are'} already in the folder:\n"
                      f"{names}\n\nReplace them, write numbered copies beside them (name (2).mp4), or skip those?",
                      QMessageBox.StandardButton.Cancel, parent)
    overwrite = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
    number = box.addButton("Number", QMessageBox.ButtonRole.AcceptRole)
    skip = box.addButton("Skip", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(number)
    box.exec()
    clicked = box.clickedButton()
    return {overwrite: ExistingChoice.OVERWRITE, number: ExistingChoice.NUMBER,
            skip: ExistingChoice.SKIP}.get(clicked)


def ask_create_folder_with_a_box(parent: QWidget, folder: Path) -> bool:
    """Offer to create a destination folder that does not exist yet."""
    box = QMessageBox(QMessageBox.Icon.Question, "Create the folder?",
                      f"The folder {folder} does not exist yet.\n\nCreate it and export into it?",
                      QMessageBox.StandardButton.Cancel, parent)
    create = box.addButton("Create Folder", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(create)
    box.exec()
    return box.clickedButton() is create


class ExportDialog(QDialog):
    """Export takes as files and, in the same step, an editor timeline of them."""

    exportFinished = Signal(object)  # ExportSummary

    COLUMNS = ("Take", "File", "Progress", "Status")

    def __init__(self, items: Sequence[ExportItem], parent: QWidget | None = None, *,
                 folder: Path | None = None, timeline_name: str = "Shotsketch timeline",
                 library: Library | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export takes")
        self.items = tuple(items)
        self.library = library
        self.ask_existing: Callable[[Sequence[Path]], ExistingChoice | None] = (
            lambda paths: ask_existing_with_a_box(self, paths))
        self.ask_create_folder: Callable[[Path], bool] = lambda folder: ask_create_folder_with_a_box(self, folder)
        self.choose_folder: Callable[[Path], Path | None] = self._choose_folder_with_a_dialog
        self._thread: threading.Thread | None = None
        self._stop = _Stop()
        self._close_when_done = False
        self._progress: dict[int, tuple[int, int]] = {}
        self.summary: ExportSummary | None = None

        self._report = _Reporter(self)
        self._report.started.connect(self._on_started)
        self._report.progress.connect(self._on_progress)
        self._report.done.connect(self._on_done)
        self._report.skipped.connect(self._on_skipped)
        self._report.failed.connect(self._on_failed)
        self._report.cancelled.connect(self._on_cancelled)
        self._report.note.connect(self._log)
        self._report.finished.connect(self._on_finished)

        self.folder_edit = QLineEdit(str(folder or Path.home()))
        self.folder_edit.textChanged.connect(lambda _t: self._refresh_names())
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)

        self.format_combo = QComboBox()
        for fmt in ClipFormat:
            self.format_combo.addItem(fmt.label, fmt)
        self.format_combo.currentIndexChanged.connect(lambda _i: self._on_format())
        self.sidecar_box = QCheckBox("Write each take's recipe beside it (.json)")
        self.sidecar_box.setChecked(True)

        self.timeline_box = QCheckBox("Also write an editor timeline of these takes")
        self.timeline_box.setChecked(True)
        self.timeline_combo = QComboBox()
        for ext, label in TIMELINE_LABELS.items():
            if ext in TIMELINE_FORMATS:
                self.timeline_combo.addItem(label, ext)
        self.timeline_name_edit = QLineEdit(timeline_name)
        self.timeline_box.toggled.connect(lambda _on: self._on_format())
        timeline_row = QHBoxLayout()
        timeline_row.addWidget(self.timeline_combo)
        timeline_row.addWidget(self.timeline_name_edit, 1)

        form = QFormLayout()
        form.addRow("Folder", folder_row)
        form.addRow("Format", self.format_combo)
        form.addRow("", self.sidecar_box)
        form.addRow("", self.timeline_box)
        form.addRow("Timeline", timeline_row)

        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setColumnCount(len(self.COLUMNS))
        self.table.setHeaderLabels(list(self.COLUMNS))
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(1, 230)
        self.table.setColumnWidth(2, 140)
        self.row_bars: list[QProgressBar] = []
        for item in self.items:
            row = QTreeWidgetItem(self.table, [item.title, "", "", RowState.WAITING.value])
            row.setToolTip(0, str(item.path))
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setValue(0)
            bar.setTextVisible(True)
            bar.setMaximumHeight(18)
            self.table.setItemWidget(row, 2, bar)
            self.row_bars.append(bar)
        for index, item in enumerate(self.items):
            if not item.path.exists():  # say so before anything starts; the export skips it with the same words
                self._set_row(index, RowState.FAILED, status="File missing: deleted or moved",
                              tip=f"The take's file {item.path} is missing (deleted or moved).")

        self.overall_bar = QProgressBar()
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setValue(0)
        self.overall_bar.setFormat("%p%")
        self.status_label = QLabel(f"{len(self.items)} take{'s' if len(self.items) != 1 else ''} to export.")
        self.status_label.setWordWrap(True)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_view.setPlaceholderText("Messages about the export appear here.")
        self.log_view.setMaximumBlockCount(2000)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.hide()
        self.export_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel_or_close)
        self.close_button.clicked.connect(self.accept)

        root = QVBoxLayout(self)
        root.addLayout(form)
        root.addWidget(self.table, 2)
        root.addWidget(self.overall_bar)
        root.addWidget(self.status_label)
        root.addWidget(self.log_view, 1)
        root.addWidget(self.buttons)
        self.resize(760, 560)
        self._on_format()

    # -- construction from the library
    @classmethod
    def for_takes(cls, library, take_ids: Sequence[int], parent: QWidget | None = None,  # noqa: ANN001
                  **kwargs: Any) -> ExportDialog:
        """A dialog for library takes, named "<shot> take <id>"; the timeline after the shot or project."""
        items: list[ExportItem] = []
        shots: dict[int, str] = {}
        projects: set[int] = set()
        for take_id in take_ids:
            take = library.get_take(take_id)
            variant = library.get_variant(take.variant_id)
            if variant.shot_id not in shots:
                shot = library.get_shot(variant.shot_id)
                shots[variant.shot_id] = shot.name
                projects.add(shot.project_id)
            shot_name = shots[variant.shot_id]
            items.append(ExportItem(take.file, safe_stem(f"{shot_name} take {take.id}"), take.id, take.recipe or None,
                                    f"{shot_name} · take {take.id}"))
        if "timeline_name" not in kwargs:
            if len(shots) == 1:
                kwargs["timeline_name"] = next(iter(shots.values()))
            elif len(projects) == 1:
                kwargs["timeline_name"] = library.get_project(next(iter(projects))).name
        kwargs.setdefault("library", library)
        return cls(items, parent, **kwargs)

    # -- settings read on the UI thread
    def folder(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    def set_folder(self, folder: Path) -> None:
        self.folder_edit.setText(str(folder))

    def clip_format(self) -> ClipFormat:
        return self.format_combo.currentData()

    def set_format(self, fmt: ClipFormat | str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(ClipFormat.parse(fmt)))

    def set_timeline(self, ext: str | None) -> None:
        """``".otio"``, ``".xml"``, ``".edl"``, or None for no timeline."""
        self.timeline_box.setChecked(ext is not None)
        if ext is not None:
            self.timeline_combo.setCurrentIndex(self.timeline_combo.findData(ext))

    def destinations(self) -> list[Path]:
        folder, fmt = self.folder(), self.clip_format()
        return [folder / suggested_name(item.stem, fmt) for item in self.items]

    def timeline_path(self) -> Path | None:
        if not self.timeline_box.isChecked() or not self.timeline_box.isEnabled():
            return None
        name = safe_stem(self.timeline_name_edit.text(), "timeline")
        return self.folder() / (name + self.timeline_combo.currentData())

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- running
    def start(self) -> bool:
        """Check the folder, ask about files already there, then export on a worker thread."""
        if self.is_running() or not self.items:
            return False
        plan = self._plan()
        if plan is None:
            return False
        self._stop = _Stop()
        self._progress.clear()
        self.summary = None
        for row in range(len(self.items)):
            self._set_row(row, RowState.WAITING)
            self.row_bars[row].setValue(0)
        self.overall_bar.setValue(0)
        self._set_running(True)
        self._log(f"Exporting {len(self.items)} take(s) as {plan.fmt.label} to {plan.folder}")
        self._thread = threading.Thread(target=_run_quietly, args=(plan, self._report, self._stop),
                                        name="shotsketch-export", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop after the current frame; the take being written is discarded (no partial file)."""
        if self.is_running():
            self._stop.cancel.set()
            self.cancel_button.setEnabled(False)
            self.status_label.setText("Cancelling…")

    def cancel_or_close(self) -> None:
        if self.is_running():
            self.cancel()
        else:
            self.reject()

    def wait(self, timeout: float = 30.0) -> None:
        """Block until the worker ends (tests and shutdown only)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def reject(self) -> None:
        if self.is_running():  # closing while exporting: cancel, close when the worker has stopped
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def _plan(self) -> ExportPlan | None:
        folder = self.folder()
        if not self._folder_ready(folder):
            return None
        fmt = self.clip_format()
        dests: list[Path | None] = list(self.destinations())
        timeline = self.timeline_path()
        clashes = [d for d in dests if d is not None and os.path.lexists(d)]
        if timeline is not None and os.path.lexists(timeline):
            clashes.append(timeline)
        on_exists, timeline_overwrite = "error", False
        if clashes:
            choice = self.ask_existing(clashes)
            if choice is None:
                self._log("Nothing exported: files with these names are already in the folder.")
                return None
            if choice is ExistingChoice.OVERWRITE:
                on_exists, timeline_overwrite = "overwrite", True
            elif choice is ExistingChoice.NUMBER:
                on_exists = "number"
                if timeline is not None and os.path.lexists(timeline):
                    timeline = free_name(timeline)
            else:
                dests = [None if d is not None and os.path.lexists(d) else d for d in dests]
                if timeline is not None and os.path.lexists(timeline):
                    self._log(f"The timeline {timeline.name} is already there; it is skipped as asked.")
                    timeline = None
        return ExportPlan(self.items, folder, fmt, tuple(dests), on_exists, self.sidecar_box.isChecked(),
                          timeline, timeline_overwrite, self.timeline_name_edit.text().strip() or "Shotsketch",
                          self.library)

    def _folder_ready(self, folder: Path) -> bool:
        """The folder is there and writable, or created now that the person agreed; else one message."""
        if str(folder).strip() and str(folder) != "." and not os.path.lexists(folder):
            if not self.ask_create_folder(folder):
                self._fault(f"Nothing exported: the folder {folder} does not exist. Create it, or choose another.")
                return False
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._fault(f"Cannot create the folder {folder} ({exc.strerror or exc}); choose another folder.")
                return False
            self._log(f"Created the folder {folder}.")
        problem = self._folder_problem(folder)
        if problem:
            self._fault(problem)
            return False
        return True

    @staticmethod
    def _folder_problem(folder: Path) -> str:
        if not str(folder).strip() or str(folder) == ".":
            return "Choose a folder to export into."
        if not folder.exists():
            return f"The folder {folder} does not exist; create it or choose another folder."
        if not folder.is_dir():
            return f"{folder} is a file, not a folder; choose a folder to export into."
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"Cannot write into {folder} (no permission or read-only); choose another folder."
        return ""

    # -- worker reports (UI thread)
    def _on_started(self, row: int) -> None:
        self._set_row(row, RowState.EXPORTING)
        self.table.scrollToItem(self.table.topLevelItem(row))

    def _on_progress(self, row: int, done: int, total: int) -> None:
        self._progress[row] = (done, max(total, 1))
        self.row_bars[row].setValue(round(100 * done / max(total, 1)))
        self._update_overall()

    def _on_done(self, row: int, path: str) -> None:
        self._progress[row] = (1, 1)
        self.row_bars[row].setValue(100)
        self._set_row(row, RowState.DONE, Path(path).name)
        self._update_overall()

    def _on_skipped(self, row: int, reason: str) -> None:
        self._progress[row] = (1, 1)
        self._set_row(row, RowState.SKIPPED, status=f"Skipped: {reason}")
        self._log(f"{self.items[row].title}: skipped ({reason})")
        self._update_overall()

    def _on_failed(self, row: int, short: str, message: str, details: str) -> None:
        self._progress[row] = (1, 1)
        self.row_bars[row].setValue(0)
        self._set_row(row, RowState.FAILED, status=short, tip=message)
        self._log(f"{self.items[row].title}: {message}")
        if details:
            self._log("ffmpeg said:\n" + "\n".join("    " + line for line in details.splitlines()[-12:]))
        self._update_overall()

    def _on_cancelled(self, row: int) -> None:
        self.row_bars[row].setValue(0)
        self._set_row(row, RowState.CANCELLED, status="Cancelled: nothing written")

    def _on_finished(self, summary: ExportSummary) -> None:
        self.summary = summary
        n = len(summary.written)
        parts = [f"Exported {n} of {len(self.items)} take{'s' if len(self.items) != 1 else ''}"]
        if summary.timeline is not None:
            parts.append(f"and the timeline {summary.timeline.name}")
        text = " ".join(parts) + "."
        if summary.cancelled:
            text = f"Cancelled. {text} No partial file was left behind."
        if summary.problems:
            text += f" {len(summary.problems)} problem{'s' if len(summary.problems) != 1 else ''}: see below."
        self.status_label.setText(text)  # the line under the progress bar; the log pane keeps the details
        log.info("export: %s", text)
        if not summary.cancelled:
            self.overall_bar.setValue(self.overall_bar.maximum())
        self._set_running(False)
        self._thread = None
        self.exportFinished.emit(summary)
        if self._close_when_done:
            super().reject()

    # -- helpers
    def _update_overall(self) -> None:
        if not self.items:
            return
        fraction = sum(d / t for d, t in self._progress.values()) / len(self.items)
        self.overall_bar.setValue(round(fraction * self.overall_bar.maximum()))

    def _set_row(self, row: int, state: RowState, file: str | None = None, status: str | None = None,
                 tip: str | None = None) -> None:
        item = self.table.topLevelItem(row)
        if file is not None:
            item.setText(1, file)
        item.setText(3, status or state.value)
        item.setToolTip(3, tip or status or state.value)
        colour = {RowState.FAILED: QColor(200, 60, 50), RowState.DONE: QColor(40, 140, 60)}.get(state)
        item.setForeground(3, colour if colour is not None else self.palette().color(self.foregroundRole()))

    def _refresh_names(self) -> None:
        if self.is_running():
            return
        for row, dest in enumerate(self.destinations()):
            self.table.topLevelItem(row).setText(1, dest.name)

    def _on_format(self) -> None:
        fmt = self.clip_format()
        editable = fmt in (ClipFormat.MP4, ClipFormat.PRORES, ClipFormat.DNXHR)
        self.timeline_box.setEnabled(editable)
        self.timeline_box.setToolTip("" if editable else "Editor timelines need MP4 or MOV clips")
        on = editable and self.timeline_box.isChecked()
        self.timeline_combo.setEnabled(on)
        self.timeline_name_edit.setEnabled(on)
        self._refresh_names()

    def _set_running(self, running: bool) -> None:
        for w in (self.export_button, self.format_combo, self.folder_edit, self.sidecar_box, self.timeline_box,
                  self.timeline_combo, self.timeline_name_edit):
            w.setEnabled(not running)
        if not running:
            self._on_format()
        self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(running)
        self.close_button.setVisible(not running)
        self.export_button.setText("Export again" if not running and self.summary is not None else "Export")

    def _fault(self, message: str) -> None:
        """A refusal before anything starts: one line under the progress bar (and the log file)."""
        self.status_label.setText(message)
        log.info("export: %s", message)

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(text)
        log.info("export: %s", text)

    def _browse(self) -> None:
        chosen = self.choose_folder(self.folder())
        if chosen is not None:
            self.set_folder(chosen)

    def _choose_folder_with_a_dialog(self, start: Path) -> Path | None:
        path = QFileDialog.getExistingDirectory(self, "Export into folder", str(start))
        return Path(path) if path else None

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802
        if self.is_running():
            self._close_when_done = True
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)


__all__ = ["ExportDialog", "ExportItem", "ExportSummary", "ExistingChoice", "RowState", "export_one", "run_export",
           "safe_stem"]
