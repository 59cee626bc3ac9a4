from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from shotsketch.core.layout import Box, Layout, Subject
from shotsketch.core.library import (
    DB_NAME,
    SCHEMA_VERSION,
    Library,
    LibraryDamaged,
    LibraryError,
    copy_into_media,
)


@pytest.fixture
def lib(tmp_path):
    with Library.open(tmp_path / DB_NAME) as library:
        yield library


def make_variant(lib: Library, prompt: str = "A yellow ball rolls from the left edge to the center."):
    project = lib.create_project("Demo")
    shot = lib.create_shot(project.id, "Opening")
    return lib.create_variant(shot.id, prompt, "blurry", settings={"seed": 42, "steps": 30})


def test_default_location_is_the_data_dir(tmp_path):
    with Library.open() as library:
        assert library.path == tmp_path / "data" / DB_NAME
        assert library.media_dir == tmp_path / "data" / "media" and library.media_dir.is_dir()
        assert library.schema_version() == SCHEMA_VERSION
        db = sqlite3.connect(library.path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()


def test_projects_shots_variants_and_history(lib):
    p = lib.create_project("  My   film ")
    assert p.name == "My film" and lib.list_projects() == [p]
    s1, s2 = lib.create_shot(p.id, "One"), lib.create_shot(p.id, "Two")
    assert [s.position for s in lib.list_shots(p.id)] == [0, 1]
    layout = Layout(16 / 9, (Subject.static("cube", Box(0.6, 0.4, 0.8, 0.6)),))
    root = lib.create_variant(s1.id, "a cube", layout=layout, settings={"seed": 1})
    child = lib.create_variant(s1.id, "a blue cube", parent_id=root.id)
    grandchild = lib.create_variant(s1.id, "a blue cube on the right", parent_id=child.id)
    sibling = lib.create_variant(s1.id, "a red cube", parent_id=root.id)
    assert lib.get_variant(root.id).layout() == layout and lib.get_variant(root.id).settings == {"seed": 1}
    assert [v.id for v in lib.variant_history(grandchild.id)] == [root.id, child.id, grandchild.id]
    (tree,) = lib.variant_tree(s1.id)
    assert tree.variant == root and [c.variant.id for c in tree.children] == [child.id, sibling.id]
    assert [c.variant.id for c in tree.children[0].children] == [grandchild.id]
    with pytest.raises(LibraryError, match="another shot"):
        lib.create_variant(s2.id, "x", parent_id=root.id)
    with pytest.raises(LibraryError, match="Shot 999 is not in the library"):
        lib.create_variant(999, "x")
    with pytest.raises(LibraryError, match="needs a name"):
        lib.create_project("   ")
    with pytest.raises(ValueError):
        lib.create_variant(s1.id, "x", layout='{"schema_version": 1, "aspect": 1, "subjects": 5}')
    assert lib.rename_shot(s2.id, "Second").name == "Second"


def test_foreign_keys_cascade_and_protect(lib):
    v = make_variant(lib)
    take = lib.add_take(v.id, lib.new_media_path())
    lib.delete_project(lib.get_variant(v.id).shot_id and lib.list_projects()[0].id)
    assert lib.list_projects() == []
    with pytest.raises(LibraryError):
        lib.get_take(take.id)
    with pytest.raises(LibraryError, match="Variant"):
        lib.add_take(12345, "x.mp4")


def test_takes_ratings_favourites_and_trash(lib, tmp_path):
    v = make_variant(lib)
    clip = lib.new_media_path(".mp4")
    clip.write_bytes(b"clip")
    thumb = lib.new_media_path(".png", prefix="thumb")
    thumb.write_bytes(b"png")
    companions = [clip.with_name(clip.name + ".json"), clip.with_name(clip.name + ".heatmaps.npz")]
    for c in companions:
        c.write_bytes(b"beside the clip")
    outside = tmp_path / "mine.mp4"
    outside.write_bytes(b"user file")
    (tmp_path / "mine.mp4.json").write_text("{}")
    t1 = lib.add_take(v.id, clip, {"seed": 42, "model": "Wan2.2-TI2V-5B"}, thumb)
    t2 = lib.add_take(v.id, outside)
    assert t1.file == clip and t1.thumbnail == thumb and t1.recipe["seed"] == 42
    assert t2.file == outside
    assert lib.set_rating(t1.id, 4).rating == 4
    for bad in (6, -1, 2.5, True):
        with pytest.raises(LibraryError, match="0 to 5"):
            lib.set_rating(t1.id, bad)
    assert lib.set_favourite(t1.id, True).favourite and lib.list_favourites() == [lib.get_take(t1.id)]
    assert lib.trash_take(t1.id).deleted and lib.trash_take(t2.id).deleted
    assert lib.list_takes(v.id) == [] and len(lib.list_takes(v.id, include_deleted=True)) == 2
    assert lib.list_favourites() == []
    assert not lib.restore_take(t2.id).deleted
    lib.trash_take(t2.id)
    assert lib.empty_trash() == 2
    assert not clip.exists() and not thumb.exists()
    assert not any(c.exists() for c in companions)  # the recipe sidecar and heatmaps go with the clip
    assert outside.read_bytes() == b"user file"  # files outside the media folder are never deleted
    assert (tmp_path / "mine.mp4.json").exists()
    assert lib.list_trash() == []


def test_search_prompts_and_negative_prompts(lib):
    v = make_variant(lib)
    shot_id = v.shot_id
    other = lib.create_variant(shot_id, "A red car drives past a white house", "distorted wheels")
    assert [x.id for x in lib.search("yellow")] == [v.id]
    assert [x.id for x in lib.search("ball cent")] == [v.id]  # every word, as a prefix
    assert [x.id for x in lib.search("wheels")] == [other.id]
    assert lib.search("giraffe") == [] and lib.search("  ") == [] and lib.search('"*) OR (') == []


def test_autosave_and_last_open_shot(lib):
    v = make_variant(lib)
    assert lib.load_shot_state(v.shot_id) is None and lib.last_open_shot() is None
    lib.save_shot_state(v.shot_id, {"prompt": "draft", "layout": {"x": 1}})
    lib.save_shot_state(v.shot_id, {"prompt": "draft 2"})
    assert lib.load_shot_state(v.shot_id) == {"prompt": "draft 2"}
    lib.set_last_open_shot(v.shot_id)
    assert lib.last_open_shot() == lib.get_shot(v.shot_id)
    with pytest.raises(LibraryError, match="cannot be stored"):
        lib.save_shot_state(v.shot_id, {"bad": float("nan")})
    lib.delete_shot(v.shot_id)
    assert lib.last_open_shot() is None and lib.load_shot_state(v.shot_id) is None


def test_state_survives_reopening(tmp_path):
    path = tmp_path / DB_NAME
    with Library.open(path) as a:
        v = make_variant(a)
        a.set_last_open_shot(v.shot_id)
    with Library.open(path) as b:
        assert b.last_open_shot().id == v.shot_id and b.get_variant(v.id).prompt == v.prompt


# The version-1 schema exactly as Shotsketch 0.1 wrote it, independent of the code under test.
V1_SQL = """
CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE shots (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL, position INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE variants (id INTEGER PRIMARY KEY, shot_id INTEGER NOT NULL REFERENCES shots(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES variants(id) ON DELETE SET NULL, prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL DEFAULT '', layout_json TEXT, settings_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL);
CREATE TABLE takes (id INTEGER PRIMARY KEY, variant_id INTEGER NOT NULL REFERENCES variants(id) ON DELETE CASCADE,
    file TEXT NOT NULL, recipe_json TEXT NOT NULL DEFAULT '{}', thumbnail TEXT,
    rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    favourite INTEGER NOT NULL DEFAULT 0 CHECK (favourite IN (0, 1)), created_at TEXT NOT NULL);
INSERT INTO projects VALUES (1, 'Old project', '2025-01-01T00:00:00');
INSERT INTO shots VALUES (1, 1, 'Old shot', 0, '2025-01-01T00:00:00');
INSERT INTO variants VALUES (1, 1, NULL, 'A lighthouse on the far right at dusk', 'blurry', NULL, '{"seed": 7}',
    '2025-01-01T00:00:00');
INSERT INTO variants VALUES (2, 1, 1, 'A lighthouse on the far right at night', '', NULL, '{}', '2025-01-02T00:00:00');
INSERT INTO takes VALUES (1, 2, 'take-1.mp4', '{"seed": 7}', NULL, 5, 1, '2025-01-02T00:00:00');
PRAGMA user_version = 1;
"""


def test_upgrade_from_version_1(tmp_path):
    path = tmp_path / DB_NAME
    raw = sqlite3.connect(path)
    raw.executescript(V1_SQL)
    raw.close()
    with Library.open(path) as library:
        assert library.schema_version() == SCHEMA_VERSION >= 3
        assert [v.id for v in library.search("lighthouse night")] == [2]
        assert [v.id for v in library.variant_history(2)] == [1, 2]
        take = library.get_take(1)
        assert take.rating == 5 and take.favourite and not take.deleted
        assert take.file == library.media_dir / "take-1.mp4"
        library.save_shot_state(1, {"ok": True})
        assert library.integrity_check() == ["ok"]
    backups = list(tmp_path.glob(f"{DB_NAME}.before-v{SCHEMA_VERSION}-*"))
    assert len(backups) == 1
    old = sqlite3.connect(backups[0])
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    assert old.execute("SELECT count(*) FROM variants").fetchone()[0] == 2
    old.close()
    with Library.open(path) as again:  # already current: no second backup
        assert again.schema_version() == SCHEMA_VERSION
    assert len(list(tmp_path.glob(f"{DB_NAME}.before-v{SCHEMA_VERSION}-*"))) == 1


def test_a_newer_library_is_refused_and_left_alone(tmp_path):
    path = tmp_path / DB_NAME
    raw = sqlite3.connect(path)
    raw.executescript("CREATE TABLE future (x); PRAGMA user_version = 99;")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(LibraryError, match="newer Shotsketch .*version 99"):
        Library.open(path)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_is_kept_aside(tmp_path):
    path = tmp_path / DB_NAME
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LibraryDamaged) as info:
        Library.open(path)
    kept = info.value.kept_at
    assert kept is not None and kept.name.startswith(f"{DB_NAME}.damaged-")
    assert kept.read_bytes() == b"this is not sqlite at all" * 100
    assert str(kept) in str(info.value) and "damaged" in str(info.value)
    assert not path.exists()


def test_a_corrupted_database_is_detected_and_recovery_is_opt_in(tmp_path):
    path = tmp_path / DB_NAME
    with Library.open(path) as library:
        v = make_variant(library)
        for i in range(200):
            library.create_variant(v.shot_id, f"filler prompt number {i} " * 20)
    # checkpointed on close; now scribble over the pages after the first
    data = bytearray(path.read_bytes())
    assert len(data) > 8192
    for i in range(4096, len(data), 7):
        data[i] = (data[i] * 31 + 17) % 256
    path.write_bytes(bytes(data))
    corrupted = bytes(data)
    with Library.open(path, recover=True) as fresh:
        assert fresh.recovered_from is not None and fresh.recovered_from.read_bytes() == corrupted
        assert fresh.list_projects() == [] and fresh.integrity_check() == ["ok"]
        fresh.create_project("New start")


def test_a_second_connection_waits_for_the_first_writer(tmp_path):
    path = tmp_path / DB_NAME
    a = Library.open(path)
    b = Library.open(path)
    holding = threading.Event()
    b_writes = threading.Event()
    order = []

    def hold_write_lock():
        with a._write() as db:
            db.execute("INSERT INTO projects(name, created_at) VALUES ('from a', 'now')")
            holding.set()
            b_writes.wait(5)
            time.sleep(0.3)  # b's write is under way meanwhile (nothing is asserted about time)
            order.append("a commits")

    thread = threading.Thread(target=hold_write_lock)
    thread.start()
    assert holding.wait(5)
    b_writes.set()
    b.create_project("from b")  # must wait for a's transaction, not fail
    order.append("b has written")
    thread.join()
    assert order == ["a commits", "b has written"]
    assert [p.name for p in a.list_projects()] == ["from a", "from b"]
    a.close()
    b.close()


def test_a_writer_that_waits_too_long_gets_a_plain_message(tmp_path):
    path = tmp_path / DB_NAME
    a = Library.open(path)
    b = Library.open(path, busy_timeout=0.1)
    with a._write():
        with pytest.raises(LibraryError, match="busy"):
            b.create_project("x")
    a.close()
    b.close()


def test_backup_and_copy_into_media(lib, tmp_path):
    make_variant(lib)
    copy = lib.backup(tmp_path / "copy.sqlite3")
    assert sqlite3.connect(copy).execute("SELECT name FROM projects").fetchall() == [("Demo",)]
    src = tmp_path / "render.mp4"
    src.write_bytes(b"frames")
    dest = copy_into_media(lib, src)
    assert dest.parent == lib.media_dir and dest.read_bytes() == b"frames" and dest.suffix == ".mp4"
    assert not list(lib.media_dir.glob(".*.tmp"))


def test_a_failed_commit_leaves_no_transaction_open(lib, monkeypatch):
    import sqlite3

    class FailingCommit:
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

    real = lib._db
    monkeypatch.setattr(lib, "_db", FailingCommit(real))
    with pytest.raises(LibraryError, match="disk holding the library .* is full"):  # one line, not a raw sqlite3 error
        lib.create_project("Lost")
    monkeypatch.setattr(lib, "_db", real)
    assert not real.in_transaction
    assert lib.create_project("Next").name == "Next"  # later writes work again
    assert [p.name for p in lib.list_projects()] == ["Next"]


def test_jobs_queued_in_the_same_millisecond_keep_their_order_across_a_restart(tmp_path, monkeypatch):
    """Job ids are random: jobs stamped with the same time must come back in the order they were
    queued (seed 7 before seed 8), not in the order of their ids."""
    import shotsketch.core.library as library_module

    monkeypatch.setattr(library_module, "_now", lambda: "2026-01-01T00:00:00.000+00:00")  # one millisecond
    path = tmp_path / DB_NAME
    ids = ["f0", "a1", "c2", "b3", "e4"]  # in no sorted order
    with Library.open(path) as lib:
        variant = make_variant(lib)
        lib.add_jobs([(ids[0], variant.shot_id, variant.id, '{"seed": 7}')])
        lib.add_jobs([(i, variant.shot_id, variant.id, "{}") for i in ids[1:3]], claimed_by="window-a")
        lib.add_jobs([(ids[3], variant.shot_id, variant.id, "{}")])
        lib.remove_job(ids[3])  # the newest leaves: the next one still comes after the others
        lib.add_jobs([(ids[3], variant.shot_id, variant.id, "{}"), (ids[4], variant.shot_id, variant.id, "{}")])
        lib.release_jobs("window-a")
    with Library.open(path) as reopened:
        assert [j.id for j in reopened.list_jobs()] == ids
        assert [j.id for j in reopened.claim_jobs("window-b")] == ids
