"""App settings: one validated JSON file in the platformdirs config dir, written atomically."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from shotsketch.core.atomic import read_json_file, write_json_atomic
from shotsketch.core.ranges import RANGES, clamp

log = logging.getLogger(__name__)
MAX_GPUS = 16
MEMORY_PLANS = ("auto", "gpu", "text-encoder-offload", "model-offload", "group-offload")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class AppSettings:
    model: str = "demo"  # "demo", a folder path, or "hf:ORG/NAME"
    memory_plan: str = "auto"
    width: int = 832
    height: int = 480
    frames: int = 17
    steps: int = 25
    guidance: float = 5.0
    output_dir: str = ""
    fast_mode: bool = False
    layout_guidance_strength: float = 1.0
    gpus: int = 1  # GPUs one clip renders on (1: in the app's process; more: engine/parallel_client.py)

    def replace(self, **changes: Any) -> "AppSettings":
        return validate(dataclasses.replace(self, **changes))


def settings_path() -> Path:
    base = os.environ.get("SHOTSKETCH_CONFIG_DIR") or platformdirs.user_config_dir("Shotsketch", appauthor=False)
    return Path(base) / "settings.json"


# AppSettings field -> its range in the one table (core/ranges.py)
RANGED_FIELDS = {"width": "width", "height": "height", "frames": "frames", "steps": "steps",
                 "guidance": "guidance", "layout_guidance_strength": "layout_strength"}


def validate(s: AppSettings) -> AppSettings:
    if s.memory_plan not in MEMORY_PLANS:
        raise SettingsError(f"memory_plan must be one of {', '.join(MEMORY_PLANS)}")
    for name, range_name in RANGED_FIELDS.items():
        problem = RANGES[range_name].problem(getattr(s, name))
        if problem:
            raise SettingsError(problem)
    if not 1 <= s.gpus <= MAX_GPUS:
        raise SettingsError(f"gpus must be between 1 and {MAX_GPUS}")
    return s


def clamped(s: AppSettings, where: str = "settings") -> AppSettings:
    """``s`` with every ranged number brought into its range; each change is logged."""
    changes = {name: clamp(range_name, getattr(s, name), where=where)  # type: ignore[arg-type]
               for name, range_name in RANGED_FIELDS.items()}
    return dataclasses.replace(s, **changes)


def load_settings(path: Path | None = None) -> AppSettings:
    """The saved settings; defaults when there is no file. A damaged file is kept aside, never lost."""
    path = path or settings_path()

    def parse(data: Any) -> AppSettings:
        if not isinstance(data, dict):
            raise SettingsError("not a JSON object")
        fields = {f.name: f for f in dataclasses.fields(AppSettings)}
        kwargs = {}
        for key, value in data.items():
            if key not in fields:
                continue  # a newer version's setting: ignore, keep the file as it is
            default = getattr(AppSettings(), key)
            if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default)) and not (
                isinstance(default, float) and isinstance(value, int)
            ):
                raise SettingsError(f"'{key}' has the wrong type")
            kwargs[key] = float(value) if isinstance(default, float) else value
        return validate(clamped(AppSettings(**kwargs), where=f"settings file {path}"))

    return read_json_file(path, parse, AppSettings, "settings file", log)


def save_settings(s: AppSettings, path: Path | None = None) -> Path:
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, dataclasses.asdict(validate(s)))
