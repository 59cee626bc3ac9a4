"""Speed levers of the exact mode (results within bf16 tolerance of the stock pipeline).

- uniform timestep: in text-to-video every token of the Wan2.2 TI2V-5B has the same timestep, but
  with `expand_timesteps` the pipeline hands the transformer one timestep per token (27,280 at
  720p), so the time embedding and each block's modulation run per token. A forward pre-hook on
  the transformer (no library code patched) passes the one shared timestep instead; the
  transformer then takes its per-sample path, which computes the same values once.
- regional compile: `compile_repeated_blocks(fullgraph=True)` with a persistent inductor cache in
  the app's cache dir, so a second start does not pay the warm-up again.
- VAE decode in bf16 with cuDNN autotuning (its error against float32 is reported in the bench).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpeedOptions:
    uniform_timestep: bool = True
    compile: bool = False  # regional torch.compile of the transformer blocks (CUDA only; first call ~15 s)
    vae_bf16: bool = True  # CUDA only: 0.61x the float32 decode time, mean error 0.004 of the 2.0 range
    cudnn_benchmark: bool = True


from shotsketch.engine.requests import FAST_MODE_STEPS  # noqa: E402,F401 - re-exported


def channels_last_convs(module: torch.nn.Module) -> None:
    """3D convolutions in channels-last layout: faster cuDNN kernels for the VAE decode in bf16."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.to(memory_format=torch.channels_last_3d)


@contextlib.contextmanager
def uniform_timestep(transformer: torch.nn.Module) -> Iterator[None]:
    def pre_hook(_module, args, kwargs):  # noqa: ANN001, ANN202
        ts = kwargs.get("timestep")
        if ts is not None and ts.ndim == 2:
            kwargs = dict(kwargs, timestep=ts[:, 0].contiguous())
            return args, kwargs
        return None

    handle = transformer.register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def enable_compile_cache() -> str:
    """Point inductor's on-disk caches at the app's cache dir (kept across app starts)."""
    from shotsketch.core.paths import cache_dir

    folder = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
    os.makedirs(folder, exist_ok=True)
    try:
        import torch._inductor.config as inductor_config

        inductor_config.fx_graph_cache = True
        inductor_config.autotune_local_cache = True
    except (ImportError, AttributeError):
        pass
    return folder
