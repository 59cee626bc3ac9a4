"""Speed levers of the exact mode (results within bf16 tolerance of the stock pipeline).

- uniform timestep: in text-to-video every token of the Wan2.2 TI2V-5B has the same timestep, but
  with `expand_timesteps` the pipeline hands the transformer one timestep per token (27,280 at
  720p), so the time embedding and each block's modulation run per token. A forward pre-hook on
  the transformer (no library code patched) passes the one shared timestep instead; the
  transformer then takes its per-sample path, which computes the same values once.
- regional compile: `compile_repeated_blocks(fullgraph=True)` with a persistent inductor cache in
  the app's cache dir, so a later start pays ~6 s of tracing instead of ~20 s (bench/RESULTS.md),
  and the app does even that while the user writes the first prompt (`Generator.warm_up`, which also
  builds the blocks' variant for a preview with a sketch). Layout guidance keeps the blocks whole
  (engine/guidance.py records into preallocated tensors), so guided and unguided jobs compile once
  each; a compile that fails runs that one job uncompiled (`eager_blocks`), the next compiles again.
- CFG as one batch-2 forward for short forwards (previews): `batched_cfg` below.
- VAE decode in bf16 through `engine/vae_decode.py` (the same function as diffusers' decode with
  fewer bytes and products; its error against float32 is reported in the bench).
- UniPC steps with coefficients from the CPU (`engine/schedulers.py`): the loop never waits for the GPU.
- fused kernels (`engine/fused.py`): the feed-forward product + tanh GELU in one cuBLASLt call, the
  query/key RMS norm + rotary embedding in one Triton pass.
- FlashAttention-4 for the self-attention where the optional package is installed (`engine/attention.py`).
- prompts encoded over their own tokens and cached per text (`Generator.encode_prompts`).

Fast mode (chosen per request) adds FP8 matrix products in the transformer blocks (`engine/fp8.py`)
where the GPU has FP8 units and memory for the FP8 copy of the weights.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class SpeedOptions:
    uniform_timestep: bool = True
    # regional torch.compile of the transformer blocks: None = on where it can work (CUDA with Triton;
    # SHOTSKETCH_COMPILE=0/1 overrides). The first start ever pays ~20 s, later ones ~6 s of tracing
    # (bench/RESULTS.md, cold start), which the app spends in Generator.warm_up.
    compile: bool | None = None
    # torch.compile backend of the regional compile. "eager" (dynamo's tracing and guards, no code
    # generation) is what tests use to compile on a CPU: compile=True with it compiles there too.
    compile_backend: str = "inductor"
    vae_bf16: bool = True  # CUDA only: mean error 0.004 of the 2.0 range against a float32 decode
    cudnn_benchmark: bool = False  # the fast decode is as fast without (bench run 5), and new sizes skip tuning
    fast_decode: bool | None = None  # engine/vae_decode.py; None: on CUDA only (on the CPU the stock decode is faster)
    fp8_fast_mode: bool = True  # fast-mode requests run the transformer blocks' matrix products in FP8
    # self-attention kernel: None = FlashAttention-4 where installed and supported, else PyTorch's
    # ("flash4" / "sdpa" to choose; SHOTSKETCH_ATTENTION overrides): engine/attention.py
    attention: str | None = None
    fused_gelu: bool = True  # CUDA: feed-forward product + tanh GELU in one cuBLASLt call (engine/fused.py)
    fused_rope: bool = True  # CUDA: query/key RMS norm + rotary embedding in one Triton pass (engine/fused.py)
    host_scheduler: bool = True  # UniPC coefficients from the CPU: the loop never waits for the GPU (engine/schedulers.py)
    batch_cfg_max_tokens: int = 8192  # CFG as one batch-2 forward up to this many video tokens (0: never)


from shotsketch.engine.requests import FAST_MODE_STEPS  # noqa: E402,F401 - re-exported


STREAMED_CFG_BATCH_ENV = "SHOTSKETCH_STREAMED_CFG_BATCH"


def switched_off(env: str) -> bool:
    """A speed lever that is on by default, turned off with ENV=0 (or false, no, off)."""
    return os.environ.get(env, "").strip().lower() in ("0", "false", "no", "off")


def streamed_cfg_batch() -> bool:
    """CFG as one batch-2 forward while the transformer's blocks stream from system RAM (8-12 GiB
    cards): each block is copied to the GPU once a step instead of twice. On an H100 a streamed
    preview step took 0.31 s against 0.66 s (bench/RESULTS.md session 7). SHOTSKETCH_STREAMED_CFG_BATCH=0
    turns it off."""
    return not switched_off(STREAMED_CFG_BATCH_ENV)


def compile_wanted(option: bool | None, device: str, backend: str = "inductor") -> bool:
    if device != "cuda":
        return option is True and backend == "eager"  # tests: dynamo's tracing and guards on a CPU
    env = os.environ.get("SHOTSKETCH_COMPILE", "").strip().lower()
    if env in ("0", "1", "true", "false", "no", "yes", "off", "on"):
        return env in ("1", "true", "yes", "on")
    if option is not None:
        return option
    import importlib.util

    return importlib.util.find_spec("triton") is not None


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception, then its causes and contexts (each once)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_compile_error(exc: BaseException) -> bool:
    """An error from torch.compile's machinery (no C compiler, no Triton, an unsupported op), seen
    anywhere in the exception's chain: the model still runs uncompiled."""
    return any((type(e).__module__ or "").startswith(("torch._dynamo", "torch._inductor", "triton"))
               or "triton" in str(e).lower()[:2000] for e in exception_chain(exc))


@contextlib.contextmanager
def _blocks_calling(transformer: torch.nn.Module, impl_of: Callable[[torch.nn.Module], Any]) -> Iterator[None]:
    """Inside, each transformer block is called through `impl_of(block)` (None: uncompiled); its
    full-graph compile is back after."""
    blocks = list(getattr(transformer, "blocks", []))
    saved = [block._compiled_call_impl for block in blocks]
    for block in blocks:
        block._compiled_call_impl = impl_of(block)
    try:
        yield
    finally:
        for block, impl in zip(blocks, saved):
            block._compiled_call_impl = impl


def eager_blocks(transformer: torch.nn.Module) -> contextlib.AbstractContextManager[None]:
    """The transformer blocks run uncompiled inside, compiled again after (one job's fallback)."""
    return _blocks_calling(transformer, lambda _block: None)


STREAMED_COMPILE_ENV = "SHOTSKETCH_STREAMED_COMPILE"


def streamed_compile() -> bool:
    """The plan that streams the blocks (diffusers' offloading hooks on them) compiles them with graph
    breaks allowed: the hook's copy runs eagerly, the block's own forward is compiled. Measured on a
    12 GiB card (bench/RESULTS.md session 9): the 720p step 2.19 s against 2.48 s uncompiled.
    SHOTSKETCH_STREAMED_COMPILE=0 runs that plan's blocks uncompiled."""
    return not switched_off(STREAMED_COMPILE_ENV)


def blocks_compiled_through_hooks(transformer: torch.nn.Module, backend: str) -> contextlib.AbstractContextManager[None]:
    """Inside, each block runs through a compile that allows graph breaks (kept on the block for the
    next such job); the full-graph compile is back after."""
    def loose(block: torch.nn.Module) -> Any:
        if getattr(block, "_shotsketch_loose_compile", None) is None:
            block._shotsketch_loose_compile = torch.compile(block._call_impl, fullgraph=False, backend=backend)
        return block._shotsketch_loose_compile

    return _blocks_calling(transformer, loose)


def is_recompile_limit(exc: BaseException) -> bool:
    """The compiled blocks met more distinct inputs than dynamo keeps compiled versions of."""
    return any("recompile" in type(e).__name__.lower() or "recompile limit" in str(e).lower()[:500]
               for e in exception_chain(exc))


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


@contextlib.contextmanager
def batched_cfg(transformer: torch.nn.Module, cond: torch.Tensor, uncond: torch.Tensor) -> Iterator[dict]:
    """Run the pipeline's two classifier-free-guidance forwards as one batch-2 forward.

    WanPipeline calls the transformer with the prompt embeddings and then, on the same latents and
    timestep, with the negative ones. While this is active the first call computes both rows at
    once and the second returns the stored row; any other call runs unchanged. Worth it where the
    forwards are short (previews: fewer launches, fuller kernels); at 720p it gains nothing and
    doubles the activations. Yields counters {"batched": n} for tests and benchmarks."""
    both = torch.cat([cond, uncond])
    pending: dict = {}
    stats = {"batched": 0}

    def key(hs: torch.Tensor, ts: torch.Tensor | None) -> tuple:
        # the pipeline passes the same latents tensor to both calls of a step (the timestep may be
        # a fresh tensor of the same values: the uniform-timestep hook makes one per call)
        return (hs.data_ptr(), tuple(hs.shape), None if ts is None else tuple(ts.shape))

    def forward(original, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        hs, ts, ehs = (kwargs.get(n) for n in ("hidden_states", "timestep", "encoder_hidden_states"))
        if args or hs is None or ehs is None or hs.shape[0] != 1:
            return original(*args, **kwargs)
        return_dict = kwargs.get("return_dict", True)
        if ehs.data_ptr() == uncond.data_ptr() and pending.get("key") == key(hs, ts):
            out = pending.pop("out")
            pending.clear()
        elif ehs.data_ptr() == cond.data_ptr() and ehs.shape == cond.shape:
            kw = dict(kwargs, hidden_states=torch.cat([hs, hs]), encoder_hidden_states=both.to(ehs.dtype),
                      return_dict=False)
            if ts is not None:
                kw["timestep"] = torch.cat([ts, ts])
            pair = original(**kw)[0]
            out, pending["out"] = pair[:1], pair[1:]
            pending["key"] = key(hs, ts)
            stats["batched"] += 1
        else:
            return original(*args, **kwargs)
        if return_dict:
            from diffusers.models.modeling_outputs import Transformer2DModelOutput

            return Transformer2DModelOutput(sample=out)
        return (out,)

    with wrapping_forward(transformer, forward):
        yield stats


@contextlib.contextmanager
def wrapping_forward(module: torch.nn.Module, wrapper: Callable[..., Any]) -> Iterator[None]:
    """`wrapper(inner, *args, **kwargs)` as the module's forward for a while; `inner` is the forward
    underneath it.

    diffusers' hooks live in a forward set on the instance (group offloading's onload of the modules
    outside the blocks), and a hook can take itself out of that chain during a forward: the lazy
    prefetch of streamed blocks does, after the first forward has shown the blocks' order, and sets
    the rest of the chain as the instance's forward, over this wrapper. So after each call the
    wrapper goes back on over whatever forward is there now, and at the end that forward stays
    (the class's own where there was none): never the chain from before, never a deleted hook."""
    state = {"own": module.__dict__.get("forward"), "inner": module.forward}

    def outer(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return wrapper(state["inner"], *args, **kwargs)
        finally:
            now = module.__dict__.get("forward")
            if now is not outer:  # the chain underneath changed during this call: wrap the new one
                state["own"] = now
                state["inner"] = now if now is not None else module.forward
                module.forward = outer

    module.forward = outer
    try:
        yield
    finally:
        if state["own"] is not None:
            module.forward = state["own"]
        else:
            module.__dict__.pop("forward", None)  # the class's forward again

