"""A take's layout-guidance attention maps, kept beside its clip as `<clip>.heatmaps.npz`.

Read with ``allow_pickle=False`` and checked (float arrays [latent_frames, h, w]) so a damaged or
hostile file can neither run code nor crash the preview.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shotsketch.core.atomic import write_bytes_atomic

log = logging.getLogger(__name__)
SUFFIX = ".heatmaps.npz"


def heatmaps_path(clip: str | os.PathLike[str]) -> Path:
    clip = Path(clip)
    return clip.with_name(clip.name + SUFFIX)


def npz_bytes(maps: Mapping[str, np.ndarray]) -> bytes:
    """An .npz (compressed) with one float32 array per subject, keyed by the subject's name.

    Written entry by entry rather than through ``np.savez(**maps)``, whose own parameter ``file``
    would clash with a subject named "file"."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in maps.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def write_heatmaps(clip: str | os.PathLike[str], maps: Mapping[str, np.ndarray]) -> Path | None:
    if not maps:
        return None
    return write_bytes_atomic(heatmaps_path(clip), npz_bytes(maps))


def read_heatmaps(clip: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The maps saved beside ``clip``; {} when there are none or the file is unusable (logged)."""
    path = heatmaps_path(clip)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            maps = {name: np.asarray(data[name], dtype=np.float32) for name in data.files}
    except Exception as exc:  # noqa: BLE001 - any damaged file (bad zip, truncated, wrong dtype) is ignored
        log.warning("ignoring unreadable heatmaps %s: %s", path, exc)
        return {}
    return {n: a for n, a in maps.items() if a.ndim == 3 and np.isfinite(a).all()}


def adherence_of(recipe: Any) -> dict[str, float]:
    """Per-subject adherence scores stored in a take's recipe (empty when it had no layout)."""
    if not isinstance(recipe, dict):
        return {}
    scores = (recipe.get("layout_guidance") or {}).get("adherence") or {}
    return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def adherence_summary(recipe: Any) -> str:
    """'85% attention in boxes': the share of the model's attention to each subject's words that
    fell inside that subject's boxes, averaged over the subjects (not a quality score); '' for a
    take without a layout."""
    scores = adherence_of(recipe)
    return f"{round(100 * sum(scores.values()) / len(scores))}% attention in boxes" if scores else ""


ADHERENCE_EXPLAINED = ("The share of the model's attention to each subject's words that fell inside "
                       "that subject's boxes, averaged over the subjects: how closely the take followed "
                       "the sketch, not a measure of quality.")
