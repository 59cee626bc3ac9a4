"""A real full disk (ENOSPC from a small tmpfs): a clip, its recipe and the library each fail with
one line, leave no partial file, and every write confirmed before stays readable."""

from __future__ import annotations

import os

import numpy as np
import pytest

from shotsketch.core.library import DB_NAME, Library, LibraryError

from .conftest import count


def _fill(folder, leave: int = 0) -> None:
    """Fill the file system, leaving about ``leave`` bytes."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    if leave:
        size = (folder / "filler").stat().st_size
        os.truncate(folder / "filler", max(0, size - leave))


def test_a_clip_on_a_full_disk_fails_in_one_line_and_leaves_nothing(small_disk):
    from shotsketch.app.takes import write_clip_with_recipe
    from shotsketch.media.encode import EncodeError

    disk = small_disk("256k")
    frames = np.random.default_rng(0).integers(0, 255, (12, 256, 256, 3), dtype=np.uint8)
    for leave in (0, 8 * 1024, 64 * 1024):  # nothing left; room for the recipe only; for part of the clip
        _fill(disk, leave)
        with pytest.raises(EncodeError) as info:
            write_clip_with_recipe(frames, {"request": {"prompt": "noise"}}, disk / "clip.mp4", fps=24)
        assert "\n" not in str(info.value) and "full" in str(info.value)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"], "a partial file was left"
        (disk / "filler").unlink()
        count("disk_full")


def test_the_recipe_failing_on_a_full_disk_takes_the_clip_back(small_disk, monkeypatch):
    """The clip fits, its recipe does not: no clip is left without its recipe."""
    from shotsketch.app import takes
    from shotsketch.media.encode import EncodeError

    disk = small_disk("1m")
    frames = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    real_sidecar = takes.write_sidecar

    def full_then_sidecar(clip, recipe):  # noqa: ANN001
        _fill(disk)
        return real_sidecar(clip, {**recipe, "padding": "x" * 65536})

    monkeypatch.setattr(takes, "write_sidecar", full_then_sidecar)
    with pytest.raises((EncodeError, OSError)) as info:
        takes.write_clip_with_recipe(frames, {"request": {"prompt": "noise"}}, disk / "clip.mp4", fps=24)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    count("disk_full")


def test_library_writes_on_a_full_disk_fail_cleanly_and_confirmed_ones_survive(small_disk):
    disk = small_disk("1m")
    path = disk / DB_NAME
    confirmed: list[str] = []
    with Library.open(path) as lib:
        shot = lib.create_shot(lib.create_project("Film").id, "Shot")
        with pytest.raises(LibraryError) as info:
            for i in range(100_000):
                prompt = f"prompt {i} " + "x" * 2000
                lib.create_variant(shot.id, prompt)
                confirmed.append(prompt)
        message = str(info.value)
        assert "\n" not in message and "full" in message.lower(), message
        count("disk_full")
    (disk / "media").rmdir() if not any((disk / "media").iterdir()) else None
    with Library.open(path) as lib:  # reopened after the failure, with the disk still full
        stored = [v.prompt for p in lib.list_projects() for s in lib.list_shots(p.id) for v in lib.list_variants(s.id)]
    assert stored == confirmed and len(confirmed) > 10
    count("writes_checked", len(confirmed))


def test_generate_to_a_full_disk_is_one_line_and_exit_1(small_disk, capsys):
    from .cli import run_cli

    disk = small_disk("128k")
    _fill(disk)
    run = run_cli(["generate", "a ball", "--model", "demo", "--width", "64", "--height", "64", "--frames", "5",
                   "--steps", "1", "--quiet", "--out", str(disk / "clip.mp4")], capsys)
    assert "unexpected error" not in run.err and "Traceback" not in run.err
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert run.code in (1, 2) and len(lines) == 1 and "full" in lines[0], run.err
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    count("disk_full")
