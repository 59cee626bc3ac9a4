"""The one way a shot becomes a :class:`GenerationRequest`, for the window and ``shotsketch generate``.

The final prompt is composed from the person's prompt and the sketch's clause, the negative prompt
defaults the same way, fast mode caps the steps, and layout guidance acts only with a sketch; the
request keeps the person's prompt (``prompt_as_written``) so the recipe holds both, and a replay
with another sketch composes from the person's prompt instead of adding a clause twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shotsketch.core.layout import Layout, LayoutError
from shotsketch.core.prompting import final_prompt, negative_or_default
from shotsketch.core.ranges import FAST_MODE_STEPS
from shotsketch.engine.requests import GenerationRequest, LoraChoice, RequestError

if TYPE_CHECKING:
    from shotsketch.app.shot import ShotSettings

DEFAULT_FPS = 24


def build_request(
    prompt: str,
    negative_prompt: str,
    layout: Layout | None,
    settings: ShotSettings,
    *,
    layout_strength: float,
    fast: bool = False,
    edited_final: str | None = None,
    seed: int | None = None,
    image: str | None = None,
    fps: int = DEFAULT_FPS,
    loras: tuple[LoraChoice, ...] = (),
) -> GenerationRequest:
    """The immutable request for a shot. Not validated: call
    :func:`shotsketch.engine.requests.validate_request` before running it."""
    has_layout = layout is not None and bool(layout.guided_names)  # subjects or groups to guide
    return GenerationRequest(
        prompt=final_prompt(prompt, layout, edited_final),
        negative_prompt=negative_or_default(negative_prompt),
        width=settings.width,
        height=settings.height,
        frames=settings.frames,
        steps=min(settings.steps, FAST_MODE_STEPS) if fast else settings.steps,
        guidance=settings.guidance,
        seed=settings.seed if seed is None else seed,
        image=image,
        fps=fps,
        layout_json=layout.to_json(indent=None) if has_layout and layout is not None else None,
        guidance_strength=float(layout_strength) if has_layout else 0.0,
        extra=(("mode", "fast"),) if fast else (),
        prompt_as_written=prompt.strip(),
        loras=tuple(loras),
    )


def request_layout(request: GenerationRequest) -> Layout | None:
    """The sketch a request (or a recipe's request) carries, or None."""
    if not request.layout_json:
        return None
    try:
        return Layout.from_json(request.layout_json)
    except (LayoutError, ValueError) as exc:
        raise RequestError(f"the request's layout is not valid: {exc}") from None


def written_prompt(request_data: dict[str, Any]) -> str:
    """The person's prompt of a recipe's request: ``prompt_as_written`` when the recipe has it
    (recipes from before it was kept hold only the final prompt)."""
    written = request_data.get("prompt_as_written")
    if isinstance(written, str):
        return written
    prompt = request_data.get("prompt")
    return prompt if isinstance(prompt, str) else ""


__all__ = ["build_request", "request_layout", "written_prompt", "DEFAULT_FPS"]
