"""The recipe beside every export (``clip.mp4.json``) and inside MP4 / MOV tags.

A sidecar is named after the whole clip name plus ``.json`` (``clip.mp4`` -> ``clip.mp4.json``,
a PNG sequence folder ``shot`` -> ``shot.json``), the same rule ``shotsketch generate`` uses, so
two exports of one take in different formats never share a sidecar.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shotsketch.core.atomic import write_json_atomic

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"
TITLE_MAX = 200


def sidecar_path(clip_path: str | os.PathLike[str]) -> Path:
    clip = Path(clip_path)
    return clip.with_name(clip.name + SIDECAR_SUFFIX)


def write_sidecar(clip_path: str | os.PathLike[str], recipe: Mapping[str, Any]) -> Path:
    """Write ``recipe`` as ``<clip>.json`` beside the clip, atomically; returns the sidecar path."""
    path = sidecar_path(clip_path)
    write_json_atomic(path, dict(recipe))
    return path


def read_sidecar(clip_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The recipe beside a clip, or None when there is none or it is not a JSON object."""
    path = sidecar_path(clip_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("ignoring unreadable recipe sidecar %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def recipe_prompt(recipe: Mapping[str, Any]) -> str:
    request = recipe.get("request")
    prompt = request.get("prompt") if isinstance(request, Mapping) else None
    if prompt is None:
        prompt = recipe.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def container_tags(recipe: Mapping[str, Any]) -> dict[str, str]:
    """MP4 / MOV tags carrying a recipe: ``comment`` = compact JSON, ``title`` = the prompt."""
    tags = {"comment": json.dumps(recipe, ensure_ascii=False, separators=(",", ":"))}
    prompt = recipe_prompt(recipe)
    if prompt:
        tags["title"] = prompt[:TITLE_MAX]
    return tags


def recipe_from_tags(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The recipe stored by :func:`container_tags`, or None when the comment holds none."""
    try:
        data = json.loads(tags.get("comment", ""))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def exported_recipe(recipe: Mapping[str, Any], clip_path: Path, fmt: str, *, fps: float,
                    frames: int, width: int, height: int) -> dict[str, Any]:
    """A copy of ``recipe`` whose ``output`` block describes a new export of the take."""
    out = dict(recipe)
    previous = out.get("output")
    out["output"] = {"file": clip_path.name, "format": fmt, "fps": fps, "frames": frames,
                     "width": width, "height": height}
    if isinstance(previous, Mapping) and previous.get("file") and previous.get("file") != clip_path.name:
        out["output"]["exported_from"] = previous.get("file")
    return out
