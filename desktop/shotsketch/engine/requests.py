"""The immutable generation request that crosses from the UI (or CLI) to the engine, and its checks."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIZE_MULTIPLE = 32  # 16x VAE compression times the transformer's 2x2 patches
MAX_SIDE = 2048
MAX_FRAMES = 241
MAX_STEPS = 200
MIN_GUIDANCE, MAX_GUIDANCE = 1.0, 20.0
MAX_SEED = 2**63 - 1
FAST_MODE_STEPS = 16  # fast mode: UniPC at 16 steps instead of the official 50 (bench/RESULTS.md)


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
                kwargs[name] = float(value)
        for name in ("image", "layout_json"):
            if kwargs.get(name) is not None and not isinstance(kwargs[name], str):
                raise RequestError(f"'{name}' must be text or null")
        return cls(**kwargs)


def nearest_multiple(value: int, multiple: int = SIZE_MULTIPLE) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def nearest_frame_count(frames: int) -> int:
    return max(1, int(round((frames - 1) / 4)) * 4 + 1)


def validate_request(req: GenerationRequest, *, check_image: bool = True) -> GenerationRequest:
    """Raise RequestError with a message a person can act on; return the request unchanged if fine."""
    if not req.prompt.strip():
        raise RequestError("the prompt is empty: describe the shot")
    for name in ("width", "height"):
        value = getattr(req, name)
        if value <= 0:
            raise RequestError(f"{name} must be positive (got {value}); try {SIZE_MULTIPLE * (26 if name == 'width' else 15)}")
        if value % SIZE_MULTIPLE:
            raise RequestError(
                f"{name} {value} is not a multiple of {SIZE_MULTIPLE}; the nearest valid {name} is {nearest_multiple(value)}"
            )
        if value > MAX_SIDE:
            raise RequestError(f"{name} {value} is larger than {MAX_SIDE}")
    if req.frames < 1 or req.frames % 4 != 1:
        raise RequestError(
            f"frames must be of the form 4k+1 (1, 5, ..., 17, ..., 121); the nearest to {req.frames} is "
            f"{nearest_frame_count(req.frames)}"
        )
    if req.frames > MAX_FRAMES:
        raise RequestError(f"frames {req.frames} is more than {MAX_FRAMES}")
    if not 1 <= req.steps <= MAX_STEPS:
        raise RequestError(f"steps must be between 1 and {MAX_STEPS} (got {req.steps})")
    if not (math.isfinite(req.guidance) and MIN_GUIDANCE <= req.guidance <= MAX_GUIDANCE):
        raise RequestError(f"guidance must be between {MIN_GUIDANCE:g} and {MAX_GUIDANCE:g} (got {req.guidance})")
    if not 0 <= req.seed <= MAX_SEED:
        raise RequestError(f"seed must be between 0 and {MAX_SEED} (got {req.seed})")
    if not 1 <= req.fps <= 120:
        raise RequestError(f"fps must be between 1 and 120 (got {req.fps})")
    if not (math.isfinite(req.guidance_strength) and 0.0 <= req.guidance_strength <= 10.0):
        raise RequestError(f"layout guidance strength must be between 0 and 10 (got {req.guidance_strength})")
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
