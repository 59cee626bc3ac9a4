"""The generation queue, kept in the library so it survives a restart and is shared by windows.

- :meth:`JobQueue.queue_shot` turns the open shot into jobs: the request is validated, the
  shot's variant is found by its content in the library (or made, as a child of the variant the
  editors held) — "same content, same variant", across restarts — and each job gets a seed.
  Generate uses the shot's seed; "Queue N seeds" takes the next N seeds that the variant has not
  used yet (by its takes or queued jobs), starting at the shot's seed.
- A job is **claimed** by the window that will run it (:attr:`JobQueue.owner`, one per window).
  Claims are taken in one library transaction, so two windows never run the same job. Closing a
  window gives its jobs back (:meth:`release`); a window that crashed is detected at the next
  :meth:`resume` (its process is gone) and its jobs are claimed again.
- Two windows may edit the same shot. Each window's editors autosave the shot's editor state, and
  the last save wins for that state (the prompt being typed); nothing else can be lost: a take
  always lands in the variant its job was queued for, variants are found by content in one
  transaction (both windows get the same variant for the same content), and jobs are claimed.
- :meth:`finish` ends a job with its final engine event: a finished one becomes a take through
  :class:`~shotsketch.app.takes.TakeService`; a cancelled or failed one leaves the queue and the
  variant made for it is removed when it has no takes.

The job queue touches no Qt. The window runs the GPU work on its worker and calls :meth:`started`
and :meth:`finish` (the latter off its main thread: it encodes). :func:`run_queued` runs the claimed
jobs on the calling thread (tests, headless use).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from shotsketch.app.shot import OpenShot
from shotsketch.app.takes import TakeService
from shotsketch.core import paths
from shotsketch.core.layout import Layout, LayoutError
from shotsketch.core.leftovers import is_running
from shotsketch.core.library import Job, Library, LibraryError, Take
from shotsketch.core.ranges import MAX_SEED
from shotsketch.engine.events import CancelToken, FinalEvent, JobCancelled, JobEvent, JobFailed, JobFinished
from shotsketch.engine.requests import GenerationRequest, RequestError, validate_request

log = logging.getLogger(__name__)

OLD_QUEUE_FILE = "queue.json"
"""The queue file of Shotsketch before the queue moved into the library (read once, then set aside)."""


@dataclass(frozen=True)
class QueuedJob:
    """A job of the queue: what to run and where its take goes."""

    id: str
    shot_id: int
    variant_id: int
    request: GenerationRequest

    @property
    def seed(self) -> int:
        return self.request.seed

    @property
    def label(self) -> str:
        return f"Seed {self.request.seed}"

    def layout(self) -> Layout | None:
        """The sketch the job was queued with (for the take's overlay), or None."""
        if not self.request.layout_json:
            return None
        try:
            return Layout.from_json(self.request.layout_json)
        except (LayoutError, ValueError):
            return None


@dataclass(frozen=True)
class JobEnded:
    """What :meth:`JobQueue.finish` did: the take saved (finished), or the reason it ended."""

    job: QueuedJob
    take: Take | None = None
    message: str = ""  # a failed job's sentence, for the person
    cancelled: bool = False


def next_unused_seeds(used: set[int], start: int, count: int) -> list[int]:
    """The first ``count`` seeds from ``start`` on (wrapping after the largest) not in ``used``."""
    seeds: list[int] = []
    seed = start % (MAX_SEED + 1)
    while len(seeds) < count:
        if seed not in used:
            seeds.append(seed)
        seed = (seed + 1) % (MAX_SEED + 1)
    return seeds


def new_owner() -> str:
    """A name for this window's claims: host, process id and a random part."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_is_gone(owner: str) -> bool:
    """Whether the window that claimed jobs under ``owner`` is certainly gone: it ran on this
    host and its process no longer exists. (Another host's claims are left alone.)"""
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not is_running(int(pid_text))


def _queued(job: Job) -> QueuedJob | None:
    try:
        request = validate_request(GenerationRequest.from_dict(job.request()), check_image=False)
    except (RequestError, ValueError, TypeError) as exc:
        log.warning("queued job %s cannot run (%s); it is dropped", job.id, exc)
        return None
    return QueuedJob(job.id, job.shot_id, job.variant_id, request)


class JobQueue:
    """The queue of one window (or one headless run) over the library's jobs."""

    def __init__(self, library: Library, *, owner: str | None = None) -> None:
        self.library = library
        self.owner = owner or new_owner()
        self.takes = TakeService(library)
        self._jobs: dict[str, QueuedJob] = {}

    # -- reading
    def jobs(self) -> list[QueuedJob]:
        """This window's jobs (claimed, not ended), in queue order."""
        return list(self._jobs.values())

    def job(self, job_id: str) -> QueuedJob | None:
        return self._jobs.get(job_id)

    # -- queueing
    def queue_shot(self, shot: OpenShot, count: int = 1) -> list[QueuedJob]:
        """Queue ``count`` takes of the open shot, claimed by this window. ``count == 1`` uses the
        shot's seed; more take the next seeds the variant has not used. The shot's variant becomes
        the one its editors hold. Raises RequestError (nothing queued) when the shot cannot run."""
        if shot.shot_id is None:
            raise RequestError("open or create a shot first")
        base = validate_request(shot.request(), check_image=False)
        prompt, negative, layout_json, settings = shot.variant_content()
        parent = shot.variant_id if shot.variant_id is not None else self._latest_variant(shot.shot_id)
        variant, _created = self.library.variant_for_content(shot.shot_id, prompt, negative, layout_json, settings,
                                                             parent_id=parent)
        shot.set_variant_id(variant.id)
        if count <= 1:
            seeds = [base.seed]
        else:
            seeds = next_unused_seeds(self.library.used_seeds(variant.id), base.seed, count)
        jobs = [QueuedJob(uuid.uuid4().hex[:12], shot.shot_id, variant.id, replace(base, seed=seed))
                for seed in seeds]
        self.library.add_jobs([(j.id, j.shot_id, j.variant_id, json.dumps(j.request.to_dict())) for j in jobs],
                              claimed_by=self.owner)
        for job in jobs:
            self._jobs[job.id] = job
        return jobs

    def _latest_variant(self, shot_id: int) -> int | None:
        variants = self.library.list_variants(shot_id)
        return variants[-1].id if variants else None

    def resume(self, old_queue_file: Path | None = None) -> tuple[list[QueuedJob], str | None]:
        """At start: bring in the old queue file once, then claim every job no window holds (and
        those of windows that are gone). Returns (the jobs now this window's, a sentence about a
        problem or None)."""
        problem = migrate_queue_file(self.library, old_queue_file)
        stale = {o for o in self.library.job_owners() if o != self.owner and owner_is_gone(o)}
        claimed = self.library.claim_jobs(self.owner, stale)
        resumed = []
        for row in claimed:
            job = _queued(row)
            if job is None:
                self.library.remove_job(row.id)
                continue
            self._jobs[job.id] = job
            resumed.append(job)
        return resumed, problem

    # -- running
    def started(self, job_id: str) -> bool:
        """The worker starts the job: False when this window no longer holds it (then skip it)."""
        return job_id in self._jobs and self.library.set_job_running(job_id, self.owner)

    def finish(self, job_id: str, final: FinalEvent) -> JobEnded | None:
        """End a job with its final event. A finished job is saved as a take first (encoding:
        call this off the main thread); the job leaves the queue either way. None for a job
        this window does not hold. Raises the take service's errors (the job stays queued then,
        so nothing is lost)."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        match final:
            case JobFinished(frames=frames, recipe=recipe, heatmaps=heatmaps):
                take = self.takes.save(job.variant_id, frames, recipe, job.request.fps, heatmaps)
                self._end(job)
                return JobEnded(job, take=take)
            case JobCancelled():
                self._end(job, prune=True)
                return JobEnded(job, cancelled=True)
            case JobFailed(message=message):
                self._end(job, prune=True)
                return JobEnded(job, message=message)
        raise TypeError(f"not a final event: {final!r}")

    def cancel(self, job_id: str) -> JobEnded | None:
        """Remove a job that has not started (the worker is told separately)."""
        job = self._jobs.get(job_id)
        return self.finish(job_id, JobCancelled(job_id, 0)) if job is not None else None

    def _end(self, job: QueuedJob, *, prune: bool = False) -> None:
        self._jobs.pop(job.id, None)
        self.library.remove_job(job.id)
        if prune:
            try:
                self.library.delete_variant_if_unused(job.variant_id)
            except LibraryError:
                log.debug("variant %d kept", job.variant_id, exc_info=True)

    def release(self) -> int:
        """The window closes: its jobs wait, queued, for the next start. Returns how many."""
        self._jobs.clear()
        return self.library.release_jobs(self.owner)


class Engine(Protocol):
    """What :func:`run_queued` needs of an engine (the engine's Generator has it)."""

    def generate(self, request: GenerationRequest, on_event: Callable[[JobEvent], None] | None = None,
                 cancel: CancelToken | None = None, job_id: str | None = None) -> FinalEvent: ...


def run_queued(queue: JobQueue, engine: Engine, on_event: Callable[[JobEvent], None] | None = None,
               cancel: CancelToken | None = None) -> list[JobEnded]:
    """Run this queue's jobs one after another on this thread; returns how each ended."""
    ended = []
    for job in queue.jobs():
        if not queue.started(job.id):
            continue
        final = engine.generate(job.request, on_event, cancel, job_id=job.id)
        result = queue.finish(job.id, final)
        if result is not None:
            ended.append(result)
    return ended


# -- the old queue file, migrated once -------------------------------------------------------------


def migrate_queue_file(library: Library, path: Path | None = None) -> str | None:
    """Move the jobs of the old queue file (``queue.json`` in the data folder) into the library,
    unclaimed, then set the file aside (``queue.json.migrated``). Returns a sentence when the file
    could not be used (it is then kept as ``queue.json.damaged-...``), else None."""
    path = path or paths.data_dir() / OLD_QUEUE_FILE
    if not path.exists():
        return None
    try:
        rows = _old_queue_rows(library, json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, RequestError, TypeError, RecursionError, LibraryError) as exc:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        log.warning("queue file %s unusable (%s); kept as %s", path, exc, aside)
        return f"The saved queue could not be read ({exc}); it was kept as {aside.name} and the queue starts empty."
    if rows:
        library.add_jobs(rows, claimed_by=None)
    os.replace(path, path.with_name(path.name + ".migrated"))
    log.info("moved %d queued job(s) from %s into the library", len(rows), path)
    return None


def _old_queue_rows(library: Library, data: Any) -> list[tuple[str, int, int, str]]:
    """The old file's jobs as library rows; a job whose shot is gone is dropped."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ValueError("not a queue file")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > 1:
        raise ValueError(f"written by a newer Shotsketch (schema {version!r})")
    known = {job.id for job in library.list_jobs()}
    rows = []
    for entry in data["jobs"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("job_id"), str):
            raise ValueError("a job has no id")
        request = validate_request(GenerationRequest.from_dict(entry.get("request")), check_image=False)
        snap = entry.get("snapshot")
        if not isinstance(snap, dict) or not isinstance(snap.get("shot_id"), int):
            raise ValueError("a job's snapshot has no shot")
        texts = [snap.get(k) for k in ("prompt", "negative_prompt", "settings_json")]
        if not all(isinstance(t, str) for t in texts) or not (snap.get("layout_json") is None
                                                             or isinstance(snap.get("layout_json"), str)):
            raise ValueError("a job's snapshot has a missing text")
        settings = json.loads(texts[2])
        if not isinstance(settings, dict):
            raise ValueError("a job's settings are not an object")
        if entry["job_id"] in known:
            continue
        try:
            library.get_shot(snap["shot_id"])
        except LibraryError:
            log.info("dropping queued job %s: its shot is gone", entry["job_id"])
            continue
        variant, _ = library.variant_for_content(snap["shot_id"], texts[0], texts[1], snap.get("layout_json"),
                                                 settings)
        known.add(entry["job_id"])
        rows.append((entry["job_id"], snap["shot_id"], variant.id, json.dumps(request.to_dict())))
    return rows


__all__ = ["Engine", "JobEnded", "JobQueue", "QueuedJob", "migrate_queue_file", "new_owner", "next_unused_seeds",
           "owner_is_gone", "run_queued"]
