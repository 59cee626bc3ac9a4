"""The text's cross-attention keys and values, computed once per job instead of at every step.

In every block the cross-attention projects the same 512 text tokens at every step of a job: key
norm_k(to_k(text)) and value to_v(text), two [512 x 3072] x [3072 x 3072] products per block and
prompt row (a preview's CFG batch: ~1.2 TFLOP a step over the 30 blocks). They depend only on the
prompt embeddings and the weights, so a forward hook on the transformer's text embedder (outside
the compiled blocks, as layout guidance's `prepare`) computes them once per job and distinct prompt
tensor (the prompt's, the negative's, or the CFG batch of both) from the embedder's output with the
blocks' own modules, and puts them in a slot per block; each block's cross-attention processor
(`engine/guidance.py` `LayoutAttnProcessor`, the same one that applies a sketch) reads its slot
instead of projecting. The values are the ones the block would compute (the same modules on the
same input; FP8 layers too while fast mode swaps them in), and the slots always hold tensors of
one shape per kind of job, so the compiled blocks see no new guards.

diffusers 0.42.1 has an exact text K/V cache (`diffusers.hooks.apply_text_kv_cache`), but only for
NucleusMoE-Image blocks (it reads their `encoder_proj`/`add_k_proj` and passes the cache through
`attention_kwargs`, which Wan's blocks do not take), so it does not apply to WanTransformer3DModel.

The cache lives for one job (`TextKV` is also a Generator attention hook: emptied when a job starts
and ends, so a LoRA fused between jobs is seen) and is skipped where the weights are not on the
activations' device (offloading plans move them only when the block runs), under a leaner memory
plan, and for jobs of many video tokens (720p: the projections are well under 0.1% of its step):
the processor then projects as usual. SHOTSKETCH_TEXT_KV=0 turns it off at install.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch

from shotsketch.engine.memory import TEXT_KV_MAX_TOKENS

log = logging.getLogger(__name__)

ENV = "SHOTSKETCH_TEXT_KV"
# jobs of at most this many video tokens (the 480x832x17 preview has 1,950) use the cache; the memory
# planner counts the cache for the same jobs
MIN_TOKENS = TEXT_KV_MAX_TOKENS


class KVSlot:
    """One block's cached text key and value ([batch, L, heads, head_dim]), or None: project as usual."""

    __slots__ = ("key", "value")

    def __init__(self) -> None:
        self.key: torch.Tensor | None = None
        self.value: torch.Tensor | None = None


def text_kv(attn: torch.nn.Module, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What `WanAttnProcessor` computes from the text for the cross-attention: normed key, value,
    each [batch, L, heads, head_dim]."""
    if getattr(attn, "fused_projections", False):
        key, value = attn.to_kv(text).chunk(2, dim=-1)
    else:
        key, value = attn.to_k(text), attn.to_v(text)
    key = attn.norm_k(key)
    return key.unflatten(2, (attn.heads, -1)), value.unflatten(2, (attn.heads, -1))


def _on_device(attn: torch.nn.Module, device: torch.device) -> bool:
    layers = [getattr(attn, n, None) for n in (("to_kv",) if getattr(attn, "fused_projections", False) else ("to_k", "to_v"))]
    weights = [p for m in layers if m is not None for p in m.parameters(recurse=False)]
    return bool(weights) and all(p.device == device and not p.is_meta for p in weights)


class TextKV:
    """The per-job cache of every block's text keys and values, filled by a hook on the text embedder."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.transformer = transformer
        self.blocks = list(getattr(transformer, "blocks", []))
        self.slots = [KVSlot() for _ in self.blocks]
        self._cache: dict[tuple, tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]] = {}
        self._handle = None
        self.stats = {"computed": 0, "reused": 0, "skipped": 0}
        # `install_for`: whether the generator's memory plan has room for it now, and whether a job's
        # size is worth it (previews: the projections are a few percent of their short forwards; at
        # 720p well under 0.1% of a step, for ~380 MB of cache). Outside jobs (the warm-up) it is on.
        self.allowed = lambda: True
        self.worth = lambda request: True
        self.on = True

    # ------------------------------------------------------------------ the hook
    def text_hook(self, module: torch.nn.Module, args: tuple, text: torch.Tensor) -> None:
        """Forward hook of the transformer's text embedder: `args[0]` is the prompt tensor of the
        forward that really runs (CFG's batch of two where `engine/speed.py batched_cfg` made one),
        `text` what the blocks get as encoder_hidden_states."""
        ehs = args[0] if args else None
        if ehs is None or not isinstance(text, torch.Tensor) or not (self.on and self.allowed()):
            self._clear_slots()
            return
        key = (ehs.data_ptr(), tuple(ehs.shape), tuple(ehs.stride()), ehs.dtype, ehs.device)
        entry = self._cache.get(key)
        if entry is None or entry[0] is not ehs:  # the cache keeps the tensor alive: its address stays its own
            kvs = self._compute(text)
            if kvs is None:
                self.stats["skipped"] += 1
                self._clear_slots()
                return
            entry = self._cache[key] = (ehs, kvs)
            self.stats["computed"] += 1
        else:
            self.stats["reused"] += 1
        for slot, (k, v) in zip(self.slots, entry[1]):
            slot.key, slot.value = k, v

    def _compute(self, text: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        attns = [block.attn2 for block in self.blocks]
        if not attns or any(a.add_k_proj is not None or not _on_device(a, text.device) for a in attns):
            return None
        with torch.inference_mode():
            return [text_kv(a, text) for a in attns]

    def _clear_slots(self) -> None:
        for slot in self.slots:
            slot.key = slot.value = None

    def clear(self) -> None:
        self._cache.clear()
        self._clear_slots()

    # ------------------------------------------------------------------ the Generator attention hook
    @contextlib.contextmanager
    def __call__(self, generator: Any, request: Any, extras: dict[str, Any]) -> Iterator[None]:  # noqa: ARG002
        self.clear()  # weights may have changed since (a LoRA fused), and the last job's prompts are gone
        self.on = bool(self.worth(request))
        try:
            yield
        finally:
            self.on = True
            self.clear()

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.clear()


def video_tokens(request: Any) -> int:
    from shotsketch.engine.guidance import TOKEN_STRIDE, latent_frame_count

    return latent_frame_count(request.frames) * (request.height // TOKEN_STRIDE) * (request.width // TOKEN_STRIDE)


def wanted() -> bool:
    """On unless SHOTSKETCH_TEXT_KV=0: the same outputs (tests), and on an H100 a preview took 0.97x
    the time without it, guided or not (bench/RESULTS.md session 7, `bench/run.py --cases guided_preview`)."""
    from shotsketch.engine.speed import switched_off

    return not switched_off(ENV)


def install(transformer: torch.nn.Module) -> TextKV | None:
    """Put a `LayoutAttnProcessor` reading its block's slot on every block's cross-attention and the
    hook that fills the slots on the transformer's text embedder. Returns the cache (also a Generator attention
    hook), or None where the model has no such blocks."""
    from shotsketch.engine.guidance import LayoutAttnProcessor

    blocks = list(getattr(transformer, "blocks", []))
    embedder = getattr(getattr(transformer, "condition_embedder", None), "text_embedder", None)
    if embedder is None or not blocks or not all(hasattr(getattr(b, "attn2", None), "set_processor") for b in blocks):
        return None
    previous = getattr(transformer, "_shotsketch_text_kv", None)
    if previous is not None:
        previous.remove()
    cache = TextKV(transformer)
    for block, slot in zip(blocks, cache.slots):
        proc = block.attn2.processor
        if isinstance(proc, LayoutAttnProcessor):
            proc.kv = slot
        else:
            new = LayoutAttnProcessor(kv=slot)
            new._attention_backend = getattr(proc, "_attention_backend", None)
            block.attn2.set_processor(new)
    cache._handle = embedder.register_forward_hook(cache.text_hook)
    transformer._shotsketch_text_kv = cache
    return cache


def install_for(generator: Any) -> TextKV | None:
    """The generator's transformer gets the cache, and the generator the per-job hook (an earlier
    one of this generator replaced), where the memory plan keeps the transformer on its device
    (the cache holds ~380 MB for the full-size model: 30 blocks x key and value x [2, 512, 3072]
    bf16; offloading plans are the lean ones), for jobs of few video tokens (`MIN_TOKENS` or the
    CFG batching limit, whichever is larger), where SHOTSKETCH_TEXT_KV does not turn it off. Call it after the processors are set and before the
    blocks first run compiled (Generator._apply_speed_options, before _apply_compile)."""
    from shotsketch.engine.memory import MemoryPlan

    plans = (MemoryPlan.ALL_ON_GPU, MemoryPlan.TEXT_ENCODER_OFFLOAD, MemoryPlan.CPU)
    hooks = generator.attention_hooks
    hooks[:] = [h for h in hooks if not isinstance(h, TextKV)]
    if not wanted() or generator.memory_plan not in plans:
        return None
    cache = install(generator._pipe.transformer)
    if cache is not None:
        cache.allowed = lambda: generator.memory_plan in plans  # a later replan to a leaner plan turns it off
        cache.worth = lambda request: video_tokens(request) <= max(MIN_TOKENS, generator.speed.batch_cfg_max_tokens)
        hooks.append(cache)
    return cache


def uninstall(transformer: torch.nn.Module) -> None:
    """Back to projecting in the blocks (the processors stay; their slots are detached)."""
    from shotsketch.engine.guidance import LayoutAttnProcessor

    cache = getattr(transformer, "_shotsketch_text_kv", None)
    if cache is not None:
        cache.remove()
        transformer._shotsketch_text_kv = None
    for block in getattr(transformer, "blocks", []):
        proc = getattr(getattr(block, "attn2", None), "processor", None)
        if isinstance(proc, LayoutAttnProcessor):
            proc.kv = None
