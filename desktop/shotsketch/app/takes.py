"""Turning generated frames into files and a take: the same code for the window and the CLI.

:func:`write_clip_with_recipe` encodes the clip with the recipe in its container tags, writes the
recipe sidecar (``clip.mp4.json``) and the layout-guidance heatmaps beside it; ``shotsketch
generate`` calls it for ``--out``. :class:`TakeService` adds the thumbnail and the library row for
a take made from a queued job (the window, and any headless run of the queue).

Encoding is slow: call these off the window's main thread (they touch no model).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shotsketch.core.library import Library, Take
from shotsketch.media.encode import ClipFormat, write_clip, write_failure
from shotsketch.media.heatmaps import write_heatmaps
from shotsketch.media.sidecar import container_tags, write_sidecar
from shotsketch.media.thumbnail import make_thumbnail

log = logging.getLogger(__name__)


def recipe_with_output(recipe: Mapping[str, Any], clip: Path, fmt: ClipFormat, fps: float,
                       frames: np.ndarray) -> dict[str, Any]:
    """A copy of ``recipe`` whose ``output`` block describes the clip written from ``frames``."""
    out = dict(recipe)
    out["output"] = {"file": clip.name, "format": fmt.value, "fps": fps, "frames": int(frames.shape[0]),
                     "width": int(frames.shape[2]), "height": int(frames.shape[1])}
    return out


def write_clip_with_recipe(
    frames: np.ndarray,
    recipe: Mapping[str, Any],
    out: Path,
    *,
    fmt: ClipFormat = ClipFormat.MP4,
    fps: float = 24,
    heatmaps: Mapping[str, np.ndarray] | None = None,
    overwrite: bool = False,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Encode ``frames`` to ``out`` (atomically) with the recipe in its tags, then the recipe
    sidecar and any heatmaps beside it. Returns (the file written, the recipe as written).
    Raises the encoder's EncodeError / EncodeCancelled."""
    recipe_out = recipe_with_output(recipe, out, fmt, fps, frames)
    try:
        tags: dict[str, str] | None = container_tags(recipe_out)
    except (TypeError, ValueError):  # tags are a nicety; the sidecar holds the recipe
        log.debug("no container tags", exc_info=True)
        tags = None
    written = write_clip(frames, out, fmt=fmt, fps=fps, metadata=tags, cancelled=cancelled,
                         on_exists="overwrite" if overwrite else "error")
    if written.name != out.name:
        recipe_out["output"]["file"] = written.name
    companions: list[Path] = []
    try:
        companions.append(write_sidecar(written, recipe_out))
        heat = write_heatmaps(written, heatmaps) if heatmaps else None
        if heat is not None:
            companions.append(heat)
    except OSError as exc:  # a full disk, a folder in its place: no clip is left without its recipe
        for path in (written, *companions):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise write_failure(exc, written, "write the recipe of") from None
    return written, recipe_out


class TakeService:
    """Saves finished jobs as takes of one library: the clip (MP4 in the library's media folder),
    its recipe sidecar and heatmaps, a thumbnail, and the library row under the job's variant."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def save(self, variant_id: int, frames: np.ndarray, recipe: Mapping[str, Any], fps: float,
             heatmaps: Mapping[str, np.ndarray] | None = None) -> Take:
        clip, recipe_out = write_clip_with_recipe(frames, recipe, self.library.new_media_path(".mp4"),
                                                  fmt=ClipFormat.MP4, fps=fps, heatmaps=heatmaps)
        thumb = make_thumbnail(frames, clip.with_suffix(".png"))
        take = self.library.add_take(variant_id, clip, recipe_out, thumb)
        log.info("take %d saved to %s", take.id, clip)
        return take


__all__ = ["TakeService", "recipe_with_output", "write_clip_with_recipe"]
