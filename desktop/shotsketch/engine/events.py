"""Typed job events, emitted by the Generator on its worker thread and handled in one `match`."""

from __future__ import annotations

import threading
from collections.abc import Mapping
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
    latents: object | None = field(default=None, compare=False, repr=False)  # the normalized latents (a tensor)
    heatmaps: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    """Layout guidance: each subject's attention map, float32 [latent frames, rows, columns]."""
    adherence: Mapping[str, float] = field(default_factory=dict, compare=False)
    """Layout guidance: each subject's share of attention inside its boxes (0..1)."""
    guidance: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Layout guidance as applied (enabled, strength, subjects, missing names); empty without a sketch."""

    @property
    def extras(self) -> dict[str, Any]:
        """The layout-guidance fields as one mapping, for callers written before they were typed."""
        return {k: v for k, v in (("guidance", self.guidance), ("heatmaps", self.heatmaps),
                                  ("adherence", self.adherence)) if v}


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


@dataclass(frozen=True)
class ModelLoaded:
    """The GPU worker loaded the model (not a job's event: the worker sends it once per load)."""

    schedule: tuple[int, ...] | None = None
    """A step-distilled model's own timesteps (the Generator's ``schedule``, e.g. DMD's 1000 / 757 / 522):
    its jobs run these steps without classifier-free guidance, whatever steps and guidance they ask
    for. None: an ordinary model, the request's steps and guidance are used."""

    @property
    def distilled(self) -> bool:
        return bool(self.schedule)


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
