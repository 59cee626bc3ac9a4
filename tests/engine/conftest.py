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


def small_request(**changes) -> GenerationRequest:
    fields = dict(prompt="A yellow ball rolls from the left edge to the center", negative_prompt="blurry",
                  width=96, height=64, frames=5, steps=3, guidance=5.0, seed=11)
    fields.update(changes)
    return GenerationRequest(**fields)
