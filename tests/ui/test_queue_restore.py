"""Jobs queued when the window closes run again at the next start (the queue is kept in the
library); an old, damaged queue file is kept aside with one message."""

import json

from shotsketch.app.shot import ShotSettings


def old_queue_file():
    from shotsketch.app.jobs import OLD_QUEUE_FILE
    from shotsketch.core import paths

    return paths.data_dir() / OLD_QUEUE_FILE


def test_queued_jobs_survive_a_restart(qtbot, make_window, fake_engine_cls, library, queue_takes):
    slow = fake_engine_cls(step_s=0.3)
    first = make_window(slow)
    first.shot.set_settings(ShotSettings(448, 256, 5, 20, 5.0, 7))
    ids = queue_takes(first, 2)
    qtbot.waitUntil(lambda: slow.started.is_set(), timeout=30_000)
    first.shutdown()  # closes with one job running and one waiting
    pending = library.list_jobs()
    assert [j.id for j in pending] == ids and all(j.claimed_by is None for j in pending)  # in queue order
    assert [j.request()["seed"] for j in pending] == [7, 8]

    fast = fake_engine_cls(step_s=0.01)
    second = make_window(fast)
    assert second.queue.job_ids() == ids
    qtbot.waitUntil(lambda: len(fast.requests) == 2 and not library.list_jobs(), timeout=60_000)
    assert [r.seed for r in fast.requests] == [7, 8]  # seed 7 runs first again
    shot = second.current_shot().id
    qtbot.waitUntil(lambda: len([t for v in library.list_variants(shot) for t in library.list_takes(v.id)]) == 2,
                    timeout=10_000)


def test_a_cancelled_job_is_not_restored(qtbot, make_window, fake_engine_cls, library, queue_takes):
    engine = fake_engine_cls(step_s=0.3)
    window = make_window(engine)
    window.shot.set_settings(ShotSettings(448, 256, 5, 20, 5.0, 1))
    (job,) = queue_takes(window, 1)
    qtbot.waitUntil(lambda: engine.started.is_set(), timeout=30_000)
    window.cancel_job(job)
    qtbot.waitUntil(lambda: library.list_jobs() == [], timeout=30_000)


def test_a_damaged_queue_file_is_kept_aside_with_one_message(qtbot, make_window):
    path = old_queue_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": 1, "jobs": [{"job_id": "x", "request": {"prompt": 3}}]}))
    window = make_window()
    assert len(window.errors.history) == 1 and "kept as queue.json.damaged-" in window.errors.history[0].message
    assert not path.exists()
    assert list(path.parent.glob("queue.json.damaged-*"))
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
