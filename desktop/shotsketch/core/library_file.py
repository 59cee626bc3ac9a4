"""The library's file on disk, below SQLite: created whole, checked before SQLite reads it.

- A new library is built in a temporary file beside it and linked into place only when its schema
  is complete, so no other process ever sees a half-made library (and a 0-byte library file is
  never ours: it is damage).
- The write-ahead log (``-wal``) is checked with its own checksums before SQLite reads it. SQLite
  stops reading the log at the first frame that does not check out, and drops the rest without a
  word; a torn tail (a kill during a write) is normal, but a committed change *after* a bad frame
  means changes the person saved would be silently lost: that is damage.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from shotsketch.core import leftovers

WAL_SUFFIX = "-wal"
_WAL_MAGIC = (0x377F0682, 0x377F0683)  # the low bit: checksums over big-endian words
_WAL_HEADER = 32
_FRAME_HEADER = 24
_MASK = 0xFFFFFFFF


def wal_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + WAL_SUFFIX)


def _checksum(data: bytes, big_endian: bool, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & _MASK
        s1 = (s1 + words[i + 1] + s0) & _MASK
    return s0, s1


def _wal_damage_once(data: bytes) -> str | None:
    if len(data) < _WAL_HEADER:
        return None
    magic, _, page_size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:_WAL_HEADER])
    big = bool(magic & 1)
    frame_size = _FRAME_HEADER + page_size
    valid_size = page_size >= 512 and page_size & (page_size - 1) == 0 and page_size <= 65536
    if magic not in _WAL_MAGIC or not valid_size or _checksum(data[:24], big) != (c1, c2):
        # SQLite ignores a log whose header does not check out, with every change in it
        if len(data) >= _WAL_HEADER + _FRAME_HEADER + 512:
            return "its journal (-wal) has a damaged header, so the changes saved in it cannot be read"
        return None
    frames = (len(data) - _WAL_HEADER) // frame_size

    def frame(i: int) -> tuple[int, int, int, int, int, int]:
        off = _WAL_HEADER + i * frame_size
        return struct.unpack(">6I", data[off:off + _FRAME_HEADER])

    def checks_out(i: int, seed: tuple[int, int]) -> bool:
        off = _WAL_HEADER + i * frame_size
        pgno, _, s1, s2, f1, f2 = frame(i)
        if pgno == 0 or (s1, s2) != (salt1, salt2):
            return False
        head = _checksum(data[off:off + 8], big, *seed)
        return _checksum(data[off + _FRAME_HEADER:off + frame_size], big, *head) == (f1, f2)

    seed = (c1, c2)
    for i in range(frames):
        if not checks_out(i, seed):
            break
        seed = frame(i)[4:6]
    else:
        return None  # every whole frame checks out; a partial last frame is a torn tail
    # SQLite stops at frame i. A later commit frame of this log that checks out against the frame
    # before it is a saved change that would be dropped (stale frames of an interrupted change have
    # no commit frame).
    for j in range(i + 1, frames):
        if frame(j)[1] != 0 and checks_out(j, frame(j - 1)[4:6]):
            return (f"its journal (-wal) is damaged at change {i + 1} of {frames}: "
                    "changes saved after it cannot be read")
    return None


def wal_damage(db_path: Path, *, confirm_after_s: float = 0.05) -> str | None:
    """What is wrong with the library's write-ahead log, or ``None`` when SQLite will read every
    saved change in it. A finding is confirmed by a second read: another process writing to the
    log at that moment can make one read look damaged, never two alike."""
    first = _read_and_check(wal_path(db_path))
    if first is None:
        return None
    time.sleep(confirm_after_s)
    return first if _read_and_check(wal_path(db_path)) == first else None


def _read_and_check(wal: Path) -> str | None:
    try:
        data = wal.read_bytes()
    except OSError:
        return None  # no log (or none readable): SQLite says what is wrong when it opens the file
    return _wal_damage_once(data)


def wal_has_saved_changes(db_path: Path) -> bool:
    """Whether the log holds at least one committed change that checks out (a library whose
    file is still 0 bytes while its content is in the log)."""
    try:
        data = wal_path(db_path).read_bytes()
    except OSError:
        return False
    if len(data) < _WAL_HEADER:
        return False
    magic, _, page_size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:_WAL_HEADER])
    if magic not in _WAL_MAGIC or not 512 <= page_size <= 65536:
        return False
    big, frame_size, seed = bool(magic & 1), _FRAME_HEADER + page_size, (c1, c2)
    for off in range(_WAL_HEADER, len(data) - frame_size + 1, frame_size):
        pgno, commit, s1, s2, f1, f2 = struct.unpack(">6I", data[off:off + _FRAME_HEADER])
        head = _checksum(data[off:off + 8], big, *seed)
        if pgno == 0 or (s1, s2) != (salt1, salt2) or _checksum(data[off + 24:off + frame_size], big, *head) != (f1, f2):
            return False
        if commit:
            return True
        seed = (f1, f2)
    return False


def statements(script: str) -> list[str]:
    """The SQL statements of a migration script, one by one (triggers kept whole), so that they
    can run inside a transaction the caller holds (``executescript`` would commit it first)."""
    out, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                out.append(current.strip())
            current = ""
    if current.strip(" \n\t;"):
        out.append(current.strip())
    return out


def create_whole(db_path: Path, build: Callable[[sqlite3.Connection], None]) -> bool:
    """Create the library file at ``db_path`` complete or not at all: ``build`` fills a temporary
    file beside it (named for this process, so that a killed start's leftover is found and
    removed), which is then linked into place unless another process got there first. Returns
    whether this call created it."""
    tmp = db_path.with_name(leftovers.owned_name(f".{db_path.name}", "creating", uuid.uuid4().hex[:8]))
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            build(db)
        finally:
            db.close()  # checkpoints: the file is whole, its log removed
        try:
            os.link(tmp, db_path)
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: a plain rename, unless one appeared
            if db_path.exists():
                return False
            os.replace(tmp, db_path)
            return True
    finally:
        for leftover in (tmp, wal_path(tmp), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
