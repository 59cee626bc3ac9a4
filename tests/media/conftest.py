import contextlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest


def gradient_frames(count: int = 9, height: int = 49, width: int = 65, seed: int = 0) -> np.ndarray:
    """Smooth frames (so lossy codecs round-trip closely) that differ from frame to frame."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i, ..., 0] = (x * 255 // max(1, width - 1) + 7 * i) % 256
        frames[i, ..., 1] = (y * 255 // max(1, height - 1)) % 256
        frames[i, ..., 2] = 40 + 20 * i
    return frames


@pytest.fixture
def frames() -> np.ndarray:
    return gradient_frames()


def ffmpeg_stderr(path: Path) -> str:
    from shotsketch.media.encode import ffmpeg_exe

    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def leftovers(folder: Path) -> list[str]:
    """Temporary names an encode may leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".part" in p.name)


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str, *, read_only: bool = False):
    """Mount a small tmpfs (root only); skips the test where mounting is not possible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    opts = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.fixture
def media_helpers():
    """The helpers above, as a fixture (test modules here are not importable as a package)."""
    import types

    return types.SimpleNamespace(gradient_frames=gradient_frames, ffmpeg_stderr=ffmpeg_stderr,
                                 leftovers=leftovers, tiny_tmpfs=tiny_tmpfs)
