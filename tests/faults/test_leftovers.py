"""Defect 9: files the app names while it works carry their owner's process id; a killed owner's
leftovers are removed at the next start (never a running one's) and counted by ``doctor``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shotsketch.core import leftovers
from shotsketch.core.library import DB_NAME, Library, copy_into_media
from shotsketch.media.encode import write_clip

WORKERS = Path(__file__).with_name("workers.py")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_killed_encode_leaves_a_part_file_that_the_next_encode_removes(tmp_path):
    out = tmp_path / "clip.mp4"
    proc = subprocess.Popen([sys.executable, str(WORKERS), "encode-until-killed", str(out)])
    deadline = time.monotonic() + 60
    while not [n for n in _hidden(tmp_path) if ".part" in n] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = _hidden(tmp_path)
    assert left and all(leftovers.owner(n) == proc.pid for n in left), left
    assert not out.exists()
    assert [p.name for p in leftovers.stale(tmp_path)] == left
    write_clip(np.zeros((3, 64, 96, 3), dtype=np.uint8), tmp_path / "other.mp4")
    assert _hidden(tmp_path) == []


def test_a_running_owners_files_are_never_removed(tmp_path):
    mine = tmp_path / leftovers.owned_name("clip.mp4", "part", ".mp4")
    mine.write_bytes(b"in progress")
    theirs = tmp_path / f".clip.mp4.part-pid{dead_pid()}-0123abcd.mp4"
    theirs.write_bytes(b"left by a kill")
    user = tmp_path / ".clip.mp4.part-mine.mp4"  # a name the app did not give: never touched
    user.write_bytes(b"the user's")
    assert leftovers.clean(tmp_path) == [theirs]
    assert mine.exists() and user.exists() and not theirs.exists()


def test_a_failed_encode_leaves_no_metadata_file(tmp_path):
    frames = np.zeros((3, 64, 96, 3), dtype=np.uint8)
    bad = tmp_path / "folder.mp4"
    with pytest.raises(Exception):
        write_clip(frames[:, :, :, :2], bad, metadata={"comment": "x"})
    write_clip(frames, tmp_path / "a.mp4", metadata={"comment": "lone \udcff surrogate"})
    assert _hidden(tmp_path) == []


def test_the_library_removes_killed_copies_and_orphaned_clips_at_open(tmp_path):
    path = tmp_path / DB_NAME
    pid = dead_pid()
    with Library.open(path) as lib:
        shot = lib.create_shot(lib.create_project("Film").id, "Shot")
        variant = lib.create_variant(shot.id, "a ball")
        kept_clip = lib.new_media_path(".mp4")
        kept_clip.write_bytes(b"clip")
        Path(f"{kept_clip}.json").write_text("{}")
        lib.add_take(variant.id, kept_clip, {}, kept_clip.with_suffix(".png"))
        kept_clip.with_suffix(".png").write_bytes(b"png")
        live = lib.new_media_path(".mp4")  # this process is writing it: not an orphan
        live.write_bytes(b"being saved")
        source = tmp_path / "user.png"
        source.write_bytes(b"picture")
        copied = copy_into_media(lib, source)
        media = lib.media_dir
    orphan = media / kept_clip.name.replace(f"pid{leftovers.os.getpid()}", f"pid{pid}").replace(kept_clip.stem[-8:], "feedbeef")
    orphan.write_bytes(b"a clip whose take was never recorded")
    Path(f"{orphan}.json").write_text("{}")
    orphan.with_suffix(".png").write_bytes(b"png")
    killed_copy = media / f".{copied.name}.tmp-pid{pid}-0123abcd"
    killed_copy.write_bytes(b"half a copy")
    user_file = media / "notes.txt"
    user_file.write_text("mine")
    with Library.open(path):
        pass
    names = sorted(p.name for p in media.iterdir())
    assert names == sorted([kept_clip.name, f"{kept_clip.name}.json", kept_clip.with_suffix(".png").name,
                            live.name, copied.name, "notes.txt"])


def test_doctor_counts_leftovers_of_stopped_runs(capsys, monkeypatch, tmp_path):
    import tempfile

    from shotsketch.cli import main
    from shotsketch.core import paths

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the machine's own temp folder may hold others

    media = paths.data_dir() / "media"
    media.mkdir(parents=True, exist_ok=True)
    (media / f".take.mp4.tmp-pid{dead_pid()}-0123abcd").write_bytes(b"x")
    main(["doctor", "--model", "demo"])
    assert "leftovers of stopped runs: 1 (removed at the next start)" in capsys.readouterr().out
