"""The immutable generation request that crosses from the UI (or CLI) to the engine, and its checks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
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

    @property
    def is_fast(self) -> bool:
        """Fast mode, as the app marks it (fewer steps; FP8 matrix products where the GPU has them)."""
        return dict(self.extra).get("mode") == "fast"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["extra"] = dict(self.extra)
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
    if req.image is not None and check_image:
        load_first_frame(req.image, req.width, req.height)
    return req


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
