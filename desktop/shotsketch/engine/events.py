"""Typed job events, emitted by the Generator on its worker thread and handled in one `match`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from shotsketch.engine.requests import GenerationRequest


@dataclass(frozen=True)
class JobStarted:
    job_id: str
    request: GenerationRequest
    total_steps: int


@dataclass(frozen=True)
class JobStep:
    job_id: str
    step: int  # 1-based: steps done so far
    total_steps: int
    elapsed_s: float
    eta_s: float | None
    preview: np.ndarray | None = field(default=None, compare=False)  # uint8 [h, w, 3], small


@dataclass(frozen=True)
class JobFinished:
    job_id: str
    frames: np.ndarray = field(compare=False)  # uint8 [count, height, width, 3]
    recipe: dict[str, Any] = field(compare=False)
    latents: Any = field(default=None, compare=False, repr=False)
    extras: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class JobFailed:
    job_id: str
    message: str  # one sentence a person can act on
    detail: str = ""  # for the log
    suggestion: str | None = None


@dataclass(frozen=True)
class JobCancelled:
    job_id: str
    at_step: int


JobEvent = Union[JobStarted, JobStep, JobFinished, JobFailed, JobCancelled]
FinalEvent = Union[JobFinished, JobFailed, JobCancelled]


class CancelToken:
    """Cooperative cancel: the engine checks it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
