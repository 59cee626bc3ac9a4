"""Cancel inside the model: before each transformer block and before each VAE decode chunk.

Between denoising steps is too coarse at large sizes (one step, or the whole decode, can take
minutes on a CPU). The block check lives in the iteration over ``transformer.blocks`` — outside
the blocks that ``compile_repeated_blocks`` compiles, so no compiled graph sees it; on a GPU it
runs as the CPU queues each block, so a cancel stops the queue at once and the GPU finishes only
the work already queued.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from shotsketch.engine.events import CancelToken


class Interrupted(Exception):
    """The job was cancelled inside a forward or a decode. ``steps_done``: the whole steps run."""

    def __init__(self, steps_done: int = 0) -> None:
        super().__init__(f"cancelled after {steps_done} step(s)")
        self.steps_done = steps_done


_watched: weakref.WeakKeyDictionary[torch.nn.Module, CancelToken] = weakref.WeakKeyDictionary()


def check(module: torch.nn.Module) -> None:
    """Raise :class:`Interrupted` when the job watching ``module`` (a VAE decoder) was cancelled."""
    cancel = _watched.get(module)
    if cancel is not None and cancel.cancelled:
        raise Interrupted()


class _CheckedBlocks(torch.nn.ModuleList):
    """``transformer.blocks`` while a job runs: iterating checks the job's cancel before each block."""

    def __iter__(self) -> Iterator[torch.nn.Module]:
        cancel: CancelToken | None = self.__dict__.get("_cancel")
        for block in super().__iter__():
            if cancel is not None and cancel.cancelled:
                raise Interrupted()
            yield block


@contextmanager
def cancel_points(transformer: Any, vae: Any, cancel: CancelToken, steps: dict[str, int]) -> Iterator[None]:
    """While inside: cancel acts before the next transformer block and the next decode chunk,
    raising :class:`Interrupted` with ``steps["step"]`` whole steps done."""
    blocks = getattr(transformer, "blocks", None)
    checked = type(blocks) is torch.nn.ModuleList
    if checked:
        blocks.__class__ = _CheckedBlocks
        blocks.__dict__["_cancel"] = cancel
    decoder = getattr(vae, "decoder", None)
    handle = None
    if isinstance(decoder, torch.nn.Module):
        _watched[decoder] = cancel
        handle = decoder.register_forward_pre_hook(lambda module, _args: check(module))  # the stock decode: per chunk
    try:
        yield
    except Interrupted:
        raise Interrupted(steps.get("step", 0)) from None
    finally:
        if checked:
            blocks.__dict__.pop("_cancel", None)
            blocks.__class__ = torch.nn.ModuleList
        if handle is not None:
            handle.remove()
            _watched.pop(decoder, None)
