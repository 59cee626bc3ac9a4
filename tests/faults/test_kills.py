"""kill -9 of generate and export at random moments: nothing ever appears under the final name
unless it is whole (with its recipe), and the next command leaves no leftover behind."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shotsketch.core import leftovers

from .conftest import count, rounds

SHOTSKETCH = [sys.executable, "-m", "shotsketch"]


def _kill_after(argv: list[str], seconds: float) -> int:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.pid


def _whole_or_absent(out: Path) -> None:
    """The clip is either absent, or there whole with its recipe (a probe reads every frame)."""
    from shotsketch.media.probe import probe_video as probe

    if out.exists():
        info = probe(out)
        assert info.frames > 0
        assert Path(f"{out}.json").exists()
    else:
        assert not Path(f"{out}.json").exists() or Path(f"{out}.json").stat().st_size > 0


@pytest.mark.parametrize("trial", range(rounds(1, 6)))
def test_generate_killed_at_any_moment(tmp_path, trial):
    rng = random.Random(trial)
    out = tmp_path / "clip.mp4"
    argv = [*SHOTSKETCH, "generate", "a ball", "--model", "demo", "--width", "128", "--height", "96", "--frames",
            "33", "--steps", "3", "--quiet", "--out", str(out)]
    _kill_after(argv, rng.uniform(3.0, 14.0))
    count("kills")
    _whole_or_absent(out)
    # the next command into the folder starts clean: the killed run's leftovers are gone after it
    again = tmp_path / "again.mp4"
    proc = subprocess.run([*SHOTSKETCH, "generate", "a ball", "--model", "demo", "--width", "64", "--height", "64",
                           "--frames", "1", "--steps", "1", "--quiet", "--out", str(again)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in names if n.startswith(".")] == [], names
    if out.exists():
        assert names == ["again.mp4", "again.mp4.json", "clip.mp4", "clip.mp4.json"]
    else:
        assert names == ["again.mp4", "again.mp4.json"]


@pytest.mark.parametrize("trial", range(rounds(1, 6)))
def test_export_killed_at_any_moment(tmp_path, trial):
    from shotsketch.media.encode import write_clip

    rng = random.Random(100 + trial)
    source = tmp_path / "take.mp4"
    write_clip(np.random.default_rng(trial).integers(0, 255, (96, 240, 320, 3), dtype=np.uint8), source)
    out = tmp_path / "exported.mov"
    _kill_after([*SHOTSKETCH, "export", str(source), "--format", "prores", "--out", str(out), "--quiet"],
                rng.uniform(1.0, 4.0))
    count("kills")
    if out.exists():
        from shotsketch.media.probe import probe_video as probe

        assert probe(out).frames == 96
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert all(leftovers.owner(p.name) is not None or p.name.endswith(".claim") for p in left), left
    proc = subprocess.run([*SHOTSKETCH, "export", str(source), "--format", "mp4", "--out", str(tmp_path / "b.mp4"),
                           "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
