"""The queue panel and the window's queue: states, progress, ETA, preview, variants, cancel, errors."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QSize, Qt

from shotsketch.engine.events import JobCancelled, JobFailed, JobFinished, JobStarted, JobStep
from shotsketch.logs import log_file, setup_logging
from shotsketch.ui.queue_panel import JobState, QueuedJob, QueuePanel, format_eta, preview_pixmap


def test_rows_follow_the_events(qtbot, make_request):
    panel = QueuePanel()
    qtbot.addWidget(panel)
    request = make_request(steps=4)
    row = panel.add_job(QueuedJob("a", request, "seed 11 · a ball"))
    assert panel.state("a") is JobState.QUEUED and "Queued" in row.status.text()
    panel.apply(JobStarted("a", request, 4))
    assert panel.state("a") is JobState.RUNNING
    preview = np.zeros((4, 6, 3), np.uint8)
    preview[:, 3:] = (0, 0, 255)
    panel.apply(JobStep("a", 2, 4, 2.0, 65.0, preview))
    assert row.progress.value() == 2 and row.progress.maximum() == 4
    assert "1 min 05 s left" in row.status.text()
    assert row.preview.pixmap() is not None and not row.preview.pixmap().isNull()
    panel.apply(JobFinished("a", np.zeros((1, 32, 32, 3), np.uint8), {}))
    assert panel.state("a") is JobState.SAVING
    panel.set_state("a", JobState.DONE, "take 1")
    assert row.progress.value() == 4 and "take 1" in row.status.text()
    assert panel.summary.text() == "All done"
    panel.remove_finished()
    assert panel.job_ids() == []


def test_a_job_that_runs_fewer_steps_than_asked_shows_the_steps_it_ran(qtbot, make_request):
    """A step-distilled model runs its own 3 steps whatever the request asked (4 here): the row counts
    the engine's steps, also once the clip is saved (it said 4 / 4 there before)."""
    panel = QueuePanel()
    qtbot.addWidget(panel)
    request = make_request(steps=4)
    row = panel.add_job(QueuedJob("d", request, "seed 0 · distilled"))
    panel.apply(JobStarted("d", request, 3))
    assert row.progress.maximum() == 3
    for step in (1, 2, 3):
        panel.apply(JobStep("d", step, 3, 0.1, 0.0, None))
    panel.apply(JobFinished("d", np.zeros((1, 32, 32, 3), np.uint8), {}))
    panel.set_state("d", JobState.DONE, "take 1")
    assert (row.progress.value(), row.progress.maximum()) == (3, 3)
    assert row.progress.text() == "3 / 3 steps"


def test_preview_is_scaled_with_whole_pixels():
    preview = np.zeros((4, 6, 3), np.uint8)
    preview[:, :3] = (255, 0, 0)
    preview[:, 3:] = (0, 0, 255)
    image = preview_pixmap(preview, QSize(60, 40)).toImage()
    assert (image.width(), image.height()) == (60, 40)
    # nearest neighbour: no blended purple at the red/blue border
    colours = {image.pixelColor(x, 20).name() for x in range(60)}
    assert colours == {"#ff0000", "#0000ff"}


def test_eta_words():
    assert format_eta(None) == ""
    assert format_eta(4.4) == "4 s left"
    assert format_eta(3700) == "1 h 01 min left"


def test_queue_four_seeds(qtbot, make_window, fake_engine):
    window = make_window(fake_engine)
    window.generate_bar.seed_box.setValue(7)
    window.shot.set_settings(window.shot.settings.__class__(96, 64, 5, 2, 5.0, 7))
    with qtbot.waitSignal(window.jobsQueued, timeout=15_000):
        window.generate_bar.variants_button.click()
    assert len(window.queue.job_ids()) == 4
    qtbot.waitUntil(lambda: all(window.queue.state(j) is JobState.DONE for j in window.queue.job_ids()),
                    timeout=30_000)
    assert [r.seed for r in fake_engine.requests] == [7, 8, 9, 10]  # in the order they were queued
    # each request is immutable and complete: final prompt, negative prompt, layout, settings, seed
    r = fake_engine.requests[0]
    assert r.prompt.startswith("A yellow ball") and r.negative_prompt and r.layout_json
    assert (r.width, r.height, r.frames, r.steps) == (96, 64, 5, 2)
    takes = [t for v in window.library.list_variants(window.current_shot().id) for t in window.library.list_takes(v.id)]
    assert len(takes) == 4
    assert len(window.library.list_variants(window.current_shot().id)) == 1  # one variant, four seeds


def test_cancel_buttons_on_a_queued_and_a_running_job(qtbot, make_window, fake_engine, queue_takes):
    fake_engine.gate = threading.Event()
    window = make_window(fake_engine)
    window.shot.set_settings(window.shot.settings.__class__(96, 64, 5, 40, 5.0, 1))
    running, queued = queue_takes(window, 2)
    assert fake_engine.started.wait(5)
    qtbot.mouseClick(window.queue.row(queued).cancel_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.queue.row(running).cancel_button, Qt.MouseButton.LeftButton)
    assert window.queue.state(running) is JobState.CANCELLING
    fake_engine.gate.set()
    qtbot.waitUntil(lambda: window.queue.state(queued) is JobState.CANCELLED
                    and window.queue.state(running) is JobState.CANCELLED, timeout=10_000)
    assert "before it started" in window.queue.row(queued).status.text()
    assert len(fake_engine.requests) == 1
    assert window.errors.history == []  # a cancel is not an error


def test_a_failing_request_shows_one_message_and_logs_it(qtbot, make_window, fake_engine, queue_takes):
    setup_logging()
    window = make_window(fake_engine)
    window.prompt.set_prompt("FAIL: a ball")
    window.shot.set_settings(window.shot.settings.__class__(96, 64, 5, 2, 5.0, 1))
    (job,) = queue_takes(window, 1)
    qtbot.waitUntil(lambda: window.queue.state(job) is JobState.FAILED, timeout=10_000)
    qtbot.wait(100)
    assert len(window.errors.history) == 1
    message = window.errors.history[0].message
    assert message == "The GPU ran out of memory; try a smaller size."
    assert message in window.queue.row(job).status.text()
    assert message in window.statusBar().currentMessage()
    logged = log_file().read_text(encoding="utf-8")
    assert message in logged and "Traceback: fake OOM" in logged


def test_an_invalid_request_is_refused_before_queueing(qtbot, make_window, fake_engine):
    window = make_window(fake_engine)
    window.prompt.set_prompt("   ")
    window.sketch.set_sketch(window.sketch.sketch().__class__(), undoable=False)
    assert window.generate(1) is False
    assert window.queue.job_ids() == []
    assert len(window.errors.history) == 1 and "prompt is empty" in window.errors.history[0].message


def test_unknown_events_for_removed_rows_are_ignored(qtbot, make_request):
    panel = QueuePanel()
    qtbot.addWidget(panel)
    panel.apply(JobCancelled("nobody", 0))
    panel.apply(JobFailed("nobody", "x"))
    assert panel.job_ids() == []


def test_the_first_job_says_it_is_loading_the_model(qtbot, make_window, fake_engine_cls, queue_takes):
    engine = fake_engine_cls(load_s=0.5)
    window = make_window(engine)
    window.shot.set_settings(window.shot.settings.__class__(96, 64, 5, 1, 5.0, 1))
    (job,) = queue_takes(window, 1)
    qtbot.waitUntil(lambda: window.queue.state(job) is JobState.LOADING, timeout=5_000)
    assert "Loading" in window.status_worker.text()
    qtbot.waitUntil(lambda: window.queue.state(job) is JobState.DONE, timeout=10_000)
