"""Device, dtype and memory plans.

A plan says which parts live on the GPU. Plans are ordered from fastest (most VRAM) to
leanest; on out-of-memory the engine suggests, or falls back to, the next one.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

import torch

GiB = 1024**3


class MemoryPlan(enum.Enum):
    ALL_ON_GPU = "gpu"
    TEXT_ENCODER_OFFLOAD = "text-encoder-offload"  # text encoder on the CPU once prompts are encoded
    MODEL_OFFLOAD = "model-offload"  # diffusers model CPU offload: one model on the GPU at a time
    GROUP_OFFLOAD = "group-offload"  # transformer blocks streamed to the GPU as they run
    CPU = "cpu"  # no GPU

    @property
    def label(self) -> str:
        return {
            MemoryPlan.ALL_ON_GPU: "everything on the GPU (fastest, most VRAM)",
            MemoryPlan.TEXT_ENCODER_OFFLOAD: "text encoder off the GPU after encoding",
            MemoryPlan.MODEL_OFFLOAD: "one model on the GPU at a time, VAE tiling",
            MemoryPlan.GROUP_OFFLOAD: "transformer blocks streamed from system RAM, VAE tiling (leanest)",
            MemoryPlan.CPU: "CPU only",
        }[self]

    @property
    def vae_tiling(self) -> bool:
        # With the text encoder off the GPU, a 720p clip decodes untiled in ~6 GiB (engine/vae_decode.py);
        # should it not fit, that one decode falls back to tiles (Generator.decode).
        return self in (MemoryPlan.MODEL_OFFLOAD, MemoryPlan.GROUP_OFFLOAD)

    def leaner(self) -> "MemoryPlan | None":
        order = [MemoryPlan.ALL_ON_GPU, MemoryPlan.TEXT_ENCODER_OFFLOAD, MemoryPlan.MODEL_OFFLOAD, MemoryPlan.GROUP_OFFLOAD]
        if self not in order or self is order[-1]:
            return None
        return order[order.index(self) + 1]


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype
    name: str
    total_bytes: int | None = None
    free_bytes: int | None = None


def gpu_memory_budget() -> int | None:
    """SHOTSKETCH_GPU_MEMORY_GIB caps the VRAM Shotsketch plans for (and, on CUDA, may use)."""
    text = os.environ.get("SHOTSKETCH_GPU_MEMORY_GIB", "").strip()
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return int(value * GiB) if value and value > 0 else None


def pick_device(prefer: str | None = None) -> DeviceChoice:
    """CUDA in bfloat16 where present, then MPS, else CPU in float32; `prefer` overrides."""
    if prefer in (None, "cuda") and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        budget = gpu_memory_budget()
        if budget is not None:  # "use at most N GiB": another app needs the rest, or a smaller card is emulated
            free, total = min(free, budget), min(total, budget)
        return DeviceChoice("cuda", torch.bfloat16, torch.cuda.get_device_name(), total, free)
    mps = getattr(torch.backends, "mps", None)
    if prefer in (None, "mps") and mps is not None and mps.is_available():
        return DeviceChoice("mps", torch.bfloat16, "Apple GPU (MPS)")
    return DeviceChoice("cpu", torch.float32, "CPU")


def choose_plan(device: DeviceChoice, *, demo: bool = False) -> MemoryPlan:
    """The fastest plan that fits the free VRAM of the real TI2V-5B (bf16 weights: transformer 10 GiB,
    UMT5-XXL text encoder 11 GiB, VAE 1.4 GiB; activations and the VAE decode on top)."""
    if device.device == "cpu":
        return MemoryPlan.CPU
    if demo or device.free_bytes is None:
        return MemoryPlan.ALL_ON_GPU
    free = device.free_bytes
    if free >= 44 * GiB:
        return MemoryPlan.ALL_ON_GPU
    if free >= 22 * GiB:
        return MemoryPlan.TEXT_ENCODER_OFFLOAD
    if free >= 14 * GiB:
        return MemoryPlan.MODEL_OFFLOAD
    return MemoryPlan.GROUP_OFFLOAD
