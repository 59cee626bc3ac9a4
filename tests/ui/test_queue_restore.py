"""Jobs queued when the app closes run again at the next start; a damaged queue file is kept aside."""

import json

from shotsketch.ui.main_window import ShotSettings
from shotsketch.ui.queue_store import load_pending, queue_path


def test_queued_jobs_survive_a_restart(qtbot, make_window, fake_engine_cls, library):
    slow = fake_engine_cls(step_s=0.3)
    first = make_window(slow)
    first.set_shot_settings(ShotSettings(448, 256, 5, 20, 5.0, 7))
    ids = first.generate(2)
    qtbot.waitUntil(lambda: slow.started.is_set(), timeout=30_000)
    qtbot.waitUntil(lambda: len(load_pending()[0]) == 2, timeout=10_000)
    first.shutdown()  # closes with one job running and one waiting
    pending, problem = load_pending()
    assert problem is None and [j.job_id for j in pending] == ids
    assert [j.request.seed for j in pending] == [7, 8]

    fast = fake_engine_cls(step_s=0.01)
    second = make_window(fast)
    assert set(second.queue.job_ids()) >= set(ids)
    qtbot.waitUntil(lambda: len(fast.requests) == 2 and not second._jobs, timeout=60_000)
    assert [r.seed for r in fast.requests] == [7, 8]
    takes = [t for v in library.list_variants(second.current_shot().id) for t in library.list_takes(v.id)]
    assert len(takes) == 2
    qtbot.waitUntil(lambda: load_pending()[0] == [], timeout=10_000)


def test_a_cancelled_job_is_not_restored(qtbot, make_window, fake_engine_cls):
    engine = fake_engine_cls(step_s=0.3)
    window = make_window(engine)
    window.set_shot_settings(ShotSettings(448, 256, 5, 20, 5.0, 1))
    (job,) = window.generate(1)
    qtbot.waitUntil(lambda: engine.started.is_set(), timeout=30_000)
    window.cancel_job(job)
    qtbot.waitUntil(lambda: load_pending()[0] == [], timeout=30_000)


def test_a_damaged_queue_file_is_kept_aside_with_one_message(qtbot, make_window):
    path = queue_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": 1, "jobs": [{"job_id": "x", "request": {"prompt": 3}}]}))
    window = make_window()
    assert len(window.errors.history) == 1 and "kept as queue.json.damaged-" in window.errors.history[0].message
    assert not path.exists() or load_pending()[0] == []
    assert list(path.parent.glob("queue.json.damaged-*"))
    assert window.queue.job_ids() == []


def test_a_queue_file_listing_a_job_twice_is_kept_aside(qtbot, make_window):
    from shotsketch.engine.requests import GenerationRequest

    job = {"job_id": "abc", "request": GenerationRequest("a red car", width=448, height=256, frames=5, steps=2).to_dict(),
           "snapshot": {"shot_id": 1, "prompt": "a red car", "negative_prompt": "", "layout_json": None,
                        "settings_json": "{}"}}
    path = queue_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": 1, "jobs": [job, job]}))
    window = make_window()
    assert "listed twice" in window.errors.history[0].message
    assert window.queue.job_ids() == []


def test_damaged_library_is_reported_kept_aside_and_a_fresh_one_opens(tmp_path, monkeypatch):
    from shotsketch.core import paths
    from shotsketch.ui.app import open_library

    db = paths.data_dir() / "library.sqlite3"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    lib = open_library(interactive=False)
    assert lib is not None and lib.list_projects() == []
    assert list(db.parent.glob("library.sqlite3.damaged-*"))
    lib.close()
