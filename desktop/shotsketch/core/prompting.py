"""The prompts a shot sends to the model: the person's prompt, the sketch's spatial clause and the
final prompt composed from both, and the negative prompt (the default one when left empty).

The window and ``shotsketch generate`` both build their prompts here, so the same shot gives the
same final prompt and negative prompt from either.
"""

from __future__ import annotations

import logging
import re

from shotsketch.core.layout import Layout, name_key
from shotsketch.core.lint import DEFAULT_NEGATIVE
from shotsketch.core.phrasing import Region, describe, draft_layout

log = logging.getLogger(__name__)

_SPACE_RE = re.compile(r"\s+")


def _normal(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip().strip(".!?;, ").casefold()


def _places(text: str) -> dict[str, tuple[Region, Region]]:
    draft = draft_layout(text)
    return {name_key(s.name): (Region.of_box(s.start), Region.of_box(s.end)) for s in draft.layout.subjects}


def prompt_says_clause(prompt: str, clause: str) -> bool:
    """Whether ``prompt`` already says what ``clause`` says: it contains the clause's text, or
    every subject of the clause is placed in the prompt with the same start and end regions
    (so "A yellow ball rolls from the left edge to the center" already says "The yellow ball
    moves from the left edge to the center")."""
    if not _normal(clause):
        return True
    if _normal(clause) in _normal(prompt):
        return True
    said = _places(clause)
    if not said:
        return False
    in_prompt = _places(prompt)
    return all(in_prompt.get(key) == regions for key, regions in said.items())


def compose_prompt(prompt: str, clause: str) -> str:
    """The final prompt: the user's prompt, then the sketch's spatial clause unless the prompt
    already says it."""
    prompt = prompt.strip()
    clause = clause.strip()
    if not clause or prompt_says_clause(prompt, clause):
        return prompt
    if not prompt:
        return clause
    if prompt[-1] not in ".!?。":
        prompt += "."
    return f"{prompt} {clause}"


def spatial_clause(layout: Layout | None) -> str:
    """The sentence the sketch compiles to ("The red car moves from the left edge to ..."); empty
    for no sketch. Phrasing never breaks editing or generating: a failure logs and gives ""."""
    if layout is None or not layout.subjects:
        return ""
    try:
        return describe(layout)
    except Exception:  # noqa: BLE001 - a phrasing bug must not stop a generation
        log.exception("describing the layout failed")
        return ""


def final_prompt(prompt: str, layout: Layout | None, edited_final: str | None = None) -> str:
    """What the model reads: the final prompt the person edited by hand when there is one,
    otherwise the prompt with the sketch's clause (see :func:`compose_prompt`)."""
    if edited_final is not None and edited_final.strip():
        return edited_final.strip()
    return compose_prompt(prompt, spatial_clause(layout))


def negative_or_default(negative: str | None) -> str:
    """The negative prompt sent to the model: the text as written, or :data:`DEFAULT_NEGATIVE`
    when it is empty (the window's empty field and the CLI's missing ``--negative`` mean the same)."""
    text = (negative or "").strip()
    return text if text else DEFAULT_NEGATIVE


__all__ = ["DEFAULT_NEGATIVE", "compose_prompt", "final_prompt", "negative_or_default", "prompt_says_clause",
           "spatial_clause"]
