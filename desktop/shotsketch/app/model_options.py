"""What the person says about a model that its folder may not: whether it is step-distilled.

A step-distilled checkpoint (FastWan2.2-TI2V-5B, DMD: 3 steps at timesteps 1000 / 757 / 522, no
classifier-free guidance) is recognised from its folder (engine/sources.py ``distilled_schedule``).
Where the folder does not say so, or says so wrongly, Settings lets the person choose, per model:
"as its folder says" (nothing stored), "step-distilled" or "not step-distilled". The choice is the
Generator's ``distilled`` argument (None / True / False) for that model in the window and in
``shotsketch generate`` (whose ``--distilled`` / ``--no-distilled`` overrides it).

The choices are kept beside the settings file, in ``model_options.json`` (one validated JSON
object, written atomically; a damaged file is kept aside and the choices start empty).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shotsketch.core.atomic import read_json_file, write_json_atomic
from shotsketch.core.settings import settings_path

log = logging.getLogger(__name__)

FILE_NAME = "model_options.json"
VERSION = 1


def options_path() -> Path:
    """``model_options.json`` in the folder of the settings file."""
    return settings_path().parent / FILE_NAME


def model_key(model: str) -> str:
    """How a model is named in the file: ``demo`` and ``hf:ORG/NAME`` as written, a folder as its
    absolute path (so ``~/models/fastwan`` and its full path are one model)."""
    text = model.strip()
    if text == "demo" or text.startswith("hf:"):
        return text
    return os.path.abspath(os.path.expanduser(text))


@dataclass(frozen=True)
class ModelOptions:
    distilled: tuple[tuple[str, bool], ...] = ()
    """(model key, step-distilled or not) for the models the person chose for; others: as the folder says."""

    def distilled_for(self, model: str) -> bool | None:
        """The Generator's ``distilled`` for this model: True / False as chosen, None as its folder says."""
        return dict(self.distilled).get(model_key(model))

    def with_distilled(self, model: str, choice: bool | None) -> ModelOptions:
        choices = dict(self.distilled)
        key = model_key(model)
        if choice is None:
            choices.pop(key, None)
        else:
            choices[key] = bool(choice)
        return ModelOptions(tuple(sorted(choices.items())))

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "distilled": dict(self.distilled)}


def load_model_options(path: Path | None = None) -> ModelOptions:
    """The saved choices; none when there is no file. A damaged file is kept aside, never lost."""
    path = path or options_path()

    def parse(data: Any) -> ModelOptions:
        if not isinstance(data, dict) or not isinstance(data.get("distilled", {}), dict):
            raise ValueError("not a JSON object with a 'distilled' object")
        version = data.get("version", VERSION)
        if not isinstance(version, int) or version > VERSION:
            log.warning("%s was written by a newer Shotsketch (version %r); its choices are not used", path, version)
            return ModelOptions()
        choices = {k: v for k, v in data.get("distilled", {}).items() if isinstance(k, str) and isinstance(v, bool)}
        return ModelOptions(tuple(sorted(choices.items())))

    return read_json_file(path, parse, ModelOptions, "model options file", log, "using none")


def save_model_options(options: ModelOptions, path: Path | None = None) -> Path:
    path = path or options_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, options.to_dict())


def schedule_text(schedule: Sequence[int] | None) -> str:
    """What the window and the CLI say of a step-distilled model's own schedule ("" for none)."""
    if not schedule:
        return ""
    steps = len(schedule)
    return (f"Distilled model: {steps} step{'s' if steps != 1 else ''} "
            f"(DMD {' / '.join(str(t) for t in schedule)}), no CFG")


__all__ = ["FILE_NAME", "ModelOptions", "load_model_options", "model_key", "options_path", "save_model_options",
           "schedule_text"]
