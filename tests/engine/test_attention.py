"""engine/attention.py: the self-attention processor, its install/uninstall, and the fallback."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shotsketch.engine import attention as attn_mod
from shotsketch.engine import text_kv
from shotsketch.engine.attention import FusedSelfAttnProcessor, choose_attention, install, is_kernel_error, uninstall
from shotsketch.engine.demo import build_components
from shotsketch.engine.events import JobFinished
from shotsketch.engine.generator import Generator
from shotsketch.engine.sources import ModelSource


def sdpa_bshd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A stand-in kernel with FlashAttention-4's layout: [batch, tokens, heads, head_dim]."""
    return F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(1, 2)


def _forward(transformer, seed: int = 0) -> torch.Tensor:  # noqa: ANN001
    gen = torch.Generator("cpu").manual_seed(seed)
    cfg = transformer.config
    x = torch.randn(1, cfg.in_channels, 2, 8, 12, generator=gen)
    text = torch.randn(1, 16, cfg.text_dim, generator=gen)
    with torch.inference_mode():
        return transformer(hidden_states=x, timestep=torch.tensor([500.0]), encoder_hidden_states=text,
                           return_dict=False)[0]


def test_processor_computes_what_the_stock_processor_computes_through_the_kernel() -> None:
    transformer = build_components(seed=4)["transformer"]
    stock = _forward(transformer)
    originals = {name: p for name, p in transformer.attn_processors.items()}
    calls = []

    def kernel(q, k, v):  # noqa: ANN001, ANN202
        calls.append(q.shape)
        return sdpa_bshd(q, k, v)

    assert install(transformer, kernel) == len(transformer.blocks)
    ours = _forward(transformer)
    # only the self-attention goes to the kernel: one call a block, over the video tokens
    assert len(calls) == len(transformer.blocks)
    assert all(shape[1] == 2 * 4 * 6 for shape in calls)
    torch.testing.assert_close(ours, stock, rtol=1e-5, atol=1e-5)
    # installing again wraps the original processor, not our own
    install(transformer, kernel)
    assert all(not isinstance(b.attn1.processor.fallback, FusedSelfAttnProcessor) for b in transformer.blocks)
    uninstall(transformer)
    assert transformer.attn_processors == originals


def test_a_wrong_kernel_changes_the_result() -> None:
    # the comparison above can fail: a kernel that drops the softmax scale gives another output
    transformer = build_components(seed=4)["transformer"]
    stock = _forward(transformer)
    install(transformer, lambda q, k, v: sdpa_bshd(q * 3.0, k, v))
    assert not torch.allclose(_forward(transformer), stock, atol=1e-3)


def test_choose_attention_keeps_pytorch_attention_off_cuda(monkeypatch) -> None:
    monkeypatch.setenv("SHOTSKETCH_ATTENTION", "flash4")
    assert choose_attention(None, "cpu") == "sdpa"
    monkeypatch.setenv("SHOTSKETCH_ATTENTION", "nonsense")
    assert choose_attention("flash4", "cpu") == "sdpa"
    monkeypatch.delenv("SHOTSKETCH_ATTENTION")
    monkeypatch.setattr(attn_mod.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(attn_mod.torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(attn_mod, "flash4_installed", lambda: True)
    assert choose_attention(None, "cuda") == "flash4"
    assert choose_attention("sdpa", "cuda") == "sdpa"
    monkeypatch.setattr(attn_mod.torch.cuda, "get_device_capability", lambda *a: (8, 9))  # an Ada card
    assert choose_attention(None, "cuda") == "sdpa"
    monkeypatch.setattr(attn_mod.torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(attn_mod, "flash4_installed", lambda: False)
    assert choose_attention("flash4", "cuda") == "sdpa"
    assert choose_attention("cudnn", "cuda") == "cudnn"  # asked for by name only
    monkeypatch.setattr(attn_mod.torch.cuda, "get_device_capability", lambda *a: (7, 5))  # a Turing card
    assert choose_attention("cudnn", "cuda") == "sdpa"
    assert choose_attention("cudnn", "cpu") == "sdpa"
    assert attn_mod.kernel_for("cudnn") is attn_mod.cudnn_bshd and attn_mod.kernel_for("sdpa") is attn_mod.sdpa_bshd


def _raiser_in(path: str):  # noqa: ANN202
    namespace: dict = {}
    exec(compile("def fail(*a):\n    raise RuntimeError('no kernel for this GPU')\n", path, "exec"), namespace)  # noqa: S102
    return namespace["fail"]


def test_is_kernel_error_tells_flash_attention_failures_from_others() -> None:
    for fail, expected in ((_raiser_in("/site/flash_attn/cute/interface.py"), True),
                           (_raiser_in("/site/shotsketch/engine/other.py"), False)):
        try:
            fail()
        except RuntimeError as exc:
            assert is_kernel_error(exc) is expected
    try:
        try:
            _raiser_in("/site/cutlass/base_dsl/compiler.py")()
        except RuntimeError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as exc:
        assert is_kernel_error(exc)


def test_generator_falls_back_to_pytorch_attention_when_the_kernel_fails(make_request) -> None:
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    transformer = gen.pipeline.transformer
    originals = dict(transformer.attn_processors)
    install(transformer, _raiser_in("/site/flash_attn/cute/interface.py"))
    gen.attention = "flash4"  # as _apply_speed_options sets it on a Hopper GPU with the package
    final = gen.generate(make_request(steps=2))
    assert isinstance(final, JobFinished)
    assert gen.attention == "sdpa" and final.recipe["speed"]["attention"] == "sdpa"
    assert transformer.attn_processors == originals


def test_flash4_op_has_a_shape_function_for_compiled_graphs() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q = torch.empty(2, 100, 4, 64, dtype=torch.bfloat16)
        v = torch.empty(2, 30, 4, 32, dtype=torch.bfloat16)
        out = torch.ops.shotsketch.flash4_attention(q, torch.empty(2, 30, 4, 64, dtype=torch.bfloat16), v)
    assert out.shape == (2, 100, 4, 32) and out.dtype == torch.bfloat16


def test_describe_says_what_would_run_and_how_to_get_the_faster_kernel(monkeypatch) -> None:
    assert attn_mod.describe("cpu") == "PyTorch's (no CUDA GPU)"
    monkeypatch.setattr(attn_mod.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(attn_mod.torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(attn_mod, "flash4_installed", lambda: False)
    assert "pip install 'shotsketch[fast-attention]'" in attn_mod.describe("cuda")
    monkeypatch.setattr(attn_mod, "flash4_installed", lambda: True)
    assert attn_mod.describe("cuda") == "FlashAttention-4"
    monkeypatch.setattr(attn_mod.torch.cuda, "get_device_capability", lambda *a: (8, 6))
    assert "Hopper or Blackwell" in attn_mod.describe("cuda")


def test_the_cross_attention_kernel_is_used_on_every_block_and_removed_with_the_rest() -> None:
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    transformer = gen.pipeline.transformer
    plain = _forward(transformer)
    lengths = []

    def counting(q, k, v):  # noqa: ANN001, ANN202
        lengths.append(k.shape[1])
        return sdpa_bshd(q, k, v)

    assert attn_mod.set_cross_kernel(transformer, counting) == len(transformer.blocks)
    torch.testing.assert_close(_forward(transformer), plain)
    assert lengths == [16] * len(transformer.blocks)  # the text's 16 tokens, once per block
    attn_mod.set_cross_kernel(transformer, lambda q, k, v: torch.zeros_like(q))
    assert not torch.allclose(_forward(transformer), plain)  # the kernel's output is what the block uses
    text_kv.uninstall(transformer)  # a job the text K/V cache is not worth (720p): the blocks project the text
    lengths.clear()
    attn_mod.set_cross_kernel(transformer, counting)
    torch.testing.assert_close(_forward(transformer), plain)
    assert lengths == [16] * len(transformer.blocks)
    uninstall(transformer)
    lengths.clear()
    torch.testing.assert_close(_forward(transformer), plain)
    assert lengths == []


def test_a_cudnn_attention_error_falls_back_to_pytorch_attention(make_request) -> None:
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    transformer = gen.pipeline.transformer

    def no_plan(q, k, v):  # noqa: ANN001, ANN202
        raise RuntimeError("cuDNN Frontend error: No valid execution plans built for the attention graph")

    attn_mod.set_cross_kernel(transformer, no_plan)
    gen.attention = "cudnn"  # as _apply_speed_options sets it with SHOTSKETCH_ATTENTION=cudnn
    final = gen.generate(make_request(steps=2))
    assert isinstance(final, JobFinished)
    assert gen.attention == "sdpa" and final.recipe["speed"]["attention"] == "sdpa"
    assert all(getattr(b.attn2.processor, "kernel", None) is None for b in transformer.blocks)


def test_the_opaque_attention_op_computes_attention_and_compiles_whole() -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 30, 2, 16, generator=gen)
    k, v = (torch.randn(2, 7, 2, 16, generator=gen) for _ in range(2))
    torch.testing.assert_close(attn_mod.cudnn_bshd(q, k, v), sdpa_bshd(q, k, v))
    scaled = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)), scale=0.5).transpose(1, 2)
    assert not torch.allclose(scaled, sdpa_bshd(q, k, v))
    torch._dynamo.reset()
    counts = torch._dynamo.utils.counters
    counts.clear()
    compiled = torch.compile(lambda a, b, c: attn_mod.cudnn_bshd(a, b, c, 0.5), fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(q, k, v), scaled)
    assert sum(counts["graph_break"].values()) == 0
