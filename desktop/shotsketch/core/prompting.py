"""The prompts a shot sends to the model: the person's prompt, the sketch's spatial clause and the
final prompt composed from both, and the negative prompt (the default one when left empty).

The window and ``shotsketch generate`` both build their prompts here, so the same shot gives the
same final prompt and negative prompt from either.
"""

from __future__ import annotations

import logging

from shotsketch.core.layout import Layout
from shotsketch.core.lint import DEFAULT_NEGATIVE
from shotsketch.core.phrasing import clause_beyond_prompt, describe

log = logging.getLogger(__name__)

def prompt_says_clause(prompt: str, clause: str) -> bool:
    """Whether ``prompt`` already says what ``clause`` says: it contains the clause's text, or
    every subject of the clause is placed in the prompt with the same start and end regions
    (so "A yellow ball rolls from the left edge to the center" already says "The yellow ball
    moves from the left edge to the center")."""
    return not clause_beyond_prompt(prompt, clause)


def compose_prompt(prompt: str, clause: str) -> str:
    """The final prompt: the user's prompt, then what the sketch's spatial clause adds to it,
    subject by subject (see :func:`~shotsketch.core.phrasing.clause_beyond_prompt`)."""
    prompt = prompt.strip()
    clause = clause_beyond_prompt(prompt, clause)
    if not clause:
        return prompt
    if not prompt:
        return clause
    if prompt[-1] not in ".!?。":
        prompt += "."
    return f"{prompt} {clause}"


def spatial_clause(layout: Layout | None) -> str:
    """The sentence the sketch compiles to ("The red car moves from the left edge to ..."); empty
    for no sketch. Phrasing never breaks editing or generating: a failure logs and gives ""."""
    if layout is None or layout.is_empty:
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
