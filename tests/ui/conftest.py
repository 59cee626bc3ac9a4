"""Shared UI fixtures: a qasync loop on pytest-qt's QApplication, a scripted engine, the demo model,
and a MainWindow on a per-test library."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from shotsketch.engine.events import (
    CancelToken, JobCancelled, JobFailed, JobFinished, JobStarted, JobStep,
)
from shotsketch.engine.requests import GenerationRequest


class FakeEngine:
    """A scripted Generator: each step sleeps ``step_s``, checks the cancel token, sends a preview.

    A prompt containing "FAIL" ends in JobFailed; "LOADFAIL" in the factory's model fails loading.
    Records the thread it was loaded and run on.
    """

    def __init__(self, step_s: float = 0.02, fail_load: bool = False, load_s: float = 0.0) -> None:
        self.step_s = step_s
        self.load_s = load_s
        self.fail_load = fail_load
        self.load_thread: threading.Thread | None = None
        self.run_threads: list[threading.Thread] = []
        self.requests: list[GenerationRequest] = []
        self.started = threading.Event()
        self.gate: threading.Event | None = None  # when set to an Event, step 1 waits for it

    needs_warm_up = False

    def warm_up(self) -> bool:
        return False

    def encode_prompts(self, prompt: str, negative: str) -> tuple[str, str]:
        return prompt, negative

    def unload(self) -> None:
        pass

    def load(self) -> None:
        self.load_thread = threading.current_thread()
        time.sleep(self.load_s)
        if self.fail_load:
            from shotsketch.engine.sources import ModelError

            raise ModelError("the model folder /nowhere does not exist")

    def generate(self, request, on_event=None, cancel=None, job_id=None):  # noqa: ANN001, ANN201
        emit = on_event or (lambda e: None)
        cancel = cancel or CancelToken()
        self.run_threads.append(threading.current_thread())
        self.requests.append(request)
        emit(JobStarted(job_id, request, request.steps))
        self.started.set()
        if "FAIL" in request.prompt:
            final = JobFailed(job_id, "the GPU ran out of memory; try a smaller size", detail="Traceback: fake OOM")
            emit(final)
            return final
        t0 = time.perf_counter()
        for i in range(request.steps):
            if self.gate is not None and i == 0:
                self.gate.wait(10)
            time.sleep(self.step_s)
            preview = np.zeros((4, 6, 3), np.uint8)
            preview[:, :3] = (255, 0, 0)
            preview[:, 3:] = (0, 0, 255)
            elapsed = time.perf_counter() - t0
            emit(JobStep(job_id, i + 1, request.steps, elapsed, elapsed / (i + 1) * (request.steps - i - 1), preview))
            if cancel.cancelled:
                final = JobCancelled(job_id, i + 1)
                emit(final)
                return final
        rng = np.random.default_rng(request.seed)
        frames = rng.integers(0, 255, (request.frames, request.height, request.width, 3), dtype=np.uint8)
        recipe = {"schema_version": 1, "request": request.to_dict(), "model": {"id": "fake"}}
        final = JobFinished(job_id, frames, recipe)
        emit(final)
        return final


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def qloop(qapp) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop running on pytest-qt's application: asyncio work runs whenever
    qtbot waits (waitSignal / waitUntil spin the Qt event loop)."""
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    try:
        for task in [t for t in asyncio.all_tasks(loop) if not t.done()]:
            task.cancel()
    finally:
        asyncio.events._set_running_loop(None)
        loop._QEventLoop__is_running = False  # type: ignore[attr-defined] - let close() run
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture(autouse=True)
def _garbage_collected_on_the_ui_thread() -> Iterator[None]:
    """As the app does (ui/app.py collect_garbage_on_the_ui_thread): no automatic collection during
    a test, which could run on the GPU worker's thread (importing torch allocates plenty) and destroy
    an earlier window's Qt objects there, leaving a timer of theirs registered on freed memory: a
    segfault in QTimerInfoList::activateTimers -> the key router's application event filter, seen
    about one run in five of tests/ui/test_layout_guidance_ui.py. Autouse, so set up before qtbot
    and torn down after it has closed its widgets: the UI thread collects them."""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    yield
    gc.collect()
    if was_enabled:
        gc.enable()


@pytest.fixture
def library(tmp_path):
    from shotsketch.core.library import Library

    lib = Library.open(tmp_path / "lib" / "library.sqlite3")
    yield lib
    lib.close()


@pytest.fixture
def make_window(qtbot, qloop, library) -> Iterator[Callable[..., object]]:
    """Build a MainWindow on the test's library (error dialogs off: tests read errors.history)."""
    from shotsketch.ui.main_window import MainWindow

    windows = []

    def make(engine=None, demo: bool = True, **kwargs):  # noqa: ANN001, ANN202
        engine = engine if engine is not None else FakeEngine()
        factory = kwargs.pop("engine_factory", None) or (lambda: engine)
        window = MainWindow(library=kwargs.pop("library", library), engine_factory=factory, demo=demo,
                            show_error_dialogs=False, **kwargs)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for w in windows:
        w.shutdown()
    # Collect the closed windows here, on the UI thread: left to a garbage collection that happens
    # to run on a later test's worker thread, Qt objects are destroyed off their thread.
    windows.clear()
    import gc

    gc.collect()


@pytest.fixture
def queue_takes(qtbot) -> Callable[..., list[str]]:
    """Press Generate for ``count`` takes and wait until the jobs are queued; their ids."""

    def queue(window, count: int = 1) -> list[str]:  # noqa: ANN001
        with qtbot.waitSignal(window.jobsQueued, timeout=15_000) as queued:
            assert window.generate(count)
        return queued.args[0]

    return queue


def small_request(**changes) -> GenerationRequest:
    fields = dict(prompt="A yellow ball rolls from the left edge to the center", negative_prompt="blurry",
                  width=96, height=64, frames=5, steps=3, guidance=5.0, seed=11)
    fields.update(changes)
    return GenerationRequest(**fields)


@pytest.fixture
def fake_engine_cls() -> type[FakeEngine]:
    return FakeEngine


@pytest.fixture
def make_request() -> Callable[..., GenerationRequest]:
    return small_request
