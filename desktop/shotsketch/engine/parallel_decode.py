"""The decode after a multi-GPU denoise: rank 0 decodes and hands the frames to the app.

(Every rank ends the denoise with the same latents; only rank 0's frames leave the worker.)
"""

from __future__ import annotations

import numpy as np
import torch

from shotsketch.engine.generator import Generator


def decode_on_ranks(generator: Generator, latents: torch.Tensor) -> np.ndarray:
    """uint8 frames [count, height, width, 3] on rank 0; an empty array on the other ranks."""
    ranks = generator.ranks  # type: ignore[attr-defined]
    if ranks.is_first:
        return Generator.decode(generator, latents)
    return np.zeros((0, 0, 0, 3), dtype=np.uint8)
