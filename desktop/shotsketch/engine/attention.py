"""The transformer's self-attention through FlashAttention-4 where it is installed.

At 720p the self-attention over 27,280 tokens is over half of a denoising step. PyTorch's fastest
kernel here is cuDNN's (bench/RESULTS.md); FlashAttention-4 (`pip install shotsketch[fast-attention]`,
the `flash-attn-4` package: CuTe DSL kernels for Hopper and Blackwell, compiled on first use) is
exact attention too: the same softmax(QK^T/sqrt(d))V in bf16 with float32 accumulation, so the
results stay within bf16 rounding of stock diffusers (the bench reports the error).

`FusedSelfAttnProcessor` computes what diffusers' `WanAttnProcessor` computes for self-attention
(projections, RMS norms, rotary embedding, output projection), with the query/key norm and rotary
embedding as one pass each (`engine/fused.py`, also used with PyTorch's attention on CUDA), and
hands the attention itself to the kernel; cross-attention (512 text tokens, a small share of the
step) and anything else runs the module's previous processor. It is installed with `set_processor` on each block's
`attn1` (no library code patched) and the kernel is a `torch.library` custom op, so the compiled
blocks treat it as one opaque call.

`SHOTSKETCH_ATTENTION=sdpa` keeps PyTorch's attention; `=flash4` asks for FlashAttention-4.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable

import torch

from shotsketch.engine.fused import rotate

log = logging.getLogger(__name__)

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # [B, S, H, D] -> [B, S, H, D]
FLASH4 = "flash4"
SDPA = "sdpa"
CUDNN = "cudnn"  # PyTorch's attention, cuDNN first, as one opaque call (opt-in: SHOTSKETCH_ATTENTION=cudnn)
FLASH4_ARCHES = (9, 10)  # Hopper, Blackwell datacenter parts: the kernels FlashAttention-4 ships


def flash4_installed() -> bool:
    try:
        return importlib.util.find_spec("flash_attn") is not None and importlib.util.find_spec("flash_attn.cute") is not None
    except (ImportError, ValueError):
        return False


def choose_attention(option: str | None, device: str) -> str:
    """`flash4` or `sdpa` for this device: the env var, then the option, then FlashAttention-4 on a
    GPU it supports where the package is installed."""
    want = os.environ.get("SHOTSKETCH_ATTENTION", "").strip().lower() or (option or "auto")
    if want not in (FLASH4, SDPA, CUDNN, "auto"):
        log.warning("unknown attention choice %r; using the default", want)
        want = "auto"
    if want == SDPA or device != "cuda" or not torch.cuda.is_available():
        return SDPA
    if want == CUDNN:
        if torch.cuda.get_device_capability()[0] >= 8:
            return CUDNN
        log.warning("cuDNN's attention asked for but this GPU is older than Ampere; using PyTorch's choice")
        return SDPA
    supported = torch.cuda.get_device_capability()[0] in FLASH4_ARCHES
    if not (supported and flash4_installed()):
        if want == FLASH4:
            log.warning("FlashAttention-4 asked for but %s; using PyTorch's attention",
                        "not installed" if supported else "this GPU is not a Hopper or Blackwell part")
        return SDPA
    return FLASH4


@torch.library.custom_op("shotsketch::flash4_attention", mutates_args=())
def flash4_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """softmax(QK^T / sqrt(d)) V over [batch, tokens, heads, head_dim] tensors, by FlashAttention-4."""
    from flash_attn.cute import flash_attn_func

    out = flash_attn_func(query.contiguous(), key.contiguous(), value.contiguous())
    return out[0] if isinstance(out, tuple) else out


@flash4_attention.register_fake
def _(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return query.new_empty((*query.shape[:-1], value.shape[-1]))


def _fusable_norm(norm: torch.nn.Module, x: torch.Tensor) -> bool:
    # (weights elsewhere than the activations: an offloading hook that moves them per module)
    return type(norm) is torch.nn.RMSNorm and norm.weight is not None and norm.weight.device == x.device


def _eps(norm: torch.nn.RMSNorm, x: torch.Tensor) -> float:
    return norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps


class FusedSelfAttnProcessor:
    """Self-attention of a `WanAttention` with the attention product by `attention`; every other
    call (cross-attention, masks, image keys) goes to `fallback`, the module's previous processor."""

    def __init__(self, attention: AttentionFn, fallback: Callable) -> None:
        self.attention = attention
        self.fallback = fallback

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):  # noqa: ANN001, ANN204
        if encoder_hidden_states is not None or attention_mask is not None or attn.add_k_proj is not None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
        if getattr(attn, "fused_projections", False):
            query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        else:
            query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if rotary_emb is not None and _fusable_norm(attn.norm_q, query) and _fusable_norm(attn.norm_k, key):
            # norm + rotary in one pass each (engine/fused.py)
            query, key = (torch.ops.shotsketch.rms_rope(t, norm.weight, *rotary_emb, _eps(norm, t), attn.heads)
                          for t, norm in ((query, attn.norm_q), (key, attn.norm_k)))
            value = value.unflatten(2, (attn.heads, -1))
        else:
            query, key = attn.norm_q(query), attn.norm_k(key)
            query, key, value = (t.unflatten(2, (attn.heads, -1)) for t in (query, key, value))
            if rotary_emb is not None:
                query, key = rotate(query, *rotary_emb), rotate(key, *rotary_emb)
        out = self.attention(query, key, value).flatten(2, 3).type_as(query)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def sdpa_bshd(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """PyTorch's attention (cuDNN's kernel on Hopper) over the [batch, tokens, heads, head_dim] layout,
    called as diffusers calls it."""
    out = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (query, key, value)))
    return out.transpose(1, 2)


@torch.library.custom_op("shotsketch::sdpa_cudnn_first", mutates_args=())
def sdpa_cudnn_first(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(QK^T * scale) V over [batch, tokens, heads, head_dim] tensors: PyTorch's attention with
    cuDNN's kernel first, called on the strided views as one opaque call in a compiled graph. Compiled
    in the open, the preview's cross-attention took 110 us against 53.8 us for cuDNN's kernel on its
    own (bench/RESULTS.md session 8, H100): inductor lays the inputs out again around it."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    with sdpa_kernel(order, set_priority=True):
        out = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (query, key, value)),
                                                               scale=scale)
    return out.transpose(1, 2).contiguous()


@sdpa_cudnn_first.register_fake
def _(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    return query.new_empty((*query.shape[:-1], value.shape[-1]))


# the kernel of SHOTSKETCH_ATTENTION=cudnn: opt-in, measured slower than PyTorch's choice compiled in the
# open (preview cross-attention 431 us against 128 us, bench/RESULTS.md session 9)
cudnn_bshd = sdpa_cudnn_first


def kernel_for(choice: str) -> AttentionFn:
    return {FLASH4: flash4_attention, CUDNN: cudnn_bshd}.get(choice, sdpa_bshd)


def install(transformer: torch.nn.Module, attention: AttentionFn) -> int:
    """Put `FusedSelfAttnProcessor` on every block's self-attention; returns how many."""
    count = 0
    for block in getattr(transformer, "blocks", []):
        module = getattr(block, "attn1", None)
        if module is None or not hasattr(module, "set_processor"):
            continue
        previous = module.processor
        if isinstance(previous, FusedSelfAttnProcessor):
            previous = previous.fallback
        module.set_processor(FusedSelfAttnProcessor(attention, previous))
        count += 1
    return count


def set_cross_kernel(transformer: torch.nn.Module, kernel: Callable | None) -> int:
    """The cross-attention call of every block whose processor takes a kernel (the layout processor
    engine/text_kv.py puts on each block) through `kernel(query, key, value, scale)` (None: diffusers'
    dispatch): the unguided call and the folded path's guided one."""
    count = 0
    for block in getattr(transformer, "blocks", []):
        proc = getattr(getattr(block, "attn2", None), "processor", None)
        if proc is not None and hasattr(proc, "kernel"):
            proc.kernel = kernel
            count += 1
    return count


def uninstall(transformer: torch.nn.Module) -> None:
    for block in getattr(transformer, "blocks", []):
        module = getattr(block, "attn1", None)
        if module is not None and isinstance(getattr(module, "processor", None), FusedSelfAttnProcessor):
            module.set_processor(module.processor.fallback)
    set_cross_kernel(transformer, None)


def enable_kernel_cache() -> None:
    """Keep FlashAttention-4's compiled kernels in the app's cache dir across starts (as inductor's)."""
    from shotsketch.core.paths import cache_dir

    folder = cache_dir() / "flash4"
    os.environ.setdefault("FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED", "1")
    os.environ.setdefault("FLASH_ATTENTION_CUTE_DSL_CACHE_DIR", str(folder))
    os.makedirs(os.environ["FLASH_ATTENTION_CUTE_DSL_CACHE_DIR"], exist_ok=True)


def is_kernel_error(exc: BaseException) -> bool:
    """An error raised inside FlashAttention-4 or the CuTe DSL (no kernel for this GPU, a failed
    build), or by cuDNN's attention, seen anywhere in the exception's chain: the job can run again
    with PyTorch's attention."""
    import traceback

    from shotsketch.engine.speed import exception_chain

    for e in exception_chain(exc):
        if (type(e).__module__ or "").startswith(("flash_attn", "cutlass", "tvm_ffi")):
            return True
        if isinstance(e, RuntimeError) and "cudnn" in str(e).lower() and "attention" in str(e).lower():
            return True  # cuDNN's attention has no plan for this shape or GPU
        for frame in traceback.extract_tb(e.__traceback__):
            path = frame.filename.replace("\\", "/")
            if "/flash_attn/" in path or "/cutlass/" in path or "/nvidia_cutlass_dsl/" in path:
                return True
    return False


def describe(device: str) -> str:
    """One line for `shotsketch doctor`: which self-attention kernel a job would use, and why."""
    if device != "cuda" or not torch.cuda.is_available():
        return "PyTorch's (no CUDA GPU)"
    choice = choose_attention(None, device)
    if choice == FLASH4:
        return "FlashAttention-4"
    if torch.cuda.get_device_capability()[0] not in FLASH4_ARCHES:
        return "PyTorch's (FlashAttention-4 needs a Hopper or Blackwell GPU)"
    if not flash4_installed():
        return "PyTorch's (pip install 'shotsketch[fast-attention]' adds FlashAttention-4: 720p steps ~10% faster)"
    return "PyTorch's (SHOTSKETCH_ATTENTION=sdpa)"
