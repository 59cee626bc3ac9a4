"""The generation queue: one row per job with its state, step progress, ETA, live preview and a
cancel button. The panel only shows; the main window owns the jobs and feeds it engine events."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QToolButton, QVBoxLayout,
    QWidget,
)

from shotsketch.engine.events import JobCancelled, JobEvent, JobFailed, JobFinished, JobStarted, JobStep
from shotsketch.engine.requests import GenerationRequest
from shotsketch.ui.errors import sentence

PREVIEW_SIZE = QSize(96, 56)


class JobState(enum.Enum):
    QUEUED = "queued"
    LOADING = "loading model"
    RUNNING = "generating"
    SAVING = "saving"
    DONE = "done"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    request: GenerationRequest
    label: str  # the row's title, e.g. "Seed 3"

    @property
    def detail(self) -> str:
        r = self.request
        return f"{r.width}×{r.height} · {r.frames} frames"


def preview_pixmap(preview: np.ndarray, size: QSize = PREVIEW_SIZE) -> QPixmap:
    """A uint8 HxWx3 preview scaled up to ``size`` by whole pixels (nearest neighbour), aspect kept."""
    rgb = np.ascontiguousarray(preview[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image.scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s left"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min left"


class JobRow(QFrame):
    cancelRequested = Signal(str)
    removeRequested = Signal(str)

    def __init__(self, job: QueuedJob, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.state = JobState.QUEUED
        self.setObjectName("jobRow")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.preview = QLabel()
        self.preview.setObjectName("jobPreview")
        self.preview.setFixedSize(PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #1c1c1c; color: #888;")
        self.preview.setText("…")
        self.title = QLabel(job.label)
        self.title.setObjectName("jobTitle")
        self.title.setToolTip(f"{job.label} · {job.detail}\n{job.request.prompt}")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setWordWrap(True)  # a narrow dock wraps the words instead of cutting them
        self.detail = QLabel(job.detail)
        self.detail.setObjectName("jobDetail")
        self.detail.setToolTip(self.title.toolTip())
        self.detail.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.detail.setWordWrap(True)
        self.status = QLabel(self.state.value.capitalize())
        self.status.setObjectName("jobStatus")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # the steps the engine runs: the request's, until the engine says otherwise (a step-distilled
        # model runs its own few steps whatever the request asked)
        self.total_steps = job.request.steps
        self.progress = QProgressBar()
        self.progress.setRange(0, job.request.steps)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m steps")
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(16)
        self.progress.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # never wider than the card
        self.cancel_button = QToolButton()
        self.cancel_button.setText("✕")
        self.cancel_button.setToolTip("Cancel this job")
        self.cancel_button.setAccessibleName("Cancel job")
        self.cancel_button.clicked.connect(lambda: self._on_button())
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.detail)
        text.addWidget(self.progress)
        text.addWidget(self.status)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 6, 6, 6)
        row.addWidget(self.preview)
        row.addLayout(text, 1)
        row.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignTop)

    def _on_button(self) -> None:
        if self.state.finished:
            self.removeRequested.emit(self.job.job_id)
        else:
            self.cancelRequested.emit(self.job.job_id)

    def set_state(self, state: JobState, note: str = "") -> None:
        self.state = state
        text = state.value.capitalize()
        if note:
            text = f"{text} — {note}" if state is not JobState.FAILED else note
        self.status.setText(text)
        self.status.setToolTip(note)
        if state.finished:
            self.cancel_button.setToolTip("Remove from the list")
            self.cancel_button.setAccessibleName("Remove job")
        if state is JobState.DONE:
            self.progress.setValue(self.progress.maximum())
        if state is JobState.SAVING:
            self.progress.setRange(0, 0)  # busy indicator while the clip is encoded
        elif self.progress.maximum() == 0:
            self.progress.setRange(0, self.total_steps)
            self.progress.setValue(self.total_steps if state is JobState.DONE else 0)
        self.cancel_button.setEnabled(state is not JobState.CANCELLING)
        self.setProperty("state", state.name.lower())
        self.style().unpolish(self)
        self.style().polish(self)

    def set_total_steps(self, total: int) -> None:
        self.total_steps = total
        if self.progress.maximum() != 0:
            self.progress.setRange(0, total)

    def set_step(self, step: int, total: int, eta: float | None, preview: np.ndarray | None) -> None:
        self.total_steps = total
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
        self.progress.setValue(step)
        if self.state is not JobState.CANCELLING:
            self.set_state(JobState.RUNNING, format_eta(eta) if step < total else "decoding")
        if preview is not None:
            self.set_preview(preview)

    def set_preview(self, frame: np.ndarray) -> None:
        self.preview.setPixmap(preview_pixmap(frame, self.preview.size()))


class QueuePanel(QWidget):
    """Dock content: the list of jobs, newest at the bottom, with "Cancel all" and "Clear finished"."""

    cancelRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: dict[str, JobRow] = {}
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.setSpacing(4)
        self._empty = QLabel("No jobs yet.\nPress Generate (Ctrl+Enter) to queue one.")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._empty.setObjectName("queueEmpty")
        self._list_layout.addWidget(self._empty)
        self._list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self._list)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary = QLabel("")
        self.summary.setObjectName("queueSummary")
        self.cancel_all = QPushButton("Cancel all")
        self.cancel_all.clicked.connect(self._cancel_all)
        self.clear_finished = QPushButton("Clear finished")
        self.clear_finished.clicked.connect(self.remove_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_finished)
        buttons.addWidget(self.cancel_all)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self._update_summary()

    # -- jobs
    def add_job(self, job: QueuedJob) -> JobRow:
        row = JobRow(job)
        row.cancelRequested.connect(self.cancelRequested)
        row.removeRequested.connect(self.remove_job)
        self._rows[job.job_id] = row
        self._list_layout.insertWidget(self._list_layout.count() - 1, row)
        self._update_summary()
        return row

    def row(self, job_id: str) -> JobRow | None:
        return self._rows.get(job_id)

    def job_ids(self) -> list[str]:
        return list(self._rows)

    def state(self, job_id: str) -> JobState | None:
        row = self._rows.get(job_id)
        return row.state if row else None

    def set_state(self, job_id: str, state: JobState, note: str = "") -> None:
        row = self._rows.get(job_id)
        if row is not None:
            row.set_state(state, note)
            self._update_summary()

    def apply(self, event: JobEvent) -> None:
        """Show one engine event on its job's row."""
        row = self._rows.get(event.job_id)
        if row is None:
            return
        match event:
            case JobStarted(total_steps=total):
                row.set_total_steps(total)
                if row.state is not JobState.CANCELLING:
                    row.set_state(JobState.RUNNING, "encoding the prompt")
            case JobStep(step=step, total_steps=total, eta_s=eta, preview=preview):
                row.set_step(step, total, eta, preview)
            case JobFinished():
                row.set_state(JobState.SAVING, "writing the clip")
            case JobFailed(message=message):
                row.set_state(JobState.FAILED, sentence(message))
            case JobCancelled(at_step=at):
                row.set_state(JobState.CANCELLED, f"at step {at}" if at else "before it started")
        self._update_summary()

    def remove_job(self, job_id: str) -> None:
        row = self._rows.pop(job_id, None)
        if row is not None:
            row.setParent(None)
            row.deleteLater()
        self._update_summary()

    def remove_finished(self) -> None:
        for job_id in [j for j, r in self._rows.items() if r.state.finished]:
            self.remove_job(job_id)

    def _cancel_all(self) -> None:
        for job_id, row in list(self._rows.items()):
            if not row.state.finished and row.state is not JobState.CANCELLING:
                self.cancelRequested.emit(job_id)

    def active_count(self) -> int:
        return sum(1 for r in self._rows.values() if not r.state.finished)

    def _update_summary(self) -> None:
        self._empty.setVisible(not self._rows)
        active = self.active_count()
        waiting = sum(1 for r in self._rows.values() if r.state is JobState.QUEUED)
        if not self._rows:
            self.summary.setText("")
        elif active == 0:
            self.summary.setText("All done")
        else:
            self.summary.setText(f"{active - waiting} in progress · {waiting} waiting")
        self.cancel_all.setEnabled(active > 0)
        self.clear_finished.setEnabled(any(r.state.finished for r in self._rows.values()))
