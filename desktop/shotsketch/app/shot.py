"""The open shot as one observable model: what the window shows and what Generate acts on.

:class:`OpenShot` is the source of truth for the shot being edited: the person's prompt, the
negative prompt, the sketch (layout), the final prompt when edited by hand, the generation
settings, and the variant the editors hold. Views observe it and write to it; they never keep a
second copy. Each field has an :class:`~shotsketch.app.observable.Event` in :attr:`OpenShot.events`
that fires only when the value really changes; ``events.changed`` fires (with the field's name)
after any of them, for the autosave observer (:mod:`shotsketch.app.autosave`).

The shot's LoRAs (:attr:`OpenShot.loras`: .safetensors files, each with a strength) are part of
what it generates: they go into its request, its saved state and its variant's content (a shot
with other LoRAs is another variant; one without any has the content it had before LoRAs).

Opening a shot (:meth:`OpenShot.open`) replaces every field at once and then fires
``events.opened`` once (no per-field events): a view re-reads the whole model then. So the window
can never show one shot while Generate acts on another.

The model is changed on one thread (the window's main thread; any thread in the CLI and tests).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any

from shotsketch.app.observable import Event
from shotsketch.core.layout import Layout, LayoutError
from shotsketch.core.library import Library, LibraryError, Shot, Variant
from shotsketch.core.phrasing import Draft, Merged, draft_layout, merge_draft
from shotsketch.core.prompting import final_prompt, negative_or_default, spatial_clause
from shotsketch.core.ranges import RANGES, clamp
from shotsketch.core.settings import AppSettings
from shotsketch.engine.requests import GenerationRequest, LoraChoice, LoraError, check_loras, lora_choices

log = logging.getLogger(__name__)

STATE_VERSION = 3
"""Version of the shot state the library keeps for autosave (1: before the variant id was kept;
2: before the LoRAs were kept). Older states open with no LoRAs."""


@dataclass(frozen=True)
class ShotSettings:
    """The generation settings of a shot. Every number is inside its range (core/ranges.py)."""

    width: int = int(RANGES["width"].default)
    height: int = int(RANGES["height"].default)
    frames: int = int(RANGES["frames"].default)
    steps: int = int(RANGES["steps"].default)
    guidance: float = float(RANGES["guidance"].default)
    seed: int = 0

    @classmethod
    def from_app(cls, s: AppSettings, seed: int = 0) -> ShotSettings:
        """A new shot's settings: the defaults from the app's Settings."""
        return cls(s.width, s.height, s.frames, s.steps, s.guidance, seed)

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "frames": self.frames, "steps": self.steps,
                "guidance": self.guidance, "seed": self.seed}

    def variant_settings(self) -> dict[str, Any]:
        """The settings that make a variant (all but the seed: takes of one variant differ by seed)."""
        data = self.to_dict()
        data.pop("seed")
        return data

    @classmethod
    def from_dict(cls, data: Any, fallback: ShotSettings, *, where: str = "") -> ShotSettings:
        """Settings read from stored data: a missing or mistyped value is the fallback's; one
        outside its range is clamped with a log line (never silently cut)."""
        if not isinstance(data, dict):
            return fallback
        out = fallback.to_dict()
        for key, default in out.items():
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = type(default)(clamp(key, value, where=where))  # type: ignore[arg-type]
        return cls(**out)


def _layout_from(raw: Any, where: str) -> tuple[Layout, str | None]:
    """(layout, problem): a stored sketch, or an empty one and a sentence when it cannot be read."""
    if not raw:
        return Layout(), None
    try:
        return (Layout.from_json(raw) if isinstance(raw, str) else Layout.from_dict(raw)), None
    except (LayoutError, ValueError, TypeError) as exc:
        log.warning("%s: the saved sketch could not be read: %s", where, exc)
        return Layout(), f"The saved sketch of this shot could not be read ({exc}); starting with an empty sketch."


def _last_draft_from(raw: Any, where: str) -> Layout | None:
    """The last draft kept with a shot; one that cannot be read is forgotten (every box of the
    sketch then counts as the person's: nothing is taken off by mistake)."""
    if not raw:
        return None
    layout, problem = _layout_from(raw, where)
    return None if problem else layout


def normalized_loras(choices: tuple[LoraChoice, ...]) -> tuple[LoraChoice, ...]:
    """The LoRAs as a shot holds them: absolute paths, float strengths (the window and the CLI make
    the same request from the same files)."""
    return tuple(LoraChoice(os.path.abspath(os.path.expanduser(c.path)), float(c.strength)) for c in choices)


def _loras_from(raw: Any, where: str) -> tuple[tuple[LoraChoice, ...], str | None]:
    """(LoRAs, problem): a stored list of LoRAs, or none and a sentence when it cannot be used."""
    if not raw:
        return (), None
    try:
        choices = normalized_loras(lora_choices(raw))
        check_loras(choices, check_files=False)
    except LoraError as exc:
        log.warning("%s: the saved LoRAs could not be used: %s", where, exc)
        return (), f"The saved LoRAs of this shot could not be used ({exc}); it opens without LoRAs."
    return choices, None


class ShotEvents:
    """The model's events. Each carries the field's new value; ``opened`` carries the model."""

    def __init__(self) -> None:
        self.opened: Event[OpenShot] = Event("opened")
        self.prompt: Event[str] = Event("prompt")
        self.negative_prompt: Event[str] = Event("negative_prompt")
        self.edited_final: Event[str | None] = Event("edited_final")
        self.layout: Event[Layout] = Event("layout")
        self.settings: Event[ShotSettings] = Event("settings")
        self.variant_id: Event[int | None] = Event("variant_id")
        self.layout_strength: Event[float] = Event("layout_strength")
        self.fast: Event[bool] = Event("fast")
        self.loras: Event[tuple[LoraChoice, ...]] = Event("loras")
        self.last_draft: Event[Layout | None] = Event("last_draft")
        self.changed: Event[str] = Event("changed")
        """Any field the autosave keeps changed (the value is the field's name)."""


class OpenShot:
    """The shot open in the window (or described on the CLI's command line).

    Read fields through the properties; change them with the ``set_*`` methods, which fire the
    field's event only when the value differs. ``layout_strength`` and ``fast`` are the window's
    generation options (from the app's Settings; not part of the shot's saved state)."""

    def __init__(self, app_settings: AppSettings | None = None) -> None:
        app_settings = app_settings or AppSettings()
        self.events = ShotEvents()
        self._shot: Shot | None = None
        self._prompt = ""
        self._negative = ""
        self._edited_final: str | None = None
        self._layout = Layout()
        self._settings = ShotSettings.from_app(app_settings)
        self._variant_id: int | None = None
        self._layout_strength = float(clamp("layout_strength", app_settings.layout_guidance_strength))
        self._fast = bool(app_settings.fast_mode)
        self._loras: tuple[LoraChoice, ...] = ()
        self._last_draft: Layout | None = None  # what "Draft layout from prompt" last put on this sketch
        self.load_problem: str | None = None
        """A sentence about the last opened shot's state (e.g. an unreadable sketch), or None."""

    # -- reading
    @property
    def shot(self) -> Shot | None:
        return self._shot

    @property
    def shot_id(self) -> int | None:
        return self._shot.id if self._shot else None

    @property
    def prompt(self) -> str:
        """The prompt as the person wrote it."""
        return self._prompt

    @property
    def negative_prompt(self) -> str:
        """The negative prompt as written (may be empty: the default one is then used)."""
        return self._negative

    @property
    def edited_final(self) -> str | None:
        """The final prompt as edited by hand, or None when it is composed from prompt and sketch."""
        return self._edited_final

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def settings(self) -> ShotSettings:
        return self._settings

    @property
    def variant_id(self) -> int | None:
        """The variant the editors hold (its takes go to it; an edit makes a child of it)."""
        return self._variant_id

    @property
    def layout_strength(self) -> float:
        return self._layout_strength

    @property
    def fast(self) -> bool:
        return self._fast

    @property
    def loras(self) -> tuple[LoraChoice, ...]:
        """The LoRAs this shot generates with (absolute paths, in the order they are fused)."""
        return self._loras

    def spatial_clause(self) -> str:
        """The sentence the sketch compiles to."""
        return spatial_clause(self._layout)

    def final_prompt(self) -> str:
        """What the model reads (the hand-edited final prompt, or the prompt with the clause)."""
        return final_prompt(self._prompt, self._layout, self._edited_final)

    def negative_for_model(self) -> str:
        """The negative prompt the model reads (the default one when the field is empty)."""
        return negative_or_default(self._negative)

    def request(self, seed: int | None = None) -> GenerationRequest:
        """The immutable request for the shot as it is now (``seed`` overrides the settings' seed)."""
        from shotsketch.app.requests import build_request

        return build_request(self._prompt, self._negative, self._layout, self._settings,
                             layout_strength=self._layout_strength, fast=self._fast,
                             edited_final=self._edited_final, seed=seed, loras=self._loras)

    def variant_content(self) -> tuple[str, str, str | None, dict[str, Any]]:
        """(prompt, negative prompt, layout JSON or None, settings without the seed): what makes
        a variant. Equal content is the same variant (the library finds it by this)."""
        layout = None if self._layout.is_empty else self._layout.to_json(indent=None)
        settings = self._settings.variant_settings()
        if self._loras:  # without LoRAs the content is as before they existed (the same variants)
            settings["loras"] = [c.to_dict() for c in self._loras]
        return self._prompt.strip(), self.negative_for_model(), layout, settings

    def state(self) -> dict[str, Any]:
        """The shot's editor state as the library keeps it (autosave)."""
        return {
            "version": STATE_VERSION,
            "prompt": self._prompt,
            "negative_prompt": self._negative,
            "final_prompt": self._edited_final,
            "layout": self._layout.to_json(indent=None),
            "settings": self._settings.to_dict(),
            "variant_id": self._variant_id,
            "loras": [c.to_dict() for c in self._loras],
            "last_draft": None if self._last_draft is None else self._last_draft.to_json(indent=None),
        }

    # -- opening
    def open(self, library: Library, shot_id: int) -> OpenShot:
        """Open a shot of the library: every field is replaced at once from its saved state, then
        ``events.opened`` fires. Raises :class:`LibraryError` (the model unchanged) when the shot
        cannot be read."""
        shot = library.get_shot(shot_id)
        state = library.load_shot_state(shot_id) or {}
        variant_id = state.get("variant_id")
        if isinstance(variant_id, int) and not isinstance(variant_id, bool):
            try:
                if library.get_variant(variant_id).shot_id != shot_id:
                    variant_id = None
            except LibraryError:
                variant_id = None  # deleted since: the next take makes (or finds) its variant
        else:
            variant_id = None
        self.open_state(shot, state, variant_id=variant_id)
        return self

    def open_state(self, shot: Shot | None, state: dict[str, Any], *, variant_id: int | None = None) -> None:
        """Replace every field from ``state`` (the form :meth:`state` returns) and fire ``opened``."""
        where = f"shot {shot.id}" if shot else "shot"
        layout, problem = _layout_from(state.get("layout"), where)
        final = state.get("final_prompt")
        self._shot = shot
        self._prompt = str(state.get("prompt") or "")
        self._negative = str(state.get("negative_prompt") or "")
        self._edited_final = final if isinstance(final, str) and final.strip() else None
        self._layout = layout
        self._settings = ShotSettings.from_dict(state.get("settings"), self._settings, where=where)
        loras, lora_problem = _loras_from(state.get("loras"), where)
        self._loras = loras
        self._last_draft = _last_draft_from(state.get("last_draft"), where)
        self._variant_id = variant_id
        self.load_problem = " ".join(p for p in (problem, lora_problem) if p) or None
        self.events.opened.emit(self)

    def close(self) -> None:
        """No shot open (fields emptied); fires ``opened``."""
        self.open_state(None, {})

    # -- changing
    def _set(self, name: str, value: Any, *, saved: bool = True) -> bool:
        attr = {"negative_prompt": "_negative"}.get(name, f"_{name}")
        if getattr(self, attr) == value:
            return False
        setattr(self, attr, value)
        getattr(self.events, name).emit(value)
        if saved:
            self.events.changed.emit(name)
        return True

    def set_prompt(self, text: str) -> bool:
        """Returns whether anything changed (as every setter does)."""
        return self._set("prompt", str(text))

    def set_negative_prompt(self, text: str) -> bool:
        return self._set("negative_prompt", str(text))

    def set_edited_final(self, text: str | None) -> bool:
        """The final prompt edited by hand; None (or empty) goes back to the composed one."""
        return self._set("edited_final", text if text and text.strip() else None)

    def set_layout(self, layout: Layout) -> bool:
        return self._set("layout", layout)

    def set_settings(self, settings: ShotSettings) -> bool:
        return self._set("settings", settings)

    def update_settings(self, **changes: Any) -> bool:
        """Change some settings, each clamped into its range (``update_settings(seed=3)``)."""
        fixed = {k: type(getattr(self._settings, k))(clamp(k, v)) for k, v in changes.items()}
        return self.set_settings(replace(self._settings, **fixed))

    def draft_from_prompt(self, text: str) -> tuple[Draft, Merged | None]:
        """"Draft layout from prompt": the prompt's draft put onto this sketch (core/phrasing.py
        merge_draft: the person's boxes kept, the last draft's boxes the prompt no longer names
        taken off), remembered with the shot as its last draft so that a later draft, even after a
        restart, knows which boxes were drafted. Returns the draft and the merge, whose layout the
        caller puts on the sketch (the window as one undoable edit); no merge when the prompt
        places nothing and nothing drafted is to go."""
        draft = draft_layout(text, self._layout.aspect)
        merged = merge_draft(self._layout, draft.layout, self._last_draft, prompt=text)
        if draft.layout.is_empty and not merged.removed:
            return draft, None
        self._set("last_draft", draft.layout)
        return draft, merged

    @property
    def last_draft(self) -> Layout | None:
        return self._last_draft

    def set_variant_id(self, variant_id: int | None) -> bool:
        return self._set("variant_id", variant_id)

    def set_layout_strength(self, value: float) -> bool:
        return self._set("layout_strength", float(clamp("layout_strength", value)), saved=False)

    def set_fast(self, on: bool) -> bool:
        return self._set("fast", bool(on), saved=False)

    def set_loras(self, loras: Any) -> bool:
        """The shot's LoRAs (LoraChoice or (path, strength) pairs; paths made absolute). Raises
        :class:`LoraError` (the model unchanged) for more than a handful, a strength outside its
        range, a file that is not .safetensors or one given twice; whether the files are there is
        checked when they are added (:func:`shotsketch.app.loras.lora_file_problem`) and at Generate."""
        choices = normalized_loras(lora_choices(list(loras)))
        check_loras(choices, check_files=False)
        return self._set("loras", choices)

    def load_variant(self, variant: Variant) -> None:
        """Put a variant back into the editors (the seed stays): the next takes with these values
        belong to it, and an edit of them makes a new variant whose parent it is. A variant of
        another shot is refused with :class:`LibraryError` (open that shot first)."""
        if self._shot is None or variant.shot_id != self._shot.id:
            raise LibraryError(f"Variant {variant.id} belongs to another shot; open that shot first")
        self.set_prompt(variant.prompt)
        self.set_negative_prompt(variant.negative_prompt)
        self.set_edited_final(None)
        try:
            self.set_layout(variant.layout() or Layout())
        except (LayoutError, ValueError) as exc:
            log.warning("variant %d: its sketch could not be read (%s); the sketch stays", variant.id, exc)
        if variant.settings:
            self.set_settings(ShotSettings.from_dict({**variant.settings, "seed": self._settings.seed},
                                                     self._settings, where=f"variant {variant.id}"))
        loras, _problem = _loras_from(variant.settings.get("loras") if variant.settings else None, f"variant {variant.id}")
        self.set_loras(loras)  # a variant's unusable LoRAs are logged and left out
        self.set_variant_id(variant.id)


__all__ = ["OpenShot", "ShotEvents", "ShotSettings", "STATE_VERSION"]
