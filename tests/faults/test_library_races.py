"""Defect 2 and 10: two processes opening (creating, upgrading) one library; damage in the WAL and a
0-byte library detected and kept aside, while a torn WAL tail and a concurrent first open are normal."""

from __future__ import annotations

import os
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shotsketch.core.library import DB_NAME, SCHEMA_VERSION, Library, LibraryDamaged

from .conftest import count, rounds

WORKERS = Path(__file__).with_name("workers.py")


def worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKERS), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _race(path: Path, n: int) -> list[str]:
    """``n`` processes open the library at ``path`` at the same moment and each adds a project."""
    go = path.with_name("go")
    procs = [worker("open-and-write", str(path), f"p{i}", str(go)) for i in range(n)]
    time.sleep(1.5)  # let them all start and reach the start line
    go.touch()
    results = [p.communicate(timeout=120)[0].strip() for p in procs]
    go.unlink()
    return results


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "media"))


@pytest.mark.parametrize("trial", range(rounds(2, 20)))
def test_processes_creating_a_new_library_at_once_all_work(tmp_path, trial):
    path = tmp_path / DB_NAME
    results = _race(path, 4)
    assert results == ["ok"] * 4
    count("races")
    with Library.open(path) as lib:
        assert sorted(p.name for p in lib.list_projects()) == ["p0", "p1", "p2", "p3"]
        assert lib.schema_version() == SCHEMA_VERSION
    assert _leftovers(tmp_path) == []


def _version_1_library(path: Path) -> None:
    from shotsketch.core.library import MIGRATIONS

    raw = sqlite3.connect(path)
    raw.executescript(MIGRATIONS[0][1] + "INSERT INTO projects VALUES (1, 'Old project', '2025-01-01');"
                      "PRAGMA user_version = 1;")
    raw.close()


@pytest.mark.parametrize("trial", range(rounds(2, 20)))
def test_processes_upgrading_an_old_library_at_once_all_work_and_one_backup_is_kept(tmp_path, trial):
    path = tmp_path / DB_NAME
    _version_1_library(path)
    results = _race(path, 4)
    assert results == ["ok"] * 4
    count("races")
    with Library.open(path) as lib:
        assert sorted(p.name for p in lib.list_projects()) == ["Old project", "p0", "p1", "p2", "p3"]
    backups = [n for n in _leftovers(tmp_path)]
    assert len(backups) == 1 and backups[0].startswith(f"{DB_NAME}.before-v{SCHEMA_VERSION}-"), backups


@pytest.mark.parametrize("trial", range(rounds(1, 10)))
def test_processes_writing_at_once_all_get_their_writes(tmp_path, trial):
    path = tmp_path / DB_NAME
    go = tmp_path / "go"
    procs = [worker("write-many", str(path), f"p{i}", str(go), "40") for i in range(4)]
    time.sleep(1.5)
    go.touch()
    assert [p.communicate(timeout=300)[0].strip() for p in procs] == ["ok"] * 4
    count("races")
    with Library.open(path) as lib:
        for project in lib.list_projects():
            (shot,) = lib.list_shots(project.id)
            assert [v.prompt for v in lib.list_variants(shot.id)] == [f"{project.name} {i}" for i in range(40)]
        assert len(lib.list_projects()) == 4
    count("writes_checked", 160)


# -- damage -----------------------------------------------------------------------------------------


def _library_left_by_a_killed_writer(tmp_path: Path, rows: int = 60) -> Path:
    path = tmp_path / DB_NAME
    assert worker("write-rows-and-die", str(path), str(rows)).communicate(timeout=120)[0].strip() == "ok"
    wal = path.with_name(DB_NAME + "-wal")
    assert wal.stat().st_size > 32
    return path


def _frame_offsets(wal: Path) -> list[int]:
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    size = 24 + page_size
    return [32 + i * size for i in range((len(data) - 32) // size)]


def _count_variants(path: Path) -> int:
    with Library.open(path) as lib:
        return sum(len(lib.list_variants(s.id)) for p in lib.list_projects() for s in lib.list_shots(p.id))


def test_a_torn_wal_tail_is_normal(tmp_path):
    path = _library_left_by_a_killed_writer(tmp_path)
    wal = path.with_name(DB_NAME + "-wal")
    with open(wal, "r+b") as fh:  # the last frame cut short, as a kill during its write leaves it
        fh.truncate(wal.stat().st_size - 100)
    assert _count_variants(path) == 59
    assert _leftovers(tmp_path) == []


def test_garbage_in_the_wal_is_detected_and_kept_aside(tmp_path):
    path = _library_left_by_a_killed_writer(tmp_path)
    wal = path.with_name(DB_NAME + "-wal")
    frames = _frame_offsets(wal)
    with open(wal, "r+b") as fh:  # garbage over a page in the middle of the committed frames
        fh.seek(frames[len(frames) // 2] + 24 + 100)
        fh.write(os.urandom(64))
    damaged_wal = wal.read_bytes()
    with pytest.raises(LibraryDamaged) as info:
        Library.open(path)
    kept = info.value.kept_at
    assert kept is not None and kept.with_name(kept.name + "-wal").read_bytes() == damaged_wal
    message = str(info.value)
    assert str(kept) in message and "journal" in message and "\n" not in message
    # starting again keeps what can be read: the library as it was before the damaged change
    with Library.open(path, recover=True, salvage_from=kept) as lib:
        count = sum(len(lib.list_variants(s.id)) for p in lib.list_projects() for s in lib.list_shots(p.id))
        assert 0 < count < 60


def test_a_zero_byte_library_is_damage_and_is_kept_aside(tmp_path):
    path = tmp_path / DB_NAME
    with Library.open(path) as lib:
        lib.create_project("Film")
    path.write_bytes(b"")
    with pytest.raises(LibraryDamaged) as info:
        Library.open(path)
    assert "empty" in str(info.value) and info.value.kept_at is not None and info.value.kept_at.exists()
    assert not path.exists()
    with Library.open(path, recover=True, salvage_from=info.value.kept_at) as lib:
        assert lib.list_projects() == []


def test_every_confirmed_write_survives_kill_9_and_no_damage_is_reported(tmp_path):
    """A writer killed at random moments, again and again on one library: each reopen finds every
    write it confirmed, and a torn log is never reported as damage."""
    import random
    import signal

    path, log = tmp_path / DB_NAME, tmp_path / "confirmed.txt"
    rng = random.Random(17)
    for _ in range(rounds(3, 30)):
        proc = worker("write-until-killed", str(path), str(log))
        time.sleep(rng.uniform(1.2, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        count("kills")
        confirmed = set(log.read_text().split()) if log.exists() else set()
        with Library.open(path) as lib:
            stored = {v.prompt.split()[1] for p in lib.list_projects() for s in lib.list_shots(p.id)
                      for v in lib.list_variants(s.id)}
        assert confirmed <= stored
        count("writes_checked", len(confirmed))
    assert confirmed and _leftovers(tmp_path) == ["confirmed.txt"]
