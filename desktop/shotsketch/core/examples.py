"""Example shots shipped in ``shotsketch.resources/examples``: a prompt, a negative prompt
and a layout each, for a first run and for the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from shotsketch.core.layout import Layout, LayoutError

EXAMPLE_SCHEMA_VERSION = 1


class ExampleError(ValueError):
    """An example file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class ExampleShot:
    name: str
    prompt: str
    negative_prompt: str
    layout: Layout
    id: str = ""  # the file's stem, e.g. "yellow_ball"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": EXAMPLE_SCHEMA_VERSION,
            "name": self.name,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "layout": self.layout.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, id: str = "") -> ExampleShot:
        if not isinstance(data, dict):
            raise ExampleError("an example shot must be a JSON object")
        version = data.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise ExampleError("an example shot needs a whole-number schema_version")
        if version > EXAMPLE_SCHEMA_VERSION:
            raise ExampleError(f"example schema version {version} is newer than this Shotsketch reads")
        for key in ("name", "prompt", "negative_prompt"):
            if not isinstance(data.get(key), str):
                raise ExampleError(f"an example shot needs {key} as text")
        try:
            layout = Layout.from_dict(data.get("layout"))
        except LayoutError as exc:
            raise ExampleError(f"layout: {exc}") from None
        return cls(data["name"], data["prompt"], data["negative_prompt"], layout, id)


def examples_folder() -> Traversable:
    try:
        return resources.files("shotsketch.resources").joinpath("examples")
    except ModuleNotFoundError:
        # A source checkout used without installing (PYTHONPATH=desktop, e.g. the GPU benchmarks):
        # resources/ sits at the top of the repository.
        from pathlib import Path

        return Path(__file__).resolve().parents[3] / "resources" / "examples"


def example_shots() -> list[ExampleShot]:
    """All example shots, sorted by file name. A broken file raises :class:`ExampleError`
    naming it (the files ship with the app, so that is a packaging bug, not a user's)."""
    shots = []
    for entry in sorted(examples_folder().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            shots.append(ExampleShot.from_dict(data, id=entry.name[: -len(".json")]))
        except (ValueError, OSError) as exc:
            raise ExampleError(f"example {entry.name}: {exc}") from None
    return shots


def example_shot(id: str) -> ExampleShot:
    for shot in example_shots():
        if shot.id == id:
            return shot
    raise KeyError(f"no example shot {id!r}")
