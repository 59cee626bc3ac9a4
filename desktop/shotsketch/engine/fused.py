"""Fused steps of the transformer blocks on CUDA: fewer passes over memory, the same functions.

1. The feed-forward's first projection and its tanh GELU as one matrix product.

Each transformer block's feed-forward starts with `GELU(Linear(x))` into 14,336 channels. Stock
writes the product to memory, then reads it back for the GELU: at 720p that is 27,280 x 14,336
values there and back, 60 times a step (~34 ms of a 1.6 s step), and ~5% of a preview step.
cuBLASLt can apply the bias and the tanh GELU in the product's epilogue, while the float32
accumulators are still in registers (`torch._addmm_activation`); the result is the same function,
rounded to bf16 once instead of twice.

The op is a `torch.library` custom op so that torch.compile keeps it whole (inductor would
otherwise split it back into a product and a separate GELU kernel). Off CUDA, or for a projection
that is no plain `nn.Linear` (fast mode's FP8 copies), the stock code runs.

2. The self-attention's query/key RMS norm and rotary embedding as one Triton kernel (`rms_rope`):
each token's 3,072 values are read once, normalized, rounded to bf16 as the stock norm's output is,
rotated in float32 and written once, already in the [batch, tokens, heads, 128] layout the
attention kernel reads. Inductor's own fusion of these ops ran at about a third of the memory
bandwidth (45 ms of a 720p step, bench run 17).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from diffusers.models.activations import GELU

log = logging.getLogger(__name__)
_rope_kernel = None
_rope_failed = False  # a launch failed once (no compiler, an old GPU): PyTorch ops from then on


@torch.library.custom_op("shotsketch::linear_gelu_tanh", mutates_args=())
def linear_gelu_tanh(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """gelu(x @ weight.T + bias, approximate="tanh")."""
    if not x.is_cuda:
        return F.gelu(F.linear(x, weight, bias), approximate="tanh")
    flat = x.reshape(-1, x.shape[-1])
    # on CUDA, use_gelu is the tanh approximation, applied in cuBLASLt's epilogue
    out = torch._addmm_activation(bias, flat, weight.t(), use_gelu=True)
    return out.view(*x.shape[:-1], weight.shape[0])


@linear_gelu_tanh.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


class FusedTanhGELU(GELU):
    """diffusers' GELU module with the product and the activation in one call where it can."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        proj = self.proj
        if (hidden_states.is_cuda and self.approximate == "tanh" and type(proj) is torch.nn.Linear
                and proj.bias is not None and proj.weight.device == hidden_states.device):
            return torch.ops.shotsketch.linear_gelu_tanh(hidden_states, proj.weight, proj.bias)
        return super().forward(hidden_states)


def fuse_feed_forward(transformer: torch.nn.Module) -> int:
    """Switch the blocks' tanh-GELU projections to `FusedTanhGELU` (same module, same weights and
    names; only the class changes). Returns how many."""
    count = 0
    for module in getattr(transformer, "blocks", torch.nn.ModuleList()).modules():
        if type(module) is GELU and module.approximate == "tanh":
            module.__class__ = FusedTanhGELU
            count += 1
    return count


def unfuse_feed_forward(transformer: torch.nn.Module) -> None:
    for module in transformer.modules():
        if type(module) is FusedTanhGELU:
            module.__class__ = GELU


def rotate(hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The rotary embedding as diffusers' WanAttnProcessor applies it (interleaved pairs)."""
    x1, x2 = hidden.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(hidden)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(hidden)


def _rope_triton():  # noqa: ANN202
    global _rope_kernel
    if _rope_kernel is not None:
        return _rope_kernel
    import triton
    import triton.language as tl

    @triton.jit
    def rms_rope_kernel(x_ptr, w_ptr, cos_ptr, sin_ptr, out_ptr, seq, eps, D: tl.constexpr, HEAD: tl.constexpr,
                        BLOCK: tl.constexpr):
        row = tl.program_id(0)  # one token of one sample
        pos = row % seq
        p = tl.arange(0, BLOCK)  # pair index: values 2p and 2p+1
        mask = p < D // 2
        base = x_ptr + row.to(tl.int64) * D
        xe = tl.load(base + 2 * p, mask=mask, other=0.0).to(tl.float32)
        xo = tl.load(base + 2 * p + 1, mask=mask, other=0.0).to(tl.float32)
        r = tl.rsqrt((tl.sum(xe * xe, axis=0) + tl.sum(xo * xo, axis=0)) / D + eps)
        we = tl.load(w_ptr + 2 * p, mask=mask, other=0.0).to(tl.float32)
        wo = tl.load(w_ptr + 2 * p + 1, mask=mask, other=0.0).to(tl.float32)
        # the stock norm's output is bf16/fp16: round there, as it does
        ye = (xe * r * we).to(out_ptr.dtype.element_ty).to(tl.float32)
        yo = (xo * r * wo).to(out_ptr.dtype.element_ty).to(tl.float32)
        j = (2 * p) % HEAD
        c = tl.load(cos_ptr + pos * HEAD + j, mask=mask, other=0.0).to(tl.float32)
        s = tl.load(sin_ptr + pos * HEAD + j + 1, mask=mask, other=0.0).to(tl.float32)
        out = out_ptr + row.to(tl.int64) * D
        tl.store(out + 2 * p, (ye * c - yo * s).to(out_ptr.dtype.element_ty), mask=mask)
        tl.store(out + 2 * p + 1, (ye * s + yo * c).to(out_ptr.dtype.element_ty), mask=mask)

    _rope_kernel = rms_rope_kernel
    return _rope_kernel


@torch.library.custom_op("shotsketch::rms_rope", mutates_args=())
def rms_rope(x: torch.Tensor, weight: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, eps: float,
             heads: int) -> torch.Tensor:
    """rotate(rms_norm(x) * weight) for x [batch, tokens, heads * head_dim] and the rotary
    embedding's cos/sin [1, tokens, 1, head_dim]: [batch, tokens, heads, head_dim]. The kernel rotates
    in float32 (the model's cos/sin are bf16 once it is cast: stock eager rounds each product to bf16,
    compiled code does not; both are within bf16 rounding of the exact rotation)."""
    global _rope_failed
    b, n, d = x.shape
    head = d // heads
    if (x.is_cuda and not _rope_failed and x.dtype in (torch.bfloat16, torch.float16) and x.is_contiguous()
            and cos.is_floating_point() and cos.numel() == n * head and sin.shape == cos.shape):
        try:
            out = torch.empty((b, n, heads, head), device=x.device, dtype=x.dtype)
            block = 1 << (d // 2 - 1).bit_length()  # the pairs, rounded up to a power of two
            _rope_triton()[(b * n,)](x, weight.contiguous(), cos.reshape(n, head).contiguous(),
                                     sin.reshape(n, head).contiguous(), out, n, eps, D=d, HEAD=head, BLOCK=block,
                                     num_warps=8)
            return out
        except Exception:  # noqa: BLE001 - no Triton, no compiler, an unsupported GPU: PyTorch ops
            log.warning("the fused norm + rotary kernel failed; using PyTorch ops", exc_info=True)
            _rope_failed = True
    y = F.rms_norm(x, (d,), weight, eps).unflatten(2, (heads, head))
    return rotate(y, cos, sin)


@rms_rope.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, eps: float,
      heads: int) -> torch.Tensor:
    return x.new_empty((x.shape[0], x.shape[1], heads, x.shape[2] // heads))
