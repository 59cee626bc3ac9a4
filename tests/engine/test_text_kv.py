"""The text's cross-attention keys and values computed once per job (engine/text_kv.py): the same
jobs bit for bit (no sketch, a sketch on either guidance path, strength 0, without CFG, CFG as two
forwards), the text projected once per job instead of at every step, a weight changed between jobs
(a LoRA fused) seen by the next job, and compiled blocks that compile nothing new."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from shotsketch.core.examples import example_shots
from shotsketch.engine import guidance as g
from shotsketch.engine import text_kv
from shotsketch.engine.events import JobFinished
from shotsketch.engine.generator import Generator
from shotsketch.engine.guidance import FOLDED, MASK, GuidanceSettings
from shotsketch.engine.sources import ModelSource
from shotsketch.engine.speed import SpeedOptions


@pytest.fixture(scope="module", autouse=True)
def _cache_asked_for():  # noqa: ANN202 - on by default; whatever the environment running the tests says
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(text_kv.ENV, "1")
        yield


def test_the_cache_is_on_by_default(monkeypatch):
    monkeypatch.delenv(text_kv.ENV, raising=False)
    assert text_kv.wanted()
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    assert any(isinstance(h, text_kv.TextKV) for h in gen.attention_hooks)
    monkeypatch.setenv(text_kv.ENV, "0")
    assert not text_kv.wanted()


def _generator(**speed) -> Generator:
    """A generator that projects the text in the blocks at every step (the reference)."""
    gen = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(**speed))
    gen.load()
    text_kv.uninstall(gen.pipeline.transformer)  # in case loading installed the cache
    gen.attention_hooks[:] = [h for h in gen.attention_hooks if not isinstance(h, text_kv.TextKV)]
    return gen


def _cached(**speed) -> tuple[Generator, text_kv.TextKV]:
    gen = _generator(**speed)
    cache = text_kv.install_for(gen)
    assert cache is not None and cache in gen.attention_hooks
    return gen, cache


@pytest.fixture(scope="module")
def pair():  # noqa: ANN201
    return _generator(), _cached()


@pytest.fixture
def to_k_calls():  # noqa: ANN201
    """to_k_calls(gen): a list that gets the batch size of every call of block 0's cross-attention key projection."""
    handles = []

    def watch(gen: Generator) -> list:
        calls: list = []
        handles.append(gen.pipeline.transformer.blocks[0].attn2.to_k.register_forward_hook(
            lambda m, a, o: calls.append(a[0].shape[0])))
        return calls

    yield watch
    for handle in handles:
        handle.remove()


def _sketch(make_request, strength: float, **changes):  # noqa: ANN001, ANN202
    shot = next(s for s in example_shots() if s.id == "red_car_house")
    return make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=strength, **changes)


def _same(a: JobFinished, b: JobFinished) -> None:
    assert isinstance(a, JobFinished) and isinstance(b, JobFinished)
    assert torch.equal(a.latents, b.latents)
    assert a.adherence == b.adherence


@pytest.mark.parametrize("kind", ["plain", "guided-folded", "guided-mask", "strength-0", "no-cfg"])
def test_cached_text_keys_and_values_give_the_same_job(pair, make_request, monkeypatch, to_k_calls, kind):
    (ref, (gen, cache)) = pair
    monkeypatch.setenv(g.PATH_ENV, MASK if kind == "guided-mask" else FOLDED)
    request = {"plain": lambda: make_request(steps=3),
               "guided-folded": lambda: _sketch(make_request, 1.0, steps=3),
               "guided-mask": lambda: _sketch(make_request, 1.0, steps=3),
               "strength-0": lambda: _sketch(make_request, 0.0, steps=3),
               "no-cfg": lambda: make_request(steps=3, guidance=1.0)}[kind]()
    calls = to_k_calls(gen)
    before = dict(cache.stats)
    _same(ref.generate(request), gen.generate(request))
    # the text projected once for the job (CFG as one batch-2 forward, or no CFG), not at every step
    assert calls == [1 if kind == "no-cfg" else 2]
    assert cache.stats["computed"] - before["computed"] == 1 and cache.stats["reused"] - before["reused"] == 2
    assert all(slot.key is None for slot in cache.slots)  # emptied with the job


def test_cfg_as_two_forwards_caches_each_prompt(make_request, to_k_calls):
    ref = _generator(batch_cfg_max_tokens=0)
    gen, cache = _cached(batch_cfg_max_tokens=0)
    calls = to_k_calls(gen)
    for request in (make_request(steps=3), _sketch(make_request, 1.0, steps=3)):
        calls.clear()
        _same(ref.generate(request), gen.generate(request))
        assert calls == [1, 1]  # the prompt's and the negative's, once each for 3 steps


def test_a_weight_changed_between_jobs_is_seen_by_the_next_job(pair, make_request):
    (ref, (gen, _cache)) = pair
    # without CFG the forward gets the prompt cache's own tensor, the same object in both jobs
    request = make_request(steps=2, guidance=1.0)
    _same(ref.generate(request), gen.generate(request))
    try:
        for model in (ref, gen):  # as a LoRA fused between jobs; the prompt's embeddings come from the cache
            with torch.no_grad():
                model.pipeline.transformer.blocks[1].attn2.to_v.weight.mul_(2.0)
        changed_ref, changed = ref.generate(request), gen.generate(request)
        _same(changed_ref, changed)
    finally:
        for model in (ref, gen):
            with torch.no_grad():
                model.pipeline.transformer.blocks[1].attn2.to_v.weight.div_(2.0)


def test_weights_off_the_device_leave_the_slots_empty(pair):
    (_ref, (gen, cache)) = pair
    embedder = gen.pipeline.transformer.condition_embedder.text_embedder
    ehs = torch.zeros(1, 8, embedder.linear_1.in_features)
    text = torch.zeros(1, 8, embedder.linear_2.out_features, device="meta")  # the weights elsewhere, as offloaded
    cache.text_hook(embedder, (ehs,), text)
    assert cache.stats["skipped"] >= 1 and all(slot.key is None for slot in cache.slots)
    cache.clear()


def test_jobs_of_many_video_tokens_project_as_usual(pair, make_request, to_k_calls):
    (ref, (gen, cache)) = pair
    from shotsketch.engine.requests import GenerationRequest

    assert text_kv.video_tokens(GenerationRequest("p", width=832, height=480, frames=17)) == 1950
    assert not cache.worth(GenerationRequest("p", width=1280, height=704, frames=121))  # 27,280 tokens
    assert cache.worth(GenerationRequest("p", width=832, height=480, frames=17))
    calls = to_k_calls(gen)
    worth = cache.worth
    cache.worth = lambda request: False  # as for a 720p job
    try:
        request = _sketch(make_request, 1.0, steps=3)
        _same(ref.generate(request), gen.generate(request))
    finally:
        cache.worth = worth
    assert calls == [2, 2, 2]  # projected in the blocks at every step
    assert cache.on


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(text_kv.ENV, "0")
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    assert text_kv.install_for(gen) is None
    assert not any(isinstance(h, text_kv.TextKV) for h in gen.attention_hooks)


def _graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


def test_compiled_with_the_cache_nothing_compiles_after_the_warm_up(make_request, monkeypatch):
    monkeypatch.delenv(g.PATH_ENV, raising=False)
    warm_graphs = {}
    for cached in (False, True):
        torch._dynamo.reset()
        counters.clear()
        speed = dict(compile=True, compile_backend="eager")
        gen = _cached(**speed)[0] if cached else _generator(**speed)
        assert gen.warm_up(width=96, height=64, frames=5)
        warm_graphs[cached] = _graphs()
    # one processor per block reading its own slot: still one graph for all the blocks
    assert warm_graphs[True] == warm_graphs[False], warm_graphs
    counters.clear()
    ref = _generator()
    for request in (make_request(steps=2, seed=3), _sketch(make_request, 1.0, steps=2, seed=4),
                    _sketch(make_request, 0.0, steps=2, seed=5), make_request(prompt="another prompt", steps=2)):
        final = gen.generate(request)
        assert isinstance(final, JobFinished) and final.recipe["speed"]["compiled"]
        expected = ref.generate(request)
        torch.testing.assert_close(final.latents, expected.latents, rtol=1e-4, atol=1e-4)
    assert _graphs() == 0, dict(counters["stats"])
    torch._dynamo.reset()


def test_mask_and_folded_paths_share_the_cached_processors(pair, make_request):
    """A sketch's state goes on the per-block processors the cache installed (nothing swapped)."""
    (_ref, (gen, _cache)) = pair
    processors = [b.attn2.processor for b in gen.pipeline.transformer.blocks]
    assert len({id(p) for p in processors}) == len(processors)
    for path in (MASK, FOLDED):
        gen.layout_guidance.settings = GuidanceSettings(path=path)
        final = gen.generate(_sketch(make_request, 1.0, steps=2))
        assert final.adherence
        assert [b.attn2.processor for b in gen.pipeline.transformer.blocks] == processors
        assert all(p.state is None for p in processors)
    gen.layout_guidance.settings = GuidanceSettings()


def test_the_cache_is_gone_before_the_decode(make_request, monkeypatch):
    """The decode is a preview's memory peak on a card that keeps every model, and the planner counts
    the cache in the steps only: it must be freed before the decode, not at the job's end."""
    gen, cache = _cached()
    seen: list[int] = []
    real = gen.decode

    def decode(latents):  # noqa: ANN001, ANN202
        seen.append(len(cache._cache) + sum(slot.key is not None for slot in cache.slots))
        return real(latents)

    monkeypatch.setattr(gen, "decode", decode)
    final = gen.generate(make_request(steps=2))
    assert isinstance(final, JobFinished) and cache.stats["computed"] > 0  # the steps used it
    assert seen == [0]
