"""The immutable generation request that crosses from the UI (or CLI) to the engine, and its checks."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Any

from shotsketch.core.inputs import text_problem
from shotsketch.core.ranges import FAST_MODE_STEPS, MAX_SEED, RANGES, SIZE_MULTIPLE

# The limits below come from the one table of ranges in core/ranges.py (read by the widgets,
# Settings, the CLI and this validation alike).
MAX_SIDE = int(RANGES["width"].high)
MAX_FRAMES = int(RANGES["frames"].high)
MAX_STEPS = int(RANGES["steps"].high)
MIN_GUIDANCE, MAX_GUIDANCE = float(RANGES["guidance"].low), float(RANGES["guidance"].high)


class RequestError(ValueError):
    """A request that cannot run; the message says what to change."""


class LoraError(RequestError):
    """A LoRA that cannot be used; the message says which file and why."""


MAX_LORA_STRENGTH = 4.0
"""A LoRA's strength is between -4 and 4 (1 = as trained; beyond 4 the picture falls apart)."""
MAX_LORAS = 8
"""At most this many LoRAs in one request (each one is read, checked and fused before a job)."""
LORA_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class LoraChoice:
    """One LoRA of a request: a .safetensors file and its strength (engine/lora.py fuses it)."""

    path: str
    strength: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.path, os.PathLike):
            object.__setattr__(self, "path", os.fspath(self.path))
        if not isinstance(self.path, str):
            raise LoraError(f"a LoRA file must be a path, not {self.path!r}"[:200])

    @classmethod
    def parse(cls, text: str) -> "LoraChoice":
        """`FILE` or `FILE:STRENGTH` (a drive letter's colon is part of the file)."""
        head, sep, tail = text.rpartition(":")
        if sep and head and not tail.startswith(("\\", "/")):
            try:
                return cls(head, float(tail))
            except ValueError:
                pass
        return cls(text, 1.0)

    @classmethod
    def from_value(cls, item: Any) -> "LoraChoice":
        """A LoRA as stored: a LoraChoice, {"path": FILE, "strength": S}, [FILE, S] or "FILE[:S]"."""
        if isinstance(item, LoraChoice):
            return item
        if isinstance(item, str):
            return cls.parse(item)
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            unknown = sorted(set(item) - {"path", "strength"})
            if unknown:
                raise LoraError(f"a LoRA has unknown field(s): {', '.join(map(str, unknown))}")
            return cls(item["path"], _lora_strength(item.get("strength", 1.0)))
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            return cls(item[0], _lora_strength(item[1]))
        raise LoraError(f"a LoRA must be given as FILE[:STRENGTH], not {item!r}"[:200])

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "strength": self.strength}

    @property
    def name(self) -> str:
        return Path(self.path).name

    def problem(self, *, check_file: bool = True) -> str | None:
        """One sentence on why this LoRA cannot be used, or None: a finite strength inside the
        range, a .safetensors file name, and (``check_file``) a file that is there to read."""
        strength = self.strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)):
            return f"the LoRA strength for {self.name} must be a number"
        if not (math.isfinite(strength) and -MAX_LORA_STRENGTH <= strength <= MAX_LORA_STRENGTH):
            return (f"the LoRA strength {strength:g} for {self.name} must be between {-MAX_LORA_STRENGTH:g} "
                    f"and {MAX_LORA_STRENGTH:g}")
        problem = text_problem(self.path, "a LoRA file name")
        if problem:
            return problem
        if not self.path.strip():
            return "a LoRA has no file name"
        path = Path(self.path)
        if path.suffix.lower() != LORA_SUFFIX:
            return (f"the LoRA file {path.name} is not a .safetensors file; Shotsketch reads LoRAs as safetensors "
                    "only (for safety): use the .safetensors version")
        if check_file:
            if not path.is_file():
                return f"the LoRA file {path} does not exist"
            if not os.access(path, os.R_OK):
                return f"the LoRA file {path} cannot be read (no permission)"
        return None

    def check(self, *, check_file: bool = True) -> None:
        problem = self.problem(check_file=check_file)
        if problem:
            raise LoraError(problem)


def _lora_strength(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LoraError(f"a LoRA strength must be a number, not {value!r}"[:200])
    try:
        return float(value)
    except OverflowError:
        raise LoraError("a LoRA strength is far too large a number") from None


def lora_choices(items: Any) -> tuple[LoraChoice, ...]:
    """LoRAs as a request holds them, from any stored form (see :meth:`LoraChoice.from_value`)."""
    if items is None:
        return ()
    if isinstance(items, (str, dict, LoraChoice)):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise LoraError("'loras' must be a list of LoRAs")
    return tuple(LoraChoice.from_value(item) for item in items)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    width: int = 832
    height: int = 480
    frames: int = 17
    steps: int = 25
    guidance: float = 5.0
    seed: int = 0
    image: str | None = None  # first frame for image-to-video (a file path)
    fps: int = 24
    layout_json: str | None = None  # the sketch, for layout guidance and the recipe
    guidance_strength: float = 0.0  # layout guidance strength (0 = off)
    prompt_as_written: str | None = None  # the person's prompt before the sketch's clause; the recipe keeps it
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    loras: tuple[LoraChoice, ...] = ()
    """LoRA files fused into the transformer for this request, each with its strength (engine/lora.py).
    Given as LoraChoice or (path, strength) pairs; held as LoraChoice. Requests and recipes from before
    this field carry them as ``extra["loras"]`` (engine/lora.py ``loras_of`` reads both)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.loras, tuple) and all(isinstance(c, LoraChoice) for c in self.loras)):
            object.__setattr__(self, "loras", lora_choices(self.loras))

    @property
    def is_fast(self) -> bool:
        """Fast mode, as the app marks it (fewer steps; FP8 matrix products where the GPU has them)."""
        return dict(self.extra).get("mode") == "fast"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["extra"] = dict(self.extra)
        if self.loras:
            data["loras"] = [c.to_dict() for c in self.loras]
        else:  # a request without LoRAs reads as before the field (older Shotsketch replays it)
            del data["loras"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationRequest":
        if not isinstance(data, dict):
            raise RequestError("the request must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise RequestError(f"unknown request field(s): {', '.join(unknown)}")
        if "prompt" not in data:
            raise RequestError("the request has no prompt")
        kwargs = dict(data)
        if "extra" in kwargs:
            extra = kwargs["extra"]
            if not isinstance(extra, dict):
                raise RequestError("'extra' must be an object")
            kwargs["extra"] = tuple(sorted(extra.items()))
        if "loras" in kwargs:
            if not isinstance(kwargs["loras"], list):
                raise RequestError("'loras' must be a list")
            kwargs["loras"] = lora_choices(kwargs["loras"])
        types = {"prompt": str, "negative_prompt": str, "width": int, "height": int, "frames": int, "steps": int,
                 "seed": int, "fps": int}
        for name, kind in types.items():
            if name in kwargs and (not isinstance(kwargs[name], kind) or isinstance(kwargs[name], bool)):
                raise RequestError(f"'{name}' must be {'text' if kind is str else 'a whole number'}")
        for name in ("guidance", "guidance_strength"):
            if name in kwargs:
                value = kwargs[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise RequestError(f"'{name}' must be a number")
                try:
                    kwargs[name] = float(value)
                except OverflowError:
                    raise RequestError(f"'{name}' is far too large a number") from None
        for name in ("image", "layout_json", "prompt_as_written"):
            if kwargs.get(name) is not None and not isinstance(kwargs[name], str):
                raise RequestError(f"'{name}' must be text or null")
        return cls(**kwargs)


def nearest_multiple(value: int, multiple: int = SIZE_MULTIPLE) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def nearest_frame_count(frames: int) -> int:
    return max(1, int(round((frames - 1) / 4)) * 4 + 1)


def validate_request(req: GenerationRequest, *, check_image: bool = True) -> GenerationRequest:
    """Raise RequestError with a message a person can act on; return the request unchanged if fine."""
    for name, what in (("prompt", "the prompt"), ("negative_prompt", "the negative prompt"),
                       ("prompt_as_written", "the prompt as written")):
        value = getattr(req, name, None)
        problem = text_problem(value, what) if isinstance(value, str) else None
        if problem:
            raise RequestError(problem)
    if not req.prompt.strip():
        raise RequestError("the prompt is empty: describe the shot")
    if req.layout_json is not None:  # the whole sketch, before any work (names are text too)
        from shotsketch.core.layout import Layout, LayoutError

        try:
            Layout.from_json(req.layout_json)
        except LayoutError as exc:
            raise RequestError(f"the layout is not valid: {exc}") from None
    for name in ("width", "height", "frames", "steps", "guidance", "seed", "fps"):
        problem = RANGES[name].problem(getattr(req, name))
        if problem:
            raise RequestError(problem)
    problem = RANGES["layout_strength"].problem(req.guidance_strength)
    if problem:
        raise RequestError(problem)
    check_loras(req.loras, check_files=check_image)
    if req.image is not None and check_image:
        load_first_frame(req.image, req.width, req.height)
    return req


def check_loras(loras: tuple[LoraChoice, ...] | list[LoraChoice], *, check_files: bool = True) -> None:
    """Raise LoraError for too many LoRAs, a strength outside the range, a file that is not
    .safetensors, the same file twice, or (``check_files``) a file that is not there to read."""
    if len(loras) > MAX_LORAS:
        raise LoraError(f"at most {MAX_LORAS} LoRAs can be used at once ({len(loras)} were given)")
    seen: set[str] = set()
    for choice in loras:
        choice.check(check_file=check_files)
        key = os.path.normcase(os.path.abspath(choice.path))
        if key in seen:
            raise LoraError(f"the LoRA file {choice.name} is given twice; give it once with the strength wanted")
        seen.add(key)


def load_first_frame(path: str, width: int, height: int):
    """Open the first-frame image (any format Pillow reads), RGB, resized and centre-cropped to the size."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise RequestError(f"the first-frame image {p} does not exist")
    try:
        with Image.open(p) as img:
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RequestError(f"the first-frame image {p} could not be read as an image ({exc.__class__.__name__})") from exc
    return _cover_and_crop(rgb, width, height)


def _cover_and_crop(img, width: int, height: int):
    """``img`` scaled to cover ``width x height`` and centre-cropped, with the work bounded by the
    output size. Scaling a 30000x1 picture whole to cover 832x480 made a 14,400,000x480 picture;
    where the covering picture would be more than 4 times the output, only the kept part of the
    source is resampled (Pillow's ``box``). Other pictures take the original path, so that replays
    of existing recipes give the same frame bit for bit."""
    from PIL import Image

    scale = max(width / img.width, height / img.height)
    covered_w, covered_h = max(width, round(img.width * scale)), max(height, round(img.height * scale))
    left, top = (covered_w - width) // 2, (covered_h - height) // 2
    if covered_w * covered_h <= 4 * width * height:
        return img.resize((covered_w, covered_h), Image.LANCZOS).crop((left, top, left + width, top + height))
    sx, sy = img.width / covered_w, img.height / covered_h
    return img.resize((width, height), Image.LANCZOS,
                      box=(left * sx, top * sy, (left + width) * sx, (top + height) * sy))
