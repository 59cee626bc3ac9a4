"""Turning a finished job into a take in the library. Runs on a background thread, never the UI's:
the clip is encoded (MP4), the recipe written beside it, a thumbnail made, and the take recorded."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from shotsketch.media.heatmaps import write_heatmaps

from shotsketch.core.library import Library, Take
from shotsketch.media.encode import ClipFormat, write_clip
from shotsketch.media.sidecar import container_tags, write_sidecar
from shotsketch.media.thumbnail import make_thumbnail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VariantSnapshot:
    """What the editor held when a job was queued: the variant a take belongs to."""

    shot_id: int
    prompt: str
    negative_prompt: str
    layout_json: str | None
    settings_json: str  # sorted JSON, so equal snapshots compare equal

    @property
    def settings(self) -> dict[str, Any]:
        return json.loads(self.settings_json)


class TakeWriter:
    """Writes takes into one library. Use it from one background thread at a time (an executor of one)."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._variants: dict[VariantSnapshot, int] = {}
        self._last: dict[int, int] = {}  # shot id -> last variant id, the parent of the next one

    def variant_for(self, snap: VariantSnapshot) -> int:
        found = self._variants.get(snap)
        if found is not None:
            return found
        variant = self.library.create_variant(
            snap.shot_id, snap.prompt, snap.negative_prompt, snap.layout_json, snap.settings,
            parent_id=self._last.get(snap.shot_id) or self._latest_variant(snap.shot_id),
        )
        self._variants[snap] = variant.id
        self._last[snap.shot_id] = variant.id
        return variant.id

    def adopt(self, snap: VariantSnapshot, variant_id: int) -> None:
        """The editors now hold this existing variant: its takes go to it, and edits branch from it."""
        self._variants[snap] = variant_id
        self._last[snap.shot_id] = variant_id

    def _latest_variant(self, shot_id: int) -> int | None:
        variants = self.library.list_variants(shot_id)
        return variants[-1].id if variants else None

    def write(self, snap: VariantSnapshot, frames: np.ndarray, recipe: dict[str, Any], fps: float,
              heatmaps: dict[str, np.ndarray] | None = None) -> Take:
        clip = self.library.new_media_path(".mp4")
        try:
            tags = container_tags(recipe)
        except Exception:  # noqa: BLE001 - tags are a nicety; the sidecar holds the recipe
            log.debug("no container tags", exc_info=True)
            tags = None
        clip = write_clip(frames, clip, fmt=ClipFormat.MP4, fps=fps, metadata=tags)
        write_sidecar(clip, recipe)
        if heatmaps:
            write_heatmaps(clip, heatmaps)
        thumb = make_thumbnail(frames, clip.with_suffix(".png"))
        variant_id = self.variant_for(snap)
        take = self.library.add_take(variant_id, clip, recipe, thumb)
        log.info("take %d saved to %s", take.id, clip)
        return take
