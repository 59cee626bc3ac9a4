"""The feed-forward's first projection and its tanh GELU as one matrix product on CUDA.

Each transformer block's feed-forward starts with `GELU(Linear(x))` into 14,336 channels. Stock
writes the product to memory, then reads it back for the GELU: at 720p that is 27,280 x 14,336
values there and back, 60 times a step (~34 ms of a 1.6 s step), and ~5% of a preview step.
cuBLASLt can apply the bias and the tanh GELU in the product's epilogue, while the float32
accumulators are still in registers (`torch._addmm_activation`); the result is the same function,
rounded to bf16 once instead of twice.

The op is a `torch.library` custom op so that torch.compile keeps it whole (inductor would
otherwise split it back into a product and a separate GELU kernel). Off CUDA, or for a projection
that is no plain `nn.Linear` (fast mode's FP8 copies), the stock code runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.activations import GELU


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
                and proj.bias is not None):
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
