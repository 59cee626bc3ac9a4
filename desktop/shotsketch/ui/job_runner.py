"""Runs the library's job queue (:class:`~shotsketch.app.jobs.JobQueue`) on the one GPU worker and
shows it in the queue panel.

Every library write (queueing, claiming a started job, saving a take) goes through the window's
:class:`~shotsketch.ui.background.Background` writer, so the window never waits for the disk;
engine events arrive on the main thread and are handled in one ``match`` (:meth:`JobRunner.on_event`).
"""

from __future__ import annotations

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QObject, Signal

from shotsketch.app.jobs import JobQueue
from shotsketch.app.jobs import QueuedJob as Job
from shotsketch.app.shot import OpenShot
from shotsketch.engine.events import FinalEvent, JobCancelled, JobEvent, JobFailed, JobFinished, JobStarted
from shotsketch.ui.background import Background
from shotsketch.ui.queue_panel import JobState, QueuedJob, QueuePanel
from shotsketch.ui.worker import GpuWorker


class JobRunner(QObject):
    queued = Signal(object, list)  # the shot copy the jobs were made from, their ids
    ended = Signal(object, object)  # app.jobs.JobEnded, the engine's final event

    def __init__(self, jobs: JobQueue, worker: GpuWorker, panel: QueuePanel, background: Background,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.worker = worker
        self.panel = panel
        self.background = background
        self._closed = False
        worker.event.connect(self.on_event)
        panel.cancelRequested.connect(self.cancel)

    def queue(self, shot: OpenShot, count: int) -> None:
        """Queue ``count`` takes of ``shot`` (a detached copy of the open shot) in the library,
        then run them; :attr:`queued` follows."""
        self.background.spawn(self._queue(shot, count), "The takes could not be queued")

    async def _queue(self, shot: OpenShot, count: int) -> None:
        jobs = await self.background.call(self.jobs.queue_shot, shot, count)
        if not self._closed:
            self._run(jobs)
            self.queued.emit(shot, [job.id for job in jobs])

    def resume(self) -> tuple[int, str | None]:
        """At start: run the jobs left queued (by this window's last run, or a window that is
        gone). Returns (how many, a sentence about a problem or None)."""
        jobs, problem = self.jobs.resume()
        self._run(jobs)
        return len(jobs), problem

    def _run(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.panel.add_job(QueuedJob(job.id, job.request, job.label))
            self.worker.submit(job.id, job.request)

    def cancel(self, job_id: str) -> None:
        state = self.panel.state(job_id)
        if state is not None and not state.finished and self.worker.cancel(job_id):
            self.panel.set_state(job_id, JobState.CANCELLING)

    def cancel_all(self) -> None:
        for job_id in self.panel.job_ids():
            self.cancel(job_id)

    def on_event(self, event: JobEvent) -> None:
        """Every engine event, on the main thread, handled in one place."""
        if self._closed:
            return
        self.panel.apply(event)
        match event:
            case JobStarted(job_id=job_id):
                self.background.spawn(self._claim(job_id), "The job could not be marked as running")
            case JobFinished(job_id=job_id) | JobFailed(job_id=job_id) | JobCancelled(job_id=job_id):
                if isinstance(event, JobFinished):
                    self.panel.set_state(job_id, JobState.SAVING)
                self.background.spawn(self._end(job_id, event), "The clip was generated but could not be saved")

    async def _claim(self, job_id: str) -> None:
        if not await self.background.call(self.jobs.started, job_id):
            self.worker.cancel(job_id)  # another window holds it now

    async def _end(self, job_id: str, event: FinalEvent) -> None:
        try:
            ended = await self.background.call(self.jobs.finish, job_id, event)
        except Exception:
            self.panel.set_state(job_id, JobState.FAILED, "The clip could not be saved.")
            raise
        if ended is None or self._closed:
            return
        if ended.take is not None:
            self.panel.set_state(job_id, JobState.DONE, f"take {ended.take.id}")
        self.ended.emit(ended, event)

    def close(self) -> None:
        """Events that still arrive (the worker stopping) change nothing any more."""
        self._closed = True


__all__ = ["JobRunner"]
