"""FP8 matrix products (fast mode): FP8Linear accuracy, row-wise scales, and FP8Swap on a tiny Wan transformer."""

import pytest
import torch
import torch.nn.functional as F
from diffusers import WanTransformer3DModel
from torch import nn

from shotsketch.engine import fp8
from shotsketch.engine.fp8 import FP8Linear, FP8Swap, eligible, fp8_supported


def _rel(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.float() - ref.float()).norm() / ref.float().norm()).item()


def _linear(in_f: int, out_f: int, *, bias: bool = True, dtype: torch.dtype = torch.float32,
            seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(in_f, out_f, bias=bias).to(dtype)


# ---------------------------------------------------------------- FP8Linear

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(45, 256), (2, 37, 256)])
def test_fp8_linear_is_close_to_f_linear_but_really_quantized(dtype, bias, shape):
    seed = 100 + 10 * len(shape) + 2 * bias + (dtype == torch.bfloat16)
    linear = _linear(256, 512, bias=bias, dtype=dtype, seed=seed)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    ref = F.linear(x.float(), linear.weight.float(), None if linear.bias is None else linear.bias.float())

    out = FP8Linear.from_linear(linear)(x)

    assert out.shape == (*shape[:-1], 512)
    assert out.dtype == dtype
    err = _rel(out, ref)
    assert 0 < err < 0.06, err


def test_weight_is_stored_as_fp8_rows_with_float32_row_scales_and_the_bias_dtype_kept():
    linear = _linear(256, 512, dtype=torch.bfloat16, seed=1)
    q = FP8Linear.from_linear(linear)

    assert (q.in_features, q.out_features) == (256, 512)
    assert q.w_fp8.dtype == torch.float8_e4m3fn and q.w_fp8.shape == (512, 256) and q.w_fp8.is_contiguous()
    assert q.w_fp8.t().stride() == (1, 256)  # column-major second operand of _scaled_mm
    assert q.w_scale.dtype == torch.float32 and q.w_scale.shape == (1, 512)
    assert q.bias.dtype == torch.bfloat16 and torch.equal(q.bias, linear.bias)
    assert q.bias.data_ptr() != linear.bias.data_ptr()
    assert q.w_fp8.float().abs().amax(dim=1).eq(448).all()  # each row uses the full e4m3 range
    dequant = q.w_fp8.float() * q.w_scale.t()
    assert _rel(dequant, linear.weight) < 0.05
    assert not any(isinstance(m, nn.Linear) for m in q.modules())  # the original is not kept inside
    assert q.state_dict() == {}


def test_row_scales_keep_small_rows_accurate_next_to_a_huge_row():
    gen = torch.Generator().manual_seed(2)
    weight = torch.randn(512, 256, generator=gen)
    weight[7] *= 1e5
    linear = nn.Linear(256, 512, bias=False)
    with torch.no_grad():
        linear.weight.copy_(weight)
    x = torch.randn(40, 256, generator=gen)
    ref = x @ weight.t()
    others = torch.arange(512) != 7

    out = FP8Linear.from_linear(linear)(x)

    assert _rel(out[:, others], ref[:, others]) < 0.06
    assert _rel(out[:, 7], ref[:, 7]) < 0.06
    # Control: one scale for the whole tensor sends the other rows into e4m3's subnormals and zero.
    # (At a ratio of 1000 a per-tensor scale still gives 0.037: e4m3 spans 448 down to 2**-9.)
    scale = weight.abs().max() / 448
    per_tensor = (weight / scale).to(torch.float8_e4m3fn).float() * scale
    assert _rel((x @ per_tensor.t())[:, others], ref[:, others]) > 0.3


def test_zero_rows_give_the_bias_not_nan():
    linear = _linear(256, 256, seed=3)
    with torch.no_grad():
        linear.weight[5].zero_()
    x = torch.randn(20, 256, generator=torch.Generator().manual_seed(3))
    x[4] = 0

    out = FP8Linear.from_linear(linear)(x)

    assert torch.isfinite(out).all()
    assert torch.allclose(out[:, 5], linear.bias[5].expand(20))
    assert torch.allclose(out[4], linear.bias)


def test_rows_padded_to_16_give_the_same_rows(monkeypatch):
    linear = _linear(256, 512, dtype=torch.bfloat16, seed=4)
    q = FP8Linear.from_linear(linear)
    x = torch.randn(3, 15, 256, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    plain = q(x)
    product_shapes = []
    real_scaled_mm = torch._scaled_mm

    def spy(a, b, **kwargs):
        product_shapes.append((tuple(a.shape), tuple(b.shape)))
        return real_scaled_mm(a, b, **kwargs)

    monkeypatch.setattr(fp8, "_row_multiple", lambda device: 16)  # what CUDA gets
    monkeypatch.setattr(torch, "_scaled_mm", spy)
    padded = q(x)

    assert product_shapes == [((48, 256), (256, 512))]
    assert padded.shape == plain.shape == (3, 15, 512)
    assert torch.equal(padded, plain)


def test_module_to_dtype_keeps_the_fp8_weight_and_float32_scales():
    linear = _linear(256, 256, seed=5)
    q = FP8Linear.from_linear(linear)
    w_before, s_before = q.w_fp8.clone(), q.w_scale.clone()
    x = torch.randn(16, 256, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)

    q.to(torch.bfloat16)

    assert q.w_fp8.dtype == torch.float8_e4m3fn and torch.equal(q.w_fp8.view(torch.uint8), w_before.view(torch.uint8))
    assert q.w_scale.dtype == torch.float32 and torch.equal(q.w_scale, s_before)
    assert q.bias.dtype == torch.bfloat16
    ref = F.linear(x.float(), linear.weight, linear.bias)
    assert 0 < _rel(q(x), ref) < 0.06


def test_misaligned_layers_and_inputs_are_refused():
    with pytest.raises(ValueError):
        FP8Linear.from_linear(nn.Linear(24, 32))
    q = FP8Linear.from_linear(_linear(256, 256, seed=6))
    with pytest.raises(ValueError):
        q(torch.randn(4, 128))


def test_eligible():
    assert not eligible(nn.Linear(100, 256))
    assert eligible(nn.Linear(256, 512))
    assert not eligible(nn.Linear(256, 64))  # too small to pay off
    assert not eligible(nn.Linear(256, 264))  # not a multiple of 16
    assert not eligible(nn.Conv1d(256, 256, 1))
    assert not eligible(FP8Linear.from_linear(nn.Linear(256, 256)))
    with torch.device("meta"):
        assert not eligible(nn.Linear(256, 256))


def test_fp8_supported(monkeypatch):
    assert fp8_supported("cpu") is True  # torch 2.13 CPU runs _scaled_mm on float8
    assert fp8_supported(torch.device("cpu")) is True
    assert fp8_supported("meta") is False
    assert fp8_supported("mps") is False

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    for capability, expected in [((8, 6), False), ((8, 9), True), ((9, 0), True), ((12, 0), True), ((7, 5), False)]:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert fp8_supported("cuda") is expected, capability
        assert fp8_supported("cuda:0") is expected, capability
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert fp8_supported("cuda") is False


# ---------------------------------------------------------------- FP8Swap

BLOCK_LINEARS = 10  # per block: q, k, v, out of two attentions and the two feed-forward layers


def _tiny_wan(dtype: torch.dtype = torch.float32) -> WanTransformer3DModel:
    torch.manual_seed(0)
    # out_channels 64 makes proj_out a 256 -> 256 layer, eligible in itself: the swap must still skip it.
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=128, in_channels=64, out_channels=64,
        text_dim=64, freq_dim=256, ffn_dim=512, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
    )
    return model.to(dtype).eval().requires_grad_(False)


def _run(model: WanTransformer3DModel, seed: int = 7) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    dtype = model.dtype
    latents = torch.randn(1, 64, 3, 6, 10, generator=gen).to(dtype)  # 45 tokens: not a multiple of 16
    text = torch.randn(1, 7, 64, generator=gen).to(dtype)
    timestep = torch.full((1, 45), 500)  # one timestep per token, as the TI2V pipeline passes it
    with torch.no_grad():
        return model(latents, timestep, text).sample


def _outside_blocks(model: WanTransformer3DModel) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if not name.startswith("blocks") and name}


def _fp8_layers(model: nn.Module) -> list[FP8Linear]:
    return [m for m in model.modules() if isinstance(m, FP8Linear)]


@pytest.fixture
def model() -> WanTransformer3DModel:
    return _tiny_wan()


def test_active_swaps_the_block_linears_and_nothing_else(model):
    swap = FP8Swap(model)
    outside = _outside_blocks(model)
    eligible_outside = [n for n, m in outside.items() if eligible(m)]
    assert {"proj_out", "condition_embedder.time_proj", "condition_embedder.time_embedder.linear_1",
            "condition_embedder.text_embedder.linear_2"} <= set(eligible_outside)

    assert swap.count == 2 * BLOCK_LINEARS
    with swap.active():
        assert swap.count == 2 * BLOCK_LINEARS
        assert not [m for m in model.blocks.modules() if isinstance(m, nn.Linear)]
        assert len(_fp8_layers(model.blocks)) == swap.count
        assert isinstance(model.blocks[0].attn1.to_q, FP8Linear)
        assert isinstance(model.blocks[1].attn2.to_out[0], FP8Linear)
        assert isinstance(model.blocks[0].ffn.net[0].proj, FP8Linear)
        assert isinstance(model.blocks[1].ffn.net[2], FP8Linear)
        now = _outside_blocks(model)
        assert now.keys() == outside.keys()
        assert all(now[n] is outside[n] for n in outside)
        assert len(_fp8_layers(model)) == swap.count  # none outside the blocks
    assert not _fp8_layers(model)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_exit_restores_the_same_modules_and_the_exact_output(dtype):
    model = _tiny_wan(dtype)
    before = dict(model.named_modules())
    exact = _run(model)
    swap = FP8Swap(model)

    with swap.active():
        fast = _run(model)

    after = dict(model.named_modules())
    assert after.keys() == before.keys()
    assert all(after[n] is before[n] for n in before)
    assert torch.equal(_run(model), exact)
    err = _rel(fast, exact)
    assert 0 < err < 0.1, err


def test_an_exception_inside_active_still_restores(model):
    before = dict(model.named_modules())
    exact = _run(model)
    swap = FP8Swap(model)

    with pytest.raises(RuntimeError, match="boom"), swap.active():
        assert _fp8_layers(model)
        raise RuntimeError("boom")

    after = dict(model.named_modules())
    assert all(after[n] is before[n] for n in before) and after.keys() == before.keys()
    assert torch.equal(_run(model), exact)
    with swap.active():  # usable again
        assert len(_fp8_layers(model)) == swap.count


def test_copies_are_made_on_first_use_and_reused():
    model = _tiny_wan(torch.bfloat16)
    swap = FP8Swap(model)
    assert swap.nbytes == 0  # lazy: nothing quantized yet

    with swap.active():
        first = _fp8_layers(model)
        fast_1 = _run(model)
    with swap.active():
        second = _fp8_layers(model)
        fast_2 = _run(model)

    assert len(first) == swap.count and all(a is b for a, b in zip(first, second, strict=True))
    assert torch.equal(fast_1, fast_2)
    block_weight_bytes = sum(m.weight.numel() * m.weight.element_size()
                             for m in model.blocks.modules() if eligible(m))
    assert 0.5 <= swap.nbytes / block_weight_bytes < 0.52  # fp8 weights plus float32 scales and biases


def test_release_drops_the_copies():
    model = _tiny_wan()
    swap = FP8Swap(model)
    with swap.active():
        first = _fp8_layers(model)
        with pytest.raises(RuntimeError):
            swap.release()
    assert swap.nbytes > 0

    swap.release()

    assert swap.nbytes == 0
    with swap.active():
        again = _fp8_layers(model)
    assert len(again) == len(first) and not any(a is b for a, b in zip(first, again))


def test_a_changed_weight_is_quantized_again():
    model = _tiny_wan()
    swap = FP8Swap(model)
    with swap.active():
        first = {id(m) for m in _fp8_layers(model)}
        old = model.blocks[0].attn1.to_v
    changed = model.blocks[0].attn1.to_v
    with torch.no_grad():
        changed.weight.mul_(3)  # in place, as a LoRA fuse or a reload would
    exact = _run(model)

    with swap.active():
        q = model.blocks[0].attn1.to_v
        second = {id(m) for m in _fp8_layers(model)}
        fast = _run(model)

    assert q is not old
    assert second - {id(q)} == first - {id(old)}  # only the changed layer was quantized again
    assert torch.allclose(q.w_fp8.float() * q.w_scale.t(), changed.weight, rtol=0.07, atol=1e-6)
    assert 0 < _rel(fast, exact) < 0.1


def test_nested_active_is_a_no_op_and_restores_once(model):
    before = dict(model.named_modules())
    swap = FP8Swap(model)
    with swap.active():
        outer = _fp8_layers(model)
        with swap.active():
            assert _fp8_layers(model) == outer
        assert _fp8_layers(model) == outer  # still fast after the inner exit
    after = dict(model.named_modules())
    assert all(after[n] is before[n] for n in before)


def test_fused_projections_are_swapped_too(model):
    model.fuse_qkv_projections()
    attn1, attn2 = model.blocks[0].attn1, model.blocks[0].attn2
    assert attn1.fused_projections and isinstance(attn1.to_qkv, nn.Linear) and isinstance(attn2.to_kv, nn.Linear)
    before = dict(model.named_modules())
    exact = _run(model)
    swap = FP8Swap(model)
    assert swap.count == 2 * (BLOCK_LINEARS + 2)  # the unfused q/k/v stay in the modules beside to_qkv/to_kv

    with swap.active():
        assert isinstance(attn1.to_qkv, FP8Linear) and isinstance(attn2.to_kv, FP8Linear)
        fast = _run(model)

    after = dict(model.named_modules())
    assert all(after[n] is before[n] for n in before)
    assert torch.equal(_run(model), exact)
    assert 0 < _rel(fast, exact) < 0.1

    model.unfuse_qkv_projections()  # to_qkv/to_kv gone: their copies are dropped on the next use
    with swap.active():
        assert len(_fp8_layers(model)) == 2 * BLOCK_LINEARS
        held = sum(t.numel() * t.element_size() for q in _fp8_layers(model) for t in q.buffers())
    assert swap.count == 2 * BLOCK_LINEARS
    assert swap.nbytes == held


def test_a_model_without_blocks_is_refused():
    with pytest.raises(ValueError):
        FP8Swap(nn.Sequential(nn.Linear(256, 256)))
