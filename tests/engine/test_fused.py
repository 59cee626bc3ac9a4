"""engine/fused.py: the feed-forward's product + tanh GELU op and the module switch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.activations import GELU

from shotsketch.engine.demo import build_components
from shotsketch.engine.fused import FusedTanhGELU, fuse_feed_forward, linear_gelu_tanh, unfuse_feed_forward


def test_op_is_linear_then_tanh_gelu() -> None:
    gen = torch.Generator("cpu").manual_seed(0)
    x, w, b = torch.randn(2, 7, 16, generator=gen), torch.randn(40, 16, generator=gen), torch.randn(40, generator=gen)
    out = linear_gelu_tanh(x, w, b)
    torch.testing.assert_close(out, F.gelu(x @ w.T + b, approximate="tanh"))
    # the tanh form, not the exact erf GELU: the two differ by more than rounding
    assert not torch.allclose(out, F.gelu(x @ w.T + b), atol=1e-5)


def test_fuse_switches_the_blocks_gelu_modules_and_back() -> None:
    transformer = build_components(seed=2)["transformer"]
    names = dict(transformer.state_dict())
    n = fuse_feed_forward(transformer)
    assert n == len(transformer.blocks)
    assert all(type(b.ffn.net[0]) is FusedTanhGELU for b in transformer.blocks)
    assert transformer.state_dict().keys() == names.keys()  # same modules, same weights
    unfuse_feed_forward(transformer)
    assert all(type(b.ffn.net[0]) is GELU for b in transformer.blocks)


def test_fused_module_runs_the_stock_code_off_cuda_and_for_other_projections() -> None:
    torch.manual_seed(0)
    module = GELU(8, 12, approximate="tanh")
    x = torch.randn(3, 8)
    expected = module(x)
    module.__class__ = FusedTanhGELU
    torch.testing.assert_close(module(x), expected)
    calls = []
    module.proj = torch.nn.Sequential(module.proj)  # e.g. fast mode's FP8 copy in place of the Linear
    module.proj.register_forward_hook(lambda *a: calls.append(1))
    torch.testing.assert_close(module(x), expected)
    assert calls == [1]


def test_op_has_a_shape_function_for_compiled_graphs() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out = torch.ops.shotsketch.linear_gelu_tanh(torch.empty(2, 5, 16), torch.empty(40, 16), torch.empty(40))
    assert out.shape == (2, 5, 40)


def test_rms_rope_is_the_stock_norm_then_rotary_embedding() -> None:
    from shotsketch.engine.fused import rms_rope, rotate

    gen = torch.Generator("cpu").manual_seed(1)
    heads, head = 3, 8
    x = torch.randn(2, 5, heads * head, generator=gen)
    norm = torch.nn.RMSNorm(heads * head, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(heads * head, generator=gen) + 0.5)
    angles = torch.rand(1, 5, 1, head // 2, generator=gen) * 6
    cos = angles.cos().repeat_interleave(2, -1)
    sin = angles.sin().repeat_interleave(2, -1)
    expected = rotate(norm(x).unflatten(2, (heads, head)), cos, sin)
    out = rms_rope(x, norm.weight, cos, sin, 1e-6, heads)
    assert out.shape == (2, 5, heads, head)
    torch.testing.assert_close(out, expected)
    # a rotation keeps each pair's length: the check above is not of an identity
    assert not torch.allclose(out, norm(x).unflatten(2, (heads, head)), atol=1e-3)
