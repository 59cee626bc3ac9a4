import pytest
import torch

from shotsketch.engine.generator import Generator
from shotsketch.engine.requests import GenerationRequest
from shotsketch.engine.sources import ModelSource

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def demo_generator() -> Generator:
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    return gen


@pytest.fixture
def compiled_generator(monkeypatch):  # noqa: ANN001, ANN201
    """The demo model compiled as on CUDA, through dynamo's "eager" backend (real graph counts on a
    CPU), on the default guidance path; dynamo's caches reset before and after."""
    import torch._dynamo

    from shotsketch.engine import guidance
    from shotsketch.engine.speed import SpeedOptions

    monkeypatch.delenv(guidance.PATH_ENV, raising=False)
    torch._dynamo.reset()
    gen = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(compile=True, compile_backend="eager"))
    gen.load()
    assert gen.compiled
    yield gen
    torch._dynamo.reset()


@pytest.fixture
def make_request():
    return small_request


@pytest.fixture
def guided_job():
    """run(generator, request, settings) -> (final event, the guidance state): one job with these
    layout-guidance settings (the generator's own put back after), which must finish."""
    from shotsketch.engine.events import JobFinished

    def run(gen, request, settings):  # noqa: ANN001, ANN202
        saved = gen.layout_guidance.settings
        gen.layout_guidance.settings = settings
        try:
            final = gen.generate(request)
        finally:
            gen.layout_guidance.settings = saved
        assert isinstance(final, JobFinished), getattr(final, "message", final)
        return final, gen.layout_guidance.last_state

    return run


def small_request(**changes) -> GenerationRequest:
    fields = dict(prompt="A yellow ball rolls from the left edge to the center", negative_prompt="blurry",
                  width=96, height=64, frames=5, steps=3, guidance=5.0, seed=11)
    fields.update(changes)
    return GenerationRequest(**fields)


@pytest.fixture
def masked_case():
    """case(batch) -> the reference every guidance path is held to: random q, k, v [batch, N, H, D],
    three subjects ("a" and "b" share a token), the additive-mask attention output `ref` and the
    recorded shares `ref_sums` (engine/guidance.py record_shares), with the inputs that made them."""
    import types

    import numpy as np

    from shotsketch.engine.guidance import build_bias, record_shares

    def case(batch: int) -> types.SimpleNamespace:
        torch.manual_seed(0)
        n, heads, d, length = 40, 3, 16, 64
        q, k, v = (torch.randn(batch, size, heads, d) for size in (n, length, length))
        tokens = {"a": [3, 4, 5], "b": [5, 9], "c": [63]}  # "a" and "b" share token 5: their columns add up there
        masks = {name: np.random.default_rng(s).random((1, 5, 8)).astype(np.float32) for s, name in enumerate(tokens)}
        strength = 2.5
        bias = build_bias(tokens, masks, 0.5, length) * strength  # [N, L]
        mask = torch.stack([bias, torch.zeros_like(bias)])[:batch, None]  # the negative's row unbiased
        ref = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)),
                                                               attn_mask=mask).transpose(1, 2)
        values = torch.zeros(1, heads, length, d)
        for s, idx in enumerate(tokens.values()):
            values[0, :, idx, s] = 1.0
        ref_sums = torch.zeros(d, n)
        record_shares(q, k, mask, values, ref_sums)
        return types.SimpleNamespace(q=q, k=k, v=v, n=n, heads=heads, d=d, length=length, tokens=tokens, masks=masks,
                                     strength=strength, bias=bias, mask=mask, ref=ref, values=values, ref_sums=ref_sums)

    return case
