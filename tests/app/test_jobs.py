"""The queue in the library: variant identity across restarts, unused seeds, claims, the old file."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from shotsketch.app.jobs import JobQueue, migrate_queue_file, next_unused_seeds, owner_is_gone
from shotsketch.app.session import AppSession
from shotsketch.core.library import Library
from shotsketch.engine.events import JobCancelled, JobFinished
from shotsketch.engine.requests import RequestError


def _session(library, timers, **kw):
    session = AppSession(library, call_later=timers, **kw)
    shot = library.create_shot(library.create_project("P").id, "S") if not library.list_projects() else \
        library.list_shots(library.list_projects()[0].id)[0]
    session.open_shot(shot.id)
    if not session.shot.prompt:
        session.shot.set_prompt("A red car drives along a coast road")
        session.shot.update_settings(width=96, height=64, frames=5, steps=2)
    return session


def _finish(queue, job, value=0):
    frames = np.full((5, 64, 96, 3), value, np.uint8)
    return queue.finish(job.id, JobFinished(job.id, frames, {"request": job.request.to_dict()}))


def test_unchanged_editors_after_a_restart_reuse_the_variant(tmp_path, timers):
    """Defect 6: "same content, same variant" was kept in memory only; a restart duplicated it."""
    path = tmp_path / "library.sqlite3"
    with Library.open(path) as library:
        first = _session(library, timers)
        job = first.generate(1)[0]
        _finish(first.queue, job)
        first.close()
    with Library.open(path) as library:  # a new start: nothing in memory
        again = _session(library, timers)
        job2 = again.generate(1)[0]
        assert job2.variant_id == job.variant_id
        assert len(library.list_variants(again.shot.shot_id)) == 1
        again.shot.set_prompt("A blue car drives along a coast road")
        job3 = again.generate(1)[0]
        assert job3.variant_id != job.variant_id
        assert library.get_variant(job3.variant_id).parent_id == job.variant_id  # an edit branches from it


def test_queue_n_seeds_takes_the_seeds_the_variant_has_not_used(library, timers):
    """Defect 4: "Queue 4 seeds" rendered seed 0 again when take 1 already was seed 0."""
    session = _session(library, timers)
    first = session.generate(1)[0]
    assert first.seed == 0
    _finish(session.queue, first)
    seeds = [j.seed for j in session.generate(4)]
    assert seeds == [1, 2, 3, 4]
    assert [j.seed for j in session.generate(2)] == [5, 6]  # queued, not yet rendered: used too


def test_next_unused_seeds_wraps_at_the_largest_seed():
    top = 2**64 - 1
    assert next_unused_seeds({top}, top - 1, 3) == [top - 1, 0, 1]


def test_an_invalid_shot_queues_nothing(library, timers):
    session = _session(library, timers)
    session.shot.set_prompt("   ")
    with pytest.raises(RequestError, match="prompt is empty"):
        session.generate(1)
    assert library.list_jobs() == [] and library.list_variants(session.shot.shot_id) == []


def test_two_windows_never_run_the_same_job(tmp_path, timers):
    path = tmp_path / "library.sqlite3"
    with Library.open(path) as a_lib, Library.open(path) as b_lib:
        a = _session(a_lib, timers)
        jobs = a.generate(3)
        a.queue.release()  # window A closes with three jobs waiting
        b, c = JobQueue(a_lib), JobQueue(b_lib)
        got_b, _ = b.resume()
        got_c, _ = c.resume()
        assert sorted(j.id for j in got_b) == sorted(j.id for j in jobs) and got_c == []
        assert not c.started(jobs[0].id)  # not C's to run
        assert b.started(jobs[0].id)


def test_jobs_of_a_window_that_crashed_are_claimed_again(library, timers):
    session = _session(library, timers)
    jobs = session.generate(2)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = f"{socket.gethostname()}/{dead.pid}/deadbeef"
    with library._write() as db:  # the claims of a process that has ended
        db.execute("UPDATE jobs SET claimed_by = ?, state = 'running'", (crashed,))
    assert owner_is_gone(crashed) and not owner_is_gone(f"{socket.gethostname()}/{os.getpid()}/x")
    later = JobQueue(library)
    resumed, problem = later.resume()
    assert problem is None and [j.id for j in resumed] == [j.id for j in jobs]
    assert {j.state for j in library.list_jobs()} == {"queued"}


def test_a_cancelled_job_leaves_no_empty_variant(library, timers):
    session = _session(library, timers)
    job = session.generate(1)[0]
    ended = session.queue.finish(job.id, JobCancelled(job.id, 0))
    assert ended.cancelled and library.list_jobs() == []
    assert library.list_variants(session.shot.shot_id) == []


def test_the_old_queue_file_is_moved_into_the_library_once(library, timers, tmp_path):
    session = _session(library, timers)
    request = session.shot.request(seed=7).to_dict()
    old = tmp_path / "queue.json"
    old.write_text(json.dumps({"schema_version": 1, "jobs": [{"job_id": "abc123", "request": request, "snapshot": {
        "shot_id": session.shot.shot_id, "prompt": session.shot.prompt,
        "negative_prompt": session.shot.negative_for_model(), "layout_json": None,
        "settings_json": json.dumps(session.shot.settings.variant_settings(), sort_keys=True)}}]}))
    resumed, problem = session.queue.resume(old)
    assert problem is None and [(j.id, j.seed) for j in resumed] == [("abc123", 7)]
    assert not old.exists() and (tmp_path / "queue.json.migrated").exists()
    assert migrate_queue_file(library, old) is None  # gone: nothing more to do
    assert [j.id for j in library.list_jobs()] == ["abc123"]
    # the job's variant is the one the unchanged editors hold
    assert session.generate(1)[0].variant_id == resumed[0].variant_id


def test_a_damaged_old_queue_file_is_kept_and_said_once(library, tmp_path):
    old = tmp_path / "queue.json"
    old.write_text("{not json")
    problem = migrate_queue_file(library, old)
    assert "could not be read" in problem and not old.exists()
    assert len(list(tmp_path.glob("queue.json.damaged-*"))) == 1


def test_two_windows_asking_for_the_same_content_get_one_variant(tmp_path):
    import threading

    path = tmp_path / "library.sqlite3"
    with Library.open(path) as a, Library.open(path) as b:
        shot = a.create_shot(a.create_project("P").id, "S").id
        start = threading.Barrier(2)
        found: dict[str, list[int]] = {"a": [], "b": []}

        def ask(lib, key):
            start.wait()
            for i in range(100):
                found[key].append(lib.variant_for_content(shot, f"prompt {i}", "", None, {"steps": 2})[0].id)

        threads = [threading.Thread(target=ask, args=(lib, key)) for lib, key in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert found["a"] == found["b"]
        assert len(a.list_variants(shot)) == 100
