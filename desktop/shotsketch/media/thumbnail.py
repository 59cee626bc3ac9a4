"""A still for the library and the file manager: the middle frame, at most ``max_side`` pixels."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from shotsketch.core.atomic import write_bytes_atomic
from shotsketch.media.encode import EncodeError, _check_frames, count_frames, iter_frames


def middle_frame(frames_or_clip: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    if isinstance(frames_or_clip, (str, os.PathLike)):
        total = count_frames(frames_or_clip)
        _meta, frames = iter_frames(frames_or_clip)
        try:
            for i, frame in enumerate(frames):
                if i == total // 2:
                    return frame.copy()
        finally:
            frames.close()  # type: ignore[attr-defined]
        raise EncodeError(f"{Path(frames_or_clip).name} has no frames to make a thumbnail from")
    frames = _check_frames(frames_or_clip)
    return frames[frames.shape[0] // 2]


def make_thumbnail(
    frames_or_clip: np.ndarray | str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    max_side: int = 256,
) -> Path:
    """Write the middle frame as a PNG whose longer side is at most ``max_side`` (never enlarged)."""
    from PIL import Image

    if max_side < 1:
        raise ValueError("max_side must be at least 1")
    image = Image.fromarray(middle_frame(frames_or_clip), "RGB")
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    dest = Path(out_png)
    try:
        return write_bytes_atomic(dest, buf.getvalue())
    except OSError as exc:
        raise EncodeError(f"could not write the thumbnail {dest}: {exc.strerror or exc}") from exc
