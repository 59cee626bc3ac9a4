"""GpuWorker: one long-lived thread, events back on the UI thread in order, cancel queued and running."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread

from shotsketch.engine.events import JobCancelled, JobFailed, JobFinished, JobStarted, JobStep
from shotsketch.ui.worker import GpuWorker, WorkerState


@pytest.fixture
def worker(qtbot, fake_engine):
    w = GpuWorker(lambda: fake_engine)
    yield w
    w.shutdown()


def collect(worker):  # noqa: ANN001, ANN201
    events, threads = [], []

    def on(e):  # noqa: ANN001
        events.append(e)
        threads.append(threading.current_thread())

    worker.event.connect(on)
    return events, threads


def test_events_arrive_in_order_on_the_ui_thread(qtbot, make_request, worker, fake_engine):
    events, threads = collect(worker)
    worker.submit("a", make_request(steps=4))
    qtbot.waitUntil(lambda: bool(events) and isinstance(events[-1], JobFinished), timeout=10_000)
    kinds = [type(e) for e in events]
    assert kinds == [JobStarted, JobStep, JobStep, JobStep, JobStep, JobFinished]
    assert [e.step for e in events if isinstance(e, JobStep)] == [1, 2, 3, 4]
    assert all(t is threading.main_thread() for t in threads)
    # loading and running happened on the worker's thread, not the UI thread
    assert fake_engine.load_thread is not threading.main_thread()
    assert fake_engine.run_threads == [fake_engine.load_thread]


def test_one_thread_serves_every_job(qtbot, make_request, worker, fake_engine):
    events, _ = collect(worker)
    for i in range(3):
        worker.submit(f"j{i}", make_request(seed=i, steps=1))
    qtbot.waitUntil(lambda: sum(isinstance(e, JobFinished) for e in events) == 3, timeout=10_000)
    assert len(set(fake_engine.run_threads)) == 1
    assert [r.seed for r in fake_engine.requests] == [0, 1, 2]  # first in, first out


def test_cancel_queued_and_running(qtbot, make_request, worker, fake_engine):
    fake_engine.gate = threading.Event()
    events, _ = collect(worker)
    worker.submit("running", make_request(steps=50))
    worker.submit("queued", make_request(steps=50))
    assert fake_engine.started.wait(5)
    assert worker.cancel("queued")
    assert worker.cancel("running")
    fake_engine.gate.set()
    qtbot.waitUntil(lambda: sum(isinstance(e, JobCancelled) for e in events) == 2, timeout=10_000)
    by_job = {e.job_id: e for e in events if isinstance(e, JobCancelled)}
    assert by_job["queued"].at_step == 0  # never reached the engine
    assert 1 <= by_job["running"].at_step < 50  # stopped between steps
    assert len(fake_engine.requests) == 1
    assert not worker.cancel("running")  # finished jobs are forgotten
    assert not any(isinstance(e, JobFinished) for e in events)


def test_load_failure_fails_each_job_once_and_the_worker_lives_on(qtbot, make_request, fake_engine_cls):
    engine = fake_engine_cls(fail_load=True)
    worker = GpuWorker(lambda: engine)
    states = []
    worker.stateChanged.connect(lambda s, d: states.append(s))
    events, _ = collect(worker)
    try:
        worker.submit("a", make_request())
        qtbot.waitUntil(lambda: any(isinstance(e, JobFailed) for e in events), timeout=10_000)
        failed = [e for e in events if isinstance(e, JobFailed)]
        assert len(failed) == 1
        assert "could not be loaded" in failed[0].message and "/nowhere" in failed[0].message
        assert WorkerState.FAILED in states
        engine.fail_load = False
        worker.submit("b", make_request(steps=1))
        qtbot.waitUntil(lambda: any(isinstance(e, JobFinished) for e in events), timeout=10_000)
    finally:
        worker.shutdown()


def test_a_raising_engine_becomes_one_failed_event(qtbot, make_request, fake_engine_cls):
    class Broken(fake_engine_cls):
        def generate(self, *a, **k):  # noqa: ANN002, ANN003, ANN201
            raise ZeroDivisionError("boom")

    worker = GpuWorker(Broken)
    events, _ = collect(worker)
    try:
        worker.submit("a", make_request())
        qtbot.waitUntil(lambda: bool(events), timeout=10_000)
        assert isinstance(events[0], JobFailed) and "ZeroDivisionError" in events[0].message
    finally:
        worker.shutdown()


def test_shutdown_stops_the_thread_and_refuses_new_jobs(qtbot, make_request, fake_engine):
    worker = GpuWorker(lambda: fake_engine)
    thread: QThread = worker._thread
    worker.submit("a", make_request(steps=200))
    assert fake_engine.started.wait(5)
    worker.shutdown()
    assert thread.isFinished()
    with pytest.raises(RuntimeError):
        worker.submit("b", make_request())


@pytest.mark.slow
def test_demo_generator_loads_and_runs_on_the_worker_thread(qtbot, make_request):
    from shotsketch.ui.worker import generator_factory

    made = []

    def factory():  # noqa: ANN202
        made.append(threading.current_thread())
        return generator_factory("demo", device="cpu")()

    worker = GpuWorker(factory)
    events, _ = collect(worker)
    try:
        worker.submit("demo", make_request(steps=2))
        qtbot.waitUntil(lambda: bool(events) and isinstance(events[-1], (JobFinished, JobFailed)), timeout=120_000)
        assert isinstance(events[-1], JobFinished), events[-1]
        assert events[-1].frames.shape == (5, 64, 96, 3)
        assert made and made[0] is not threading.main_thread()
        steps = [e for e in events if isinstance(e, JobStep)]
        assert [s.step for s in steps] == [1, 2] and steps[-1].preview is not None
    finally:
        worker.shutdown()


def test_preload_warms_up_on_the_worker_thread_before_the_first_job(qtbot, make_request, fake_engine):
    order: list[str] = []
    gate = threading.Event()

    def warm_up():  # noqa: ANN202
        order.append(f"warm:{threading.current_thread() is threading.main_thread()}")
        gate.wait(5)
        return True

    fake_engine.warm_up = warm_up
    fake_engine.needs_warm_up = True
    w = GpuWorker(lambda: fake_engine)
    states: list[WorkerState] = []
    w.stateChanged.connect(lambda s, _d: states.append(s))
    events, _ = collect(w)
    try:
        w.preload()
        qtbot.waitUntil(lambda: WorkerState.WARMING in states, timeout=5_000)
        w.submit("a", make_request(steps=1))  # sent while warming: waits, then runs
        assert not events  # the UI thread was not blocked, and the job did not start yet
        gate.set()
        qtbot.waitUntil(lambda: bool(events) and isinstance(events[-1], JobFinished), timeout=10_000)
        assert order == ["warm:False"]
        assert states.index(WorkerState.WARMING) < states.index(WorkerState.BUSY)
        assert states[states.index(WorkerState.WARMING) + 1] is WorkerState.READY  # the model is ready again after warming
    finally:
        gate.set()
        w.shutdown()


def test_a_failing_warm_up_does_not_stop_jobs(qtbot, make_request, fake_engine):
    def warm_up():  # noqa: ANN202
        raise RuntimeError("no compiler")

    fake_engine.warm_up = warm_up
    fake_engine.needs_warm_up = True
    w = GpuWorker(lambda: fake_engine)
    events, _ = collect(w)
    try:
        w.preload()
        w.submit("a", make_request(steps=1))
        qtbot.waitUntil(lambda: bool(events) and isinstance(events[-1], JobFinished), timeout=10_000)
    finally:
        w.shutdown()


def test_no_warm_up_state_when_there_is_nothing_to_warm(qtbot, fake_engine):
    fake_engine.warm_up = lambda: (_ for _ in ()).throw(AssertionError("must not be called"))
    fake_engine.needs_warm_up = False  # e.g. the demo model on a CPU: nothing compiled
    w = GpuWorker(lambda: fake_engine)
    states: list[WorkerState] = []
    w.stateChanged.connect(lambda s, _d: states.append(s))
    try:
        w.preload()
        qtbot.waitUntil(lambda: w.state is WorkerState.READY, timeout=5_000)
        qtbot.wait(100)
        assert "warming" not in states and w.state is WorkerState.READY
    finally:
        w.shutdown()


def test_prepare_prompt_encodes_the_newest_text_on_the_worker_thread(qtbot, fake_engine):
    encoded: list[tuple[str, str, bool]] = []
    gate, entered = threading.Event(), threading.Event()

    def encode_prompts(prompt, negative):  # noqa: ANN001, ANN202
        entered.set()
        gate.wait(5)
        encoded.append((prompt, negative, threading.current_thread() is threading.main_thread()))

    fake_engine.encode_prompts = encode_prompts
    w = GpuWorker(lambda: fake_engine)
    try:
        w.prepare_prompt("a kite", "blurry")  # no model loaded yet: nothing is loaded for this
        w.preload()
        qtbot.waitUntil(lambda: w.state is WorkerState.READY, timeout=5_000)
        qtbot.wait(50)
        assert encoded == [] and fake_engine.load_thread is not None
        gate.clear()
        w.prepare_prompt("a red kite", "blurry")  # the worker blocks in this one until the gate opens
        qtbot.waitUntil(entered.is_set, timeout=5_000)
        for text in ("a red kite r", "a red kite rises", "a red kite rises slowly"):
            w.prepare_prompt(text, "blurry")  # while busy: only the newest is kept
        gate.set()
        qtbot.waitUntil(lambda: bool(encoded) and encoded[-1][0] == "a red kite rises slowly", timeout=5_000)
        qtbot.wait(50)
        assert [e[0] for e in encoded] == ["a red kite", "a red kite rises slowly"]
        assert not any(on_main for _p, _n, on_main in encoded)
        w.prepare_prompt("   ", "blurry")  # blank: nothing to encode
        qtbot.wait(50)
        assert len(encoded) == 2
    finally:
        gate.set()
        w.shutdown()


def test_prepare_prompt_leaves_the_encoding_to_a_queued_job(qtbot, make_request, fake_engine):
    encoded: list[str] = []
    fake_engine.encode_prompts = lambda prompt, negative: encoded.append(prompt)
    fake_engine.gate = threading.Event()  # the job holds the worker at its first step
    w = GpuWorker(lambda: fake_engine)
    events, _ = collect(w)
    try:
        w.submit("a", make_request(steps=1))
        qtbot.waitUntil(fake_engine.started.is_set, timeout=5_000)
        w.prepare_prompt("the next shot", "blurry")  # its turn comes after job a, while job b waits: skipped
        w.submit("b", make_request(steps=1, prompt="the next shot"))
        fake_engine.gate.set()
        qtbot.waitUntil(lambda: sum(isinstance(e, JobFinished) for e in events) == 2, timeout=10_000)
        qtbot.wait(50)
        assert encoded == []
    finally:
        fake_engine.gate.set()
        w.shutdown()
