"""The open shot's LoRAs as the window edits them: adding a file (checked before it is taken),
removing one, changing a strength. Each edit returns the new list; :meth:`OpenShot.set_loras`
takes it (the window pushes it as one undoable edit).

A file is taken only when it can be used: a ``.safetensors`` file (never a pickle) that is there,
readable, with a well-formed safetensors header that names LoRA weights. Anything else is refused
with one sentence (:class:`~shotsketch.engine.requests.LoraError`); no weights are read here (the
engine reads and checks them against the model when a job runs).
"""

from __future__ import annotations

import os
from pathlib import Path

from shotsketch.core.safetensors_header import HeaderProblem, read_header
from shotsketch.engine.requests import MAX_LORA_STRENGTH, MAX_LORAS, LoraChoice, LoraError, check_loras

LORA_KEY_PARTS = (".lora_A.", ".lora_B.", ".lora_down.", ".lora_up.", "lora_A.weight", "lora_down.weight")


def lora_file_problem(path: str | os.PathLike[str]) -> str | None:
    """One sentence on why the file cannot be used as a LoRA, or None."""
    p = Path(path)
    problem = LoraChoice(str(p)).problem(check_file=True)
    if problem:
        return problem
    try:
        header = read_header(p)[0]
    except HeaderProblem as problem:
        match problem.kind:
            case "short":
                return f"the LoRA file {p.name} is too short to be a safetensors file"
            case "damaged":
                return f"the LoRA file {p.name} is not a valid safetensors file (its header is damaged)"
            case "unreadable":
                exc = problem.os_error
                return f"the LoRA file {p.name} could not be read ({exc.strerror or exc.__class__.__name__})"
            case "not-json":
                return f"the LoRA file {p.name} is not a valid safetensors file (its header is not JSON)"
        return f"the LoRA file {p.name} is not a valid safetensors file"
    keys = [k for k in header if k != "__metadata__"]
    if not keys:
        return f"the LoRA file {p.name} holds no weights"
    if not any(part in key for key in keys for part in LORA_KEY_PARTS):
        return f"{p.name} holds no LoRA weights (lora_A / lora_down ...): is it a LoRA, or a whole model?"
    return None


def added(loras: tuple[LoraChoice, ...], path: str | os.PathLike[str], strength: float = 1.0) -> tuple[LoraChoice, ...]:
    """The list with this file added at the end; LoraError (one sentence) when it cannot be used."""
    if len(loras) >= MAX_LORAS:
        raise LoraError(f"at most {MAX_LORAS} LoRAs can be used at once; remove one first")
    problem = lora_file_problem(path)
    if problem:
        raise LoraError(problem)
    new = LoraChoice(os.path.abspath(os.fspath(path)), float(strength))
    if any(os.path.normcase(c.path) == os.path.normcase(new.path) for c in loras):
        raise LoraError(f"{new.name} is in the list already; change its strength there")
    result = (*loras, new)
    check_loras(result, check_files=False)
    return result


def relocated(loras: tuple[LoraChoice, ...], index: int, path: str | os.PathLike[str]) -> tuple[LoraChoice, ...]:
    """The list with one LoRA pointed at another file (moved or renamed since it was added), its
    place and strength kept; LoraError (one sentence) when the new file cannot be used."""
    if not 0 <= index < len(loras):
        raise LoraError("that LoRA is no longer in the list")
    problem = lora_file_problem(path)
    if problem:
        raise LoraError(problem)
    new = LoraChoice(os.path.abspath(os.fspath(path)), loras[index].strength)
    if any(i != index and os.path.normcase(c.path) == os.path.normcase(new.path) for i, c in enumerate(loras)):
        raise LoraError(f"{new.name} is in the list already; remove this one instead")
    return tuple(new if i == index else c for i, c in enumerate(loras))


def removed(loras: tuple[LoraChoice, ...], index: int) -> tuple[LoraChoice, ...]:
    return tuple(c for i, c in enumerate(loras) if i != index)


def with_strength(loras: tuple[LoraChoice, ...], index: int, strength: float) -> tuple[LoraChoice, ...]:
    """The list with one strength changed (clamped into -4..4, two decimals)."""
    value = round(min(max(float(strength), -MAX_LORA_STRENGTH), MAX_LORA_STRENGTH), 2)
    return tuple(LoraChoice(c.path, value) if i == index else c for i, c in enumerate(loras))


def missing_files(loras: tuple[LoraChoice, ...]) -> str | None:
    """A sentence about the first LoRA that is no longer there to read (checked at Generate), or None."""
    for choice in loras:
        problem = choice.problem(check_file=True)
        if problem:
            return problem
    return None


def describe(loras: tuple[LoraChoice, ...]) -> str:
    """The LoRAs in a few words: "style.safetensors x0.8, motion.safetensors x1"."""
    return ", ".join(f"{c.name} x{c.strength:g}" for c in loras)


def is_missing(choice: LoraChoice) -> bool:
    """The file is no longer where it was added (moved, renamed, deleted, or its drive is gone)."""
    return not os.path.isfile(choice.path)


__all__ = ["added", "describe", "is_missing", "lora_file_problem", "missing_files", "relocated", "removed",
           "with_strength"]
