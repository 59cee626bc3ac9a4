"""The real WanPipeline on the demo model: events, determinism, cancel, prompt cache, first frame."""

import numpy as np
import pytest
import torch
from PIL import Image

from shotsketch import DEMO_LABEL
from shotsketch.engine.events import CancelToken, JobCancelled, JobFailed, JobFinished, JobStarted, JobStep
from shotsketch.engine.generator import Generator
from shotsketch.engine.memory import MemoryPlan
from shotsketch.engine.sources import ModelSource


def test_demo_generation_end_to_end(demo_generator, make_request):
    events = []
    final = demo_generator.generate(make_request(), events.append)
    assert isinstance(final, JobFinished)
    assert final.frames.shape == (5, 64, 96, 3) and final.frames.dtype == np.uint8
    assert isinstance(events[0], JobStarted) and events[0].total_steps == 3
    steps = [e for e in events if isinstance(e, JobStep)]
    assert [e.step for e in steps] == [1, 2, 3]
    assert all(e.total_steps == 3 for e in steps)
    assert steps[-1].eta_s == pytest.approx(0.0)
    # previews are one latent frame at token-grid resolution: 16x smaller than the video
    assert steps[0].preview.shape == (4, 6, 3) and steps[0].preview.dtype == np.uint8
    assert events[-1] is final
    # latents keep the real model's compression: 48 channels, 4x temporal, 16x spatial
    assert tuple(final.latents.shape) == (1, 48, 2, 4, 6)
    recipe = final.recipe
    assert recipe["request"]["seed"] == 11 and recipe["request"]["frames"] == 5
    assert recipe["model"] == {"id": "demo", "kind": "demo", "revision": "tiny-random-v1", "label": DEMO_LABEL}
    assert set(recipe["libraries"]) >= {"torch", "diffusers", "transformers"}


def test_same_seed_same_frames_other_seed_other_frames(demo_generator, make_request):
    a = demo_generator.generate(make_request(seed=5))
    b = demo_generator.generate(make_request(seed=5))
    c = demo_generator.generate(make_request(seed=6))
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


def test_cancel_between_steps(demo_generator, make_request):
    token = CancelToken()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, JobStep) and event.step == 2:
            token.cancel()

    final = demo_generator.generate(make_request(steps=8), on_event, token)
    assert isinstance(final, JobCancelled) and final.at_step == 2
    assert [e.step for e in events if isinstance(e, JobStep)] == [1, 2]
    assert not any(isinstance(e, JobFinished) for e in events)


def test_cancel_before_start(demo_generator, make_request):
    token = CancelToken()
    token.cancel()
    final = demo_generator.generate(make_request(), None, token)
    assert isinstance(final, JobCancelled) and final.at_step == 0


def test_prompt_embedding_cache_skips_text_encoder():
    gen = Generator(ModelSource.demo(), device="cpu", embed_cache_size=2)
    gen.load()
    calls = []
    gen.text_pipeline.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    first = gen.encode_prompts("a red car", "blurry")
    assert len(calls) == 2  # prompt and negative prompt
    again = gen.encode_prompts("a red car", "blurry")
    assert len(calls) == 2  # served from the cache
    assert again[0] is first[0]
    gen.encode_prompts("a blue car", "blurry")
    assert len(calls) == 3  # a new prompt with the same negative: one text encoded
    gen.encode_prompts("a green car", "blurry")  # evicts "a red car" (cache of 2 texts)
    assert len(calls) == 4
    gen.encode_prompts("a red car", "blurry")
    assert len(calls) == 5


def test_a_cached_text_is_not_evicted_by_encoding_its_partner():
    gen = Generator(ModelSource.demo(), device="cpu", embed_cache_size=2)
    gen.load()
    first = gen.encode_prompts("a red car", "blurry")  # cache: "a red car" (older), "blurry"
    # "a red car" is now the negative and the oldest entry; encoding the new prompt must keep it
    prompt, negative = gen.encode_prompts("a blue car", "a red car")
    assert negative is first[0]
    assert not torch.allclose(prompt, negative)


def test_text_is_encoded_over_its_own_tokens_with_the_stock_result():
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    lengths = []
    gen.text_pipeline.text_encoder.register_forward_pre_hook(lambda _m, args: lengths.append(args[0].shape[1]))
    prompt, negative = "A yellow ball rolls from the left edge to the center", ""
    ours = gen.encode_prompts(prompt, negative)
    assert lengths and max(lengths) < 64  # the text's tokens, not all 512 positions
    with torch.inference_mode():
        stock = gen.text_pipeline.encode_prompt(prompt=prompt, negative_prompt=negative, do_classifier_free_guidance=True,
                                                max_sequence_length=512, device=torch.device("cpu"))
    for a, b in zip(ours, stock):
        assert a.shape == b.shape == (1, 512, a.shape[-1])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours[0], ours[1])  # prompt and negative differ: the check can fail


def test_generation_reuses_cached_embeddings(demo_generator, make_request):
    demo_generator.generate(make_request(prompt="a kite rises slowly"))
    before = demo_generator.text_encoder_calls
    demo_generator.generate(make_request(prompt="a kite rises slowly", seed=99))
    assert demo_generator.text_encoder_calls == before


def test_first_frame_image_conditions_latent_frame_zero(demo_generator, make_request, tmp_path):
    img_path = tmp_path / "first.png"
    Image.new("RGB", (200, 120), (220, 30, 30)).save(img_path)
    final = demo_generator.generate(make_request(image=str(img_path)))
    assert isinstance(final, JobFinished)
    pipe = demo_generator.pipeline
    from shotsketch.engine.requests import load_first_frame

    image = load_first_frame(str(img_path), 96, 64)
    pixels = pipe.video_processor.preprocess(image, height=64, width=96).unsqueeze(2)
    with torch.no_grad():
        z = pipe.vae.encode(pixels.to(pipe.vae.dtype)).latent_dist.mode()
    mean = torch.tensor(pipe.vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(pipe.vae.config.latents_std).view(1, -1, 1, 1, 1)
    expected = ((z - mean) / std)[:, :, 0]
    torch.testing.assert_close(final.latents[:, :, 0].float(), expected.float(), atol=1e-4, rtol=1e-4)
    plain = demo_generator.generate(make_request())
    assert not np.array_equal(plain.frames, final.frames)


def test_unreadable_first_frame_fails_with_a_message(demo_generator, make_request, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image")
    final = demo_generator.generate(make_request(image=str(bad)))
    assert isinstance(final, JobFailed)
    assert "could not be read as an image" in final.message and str(bad) in final.message


def test_bad_request_fails_as_an_event(demo_generator, make_request):
    events = []
    final = demo_generator.generate(make_request(width=100), events.append)
    assert isinstance(final, JobFailed) and "nearest valid width is 96" in final.message
    assert events == [final]


def test_out_of_memory_suggests_the_next_plan(make_request, monkeypatch):
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    gen.memory_plan = MemoryPlan.ALL_ON_GPU
    gen.auto_fallback = False  # as for a plan the user pinned (Generator(memory_plan=...)): fail, suggest

    def oom(*_a, **_k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(gen, "encode_prompts", oom)
    final = gen.generate(make_request())
    assert isinstance(final, JobFailed)
    assert "ran out of memory" in final.message and "text-encoder-offload" in final.message
    assert final.suggestion == "text-encoder-offload"


def test_unexpected_error_ends_in_failed_event_not_an_exception(make_request, monkeypatch):
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    monkeypatch.setattr(gen, "decode", lambda _l: (_ for _ in ()).throw(RuntimeError("boom")))
    final = gen.generate(make_request())
    assert isinstance(final, JobFailed) and "boom" in final.message and "RuntimeError" in final.detail


def test_uniform_timestep_matches_per_token_timesteps(make_request):
    """The exact-mode lever gives the stock pipeline's result (float rounding apart)."""
    from shotsketch.engine.speed import SpeedOptions

    fast = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(uniform_timestep=True))
    stock = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(uniform_timestep=False))
    seen = []
    fast.load()
    fast.pipeline.transformer.condition_embedder.register_forward_hook(lambda m, a, out: seen.append(out[0].ndim))
    a = fast.generate(make_request(steps=3))
    b = stock.generate(make_request(steps=3))
    assert seen and set(seen) == {2}  # the time embedding ran once per sample, not per token
    torch.testing.assert_close(a.latents, b.latents, rtol=1e-4, atol=1e-4)


def test_out_of_memory_falls_back_to_the_next_plan_and_finishes(make_request, monkeypatch):
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    gen.memory_plan = MemoryPlan.ALL_ON_GPU  # as on a GPU whose plan was chosen automatically
    assert gen.auto_fallback
    real = gen._generate
    plans = []

    def flaky(request, emit, cancel, job_id):
        plans.append(gen.memory_plan)
        if gen.memory_plan is MemoryPlan.ALL_ON_GPU:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(request, emit, cancel, job_id)

    monkeypatch.setattr(gen, "_generate", flaky)
    final = gen.generate(make_request())
    assert isinstance(final, JobFinished)
    assert plans == [MemoryPlan.ALL_ON_GPU, MemoryPlan.TEXT_ENCODER_OFFLOAD]
    assert final.recipe["device"]["memory_plan"] == "text-encoder-offload"



def test_batched_cfg_runs_one_forward_per_step_with_the_same_latents(make_request):
    from shotsketch.engine.speed import SpeedOptions

    one = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(batch_cfg_max_tokens=0))
    batched = Generator(ModelSource.demo(), device="cpu")
    calls = {"n": 0}
    batched.load()

    def count(_module, _args):
        calls["n"] += 1

    handle = batched.pipeline.transformer.blocks[0].register_forward_pre_hook(count)
    req = make_request(steps=4)
    a, b = one.generate(req), batched.generate(req)
    handle.remove()
    assert b.recipe["speed"]["batched_cfg_steps"] == 4 and a.recipe["speed"]["batched_cfg_steps"] == 0
    assert calls["n"] == 4  # one forward a step through the blocks, not two
    assert torch.allclose(a.latents, b.latents, atol=1e-4, rtol=1e-4)
    assert not torch.equal(b.latents, torch.zeros_like(b.latents))
    # with a sketch the layout bias acts on the prompt's row of the batch only: the same latents,
    # heatmaps and adherence as with the two passes apart
    from shotsketch.core.examples import example_shots

    shot = example_shots()[0]
    guided_req = make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=1.0, steps=4)
    apart, together = one.generate(guided_req), batched.generate(guided_req)
    assert together.recipe["speed"]["batched_cfg_steps"] == 4
    assert torch.allclose(apart.latents, together.latents, atol=1e-4, rtol=1e-4)
    plain = one.generate(make_request(prompt=shot.prompt, steps=4))
    assert not torch.allclose(plain.latents, together.latents, atol=1e-3)  # the bias did act
    for name, score in apart.extras["adherence"].items():
        assert together.extras["adherence"][name] == pytest.approx(score, abs=1e-4)
        assert np.allclose(apart.extras["heatmaps"][name], together.extras["heatmaps"][name], atol=1e-5)


def _streaming_generator() -> Generator:
    """The demo model with its blocks streamed (diffusers' group offloading, here from the CPU to the
    CPU), as the planner leaves an 8-12 GiB card."""
    from diffusers.hooks import apply_group_offloading

    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    apply_group_offloading(gen.pipeline.transformer, onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                           offload_type="block_level", num_blocks_per_group=1)
    gen.memory_plan = MemoryPlan.GROUP_OFFLOAD
    return gen


def test_streamed_blocks_batch_cfg_and_compute_the_same(make_request, monkeypatch):
    """With the transformer's blocks streamed (diffusers' group offloading, here from the CPU to the
    CPU) the two CFG forwards run as one by default, through the offloading hooks, and give the
    latents of the two forwards apart (SHOTSKETCH_STREAMED_CFG_BATCH=0)."""
    gen = _streaming_generator()
    req = make_request(steps=3)
    monkeypatch.setenv("SHOTSKETCH_STREAMED_CFG_BATCH", "0")
    apart = gen.generate(req)
    monkeypatch.delenv("SHOTSKETCH_STREAMED_CFG_BATCH")
    together = gen.generate(req)
    assert apart.recipe["speed"]["batched_cfg_steps"] == 0
    assert together.recipe["speed"]["batched_cfg_steps"] == 3
    assert gen.job_shape(req).batched_cfg  # the planner predicts the batch's activations
    assert torch.allclose(apart.latents, together.latents, atol=1e-4, rtol=1e-4)


def test_batched_cfg_keeps_the_forward_a_hook_set_on_the_transformer(make_request):
    """diffusers' group offloading puts the onload of the modules outside the blocks (the patch
    embedding, the condition embedder) in a forward on the transformer instance. A batched-CFG job
    must leave it there: without it the next job's patch embedding stays offloaded (on a GPU:
    "Input type (CUDABFloat16Type) and weight type (CPUBFloat16Type) should be the same")."""
    gen = _streaming_generator()
    transformer = gen.pipeline.transformer
    hooked = transformer.__dict__.get("forward")
    assert hooked is not None  # diffusers' hook registry wraps the instance's forward
    for _ in range(2):
        final = gen.generate(make_request(steps=2))
        assert isinstance(final, JobFinished) and final.recipe["speed"]["batched_cfg_steps"] == 2
        assert transformer.__dict__.get("forward") is hooked


def test_batched_cfg_batches_every_step_when_a_hook_takes_itself_out_mid_job(make_request):
    """With the blocks streamed on a GPU, diffusers adds a lazy-prefetch hook to the transformer that
    learns the blocks' order in the first forward and then takes itself out of the hook chain, setting
    the rest of the chain as the instance's forward: over the batched-CFG wrapper, which then ran only
    the first step as one batch (bench/RESULTS.md session 9: a 12 GiB preview step of 0.73 s, two
    forwards, each streaming every block). The wrapper goes back on over the new chain, every step is
    batched, the latents are the unbatched ones, and the next job starts from the chain left."""
    from diffusers.hooks.group_offloading import LazyPrefetchGroupOffloadingHook
    from diffusers.hooks.hooks import HookRegistry

    gen = _streaming_generator()
    transformer = gen.pipeline.transformer
    reference = gen.generate(make_request(steps=3), lambda ev: None)
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    registry.register_hook(LazyPrefetchGroupOffloadingHook(), "lazy_prefetch_group_offloading")  # what use_stream=True adds
    lazy = transformer.__dict__["forward"]
    first = gen.generate(make_request(steps=3), lambda ev: None)
    assert "lazy_prefetch_group_offloading" not in registry.hooks  # it took itself out in the first forward
    assert isinstance(first, JobFinished) and first.recipe["speed"]["batched_cfg_steps"] == 3
    assert torch.allclose(first.latents, reference.latents, atol=1e-4, rtol=1e-4)
    left = transformer.__dict__.get("forward")
    assert left is not None and left is not lazy  # the chain as the hook left it, not the one from before
    second = gen.generate(make_request(steps=3), lambda ev: None)
    assert second.recipe["speed"]["batched_cfg_steps"] == 3 and transformer.__dict__.get("forward") is left


def test_a_failed_compile_reruns_the_job_uncompiled(make_request, monkeypatch):
    import torch._dynamo.exc

    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    gen.compiled = True  # as on a GPU where compile was switched on
    real = gen._generate
    calls = {"n": 0}

    def first_fails(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            try:
                raise RuntimeError("triton: no C compiler found")
            except RuntimeError as inner:  # as torch wraps it: the cause sits in the chain
                raise torch._dynamo.exc.BackendCompilerFailed.__new__(torch._dynamo.exc.BackendCompilerFailed) from inner
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "_generate", first_fails)
    final = gen.generate(make_request())
    assert isinstance(final, JobFinished) and calls["n"] == 2
    assert final.recipe["speed"]["compiled"] is False  # this job ran uncompiled
    assert gen.compiled is True  # compile stays on for the next job (tests/engine/test_compile.py)
    # an error that is not the compiler's still fails the job (once), with its message
    monkeypatch.setattr(gen, "_generate", lambda *a, **k: (_ for _ in ()).throw(ValueError("bad latents")))
    gen.compiled = True
    failed = gen.generate(make_request())
    assert isinstance(failed, JobFailed) and "bad latents" in failed.message and gen.compiled is True


def test_compile_errors_are_told_apart(monkeypatch):
    from shotsketch.engine.speed import compile_wanted, is_compile_error

    try:
        try:
            raise OSError("cc not found")
        except OSError as inner:
            raise RuntimeError("Triton kernel build failed") from inner
    except RuntimeError as exc:
        assert is_compile_error(exc)
    assert not is_compile_error(ValueError("height must be a multiple of 32"))
    assert compile_wanted(True, "cpu") is False
    assert compile_wanted(True, "cpu", "eager") is True and compile_wanted(None, "cpu", "eager") is False
    monkeypatch.setenv("SHOTSKETCH_COMPILE", "0")
    assert compile_wanted(True, "cuda") is False
    monkeypatch.setenv("SHOTSKETCH_COMPILE", "1")
    assert compile_wanted(None, "cuda") is True


def test_warm_up_runs_the_preview_shaped_forward_only_when_compiled():
    gen = Generator(ModelSource.demo(), device="cpu")
    assert gen.warm_up() is False  # nothing compiled on a CPU: nothing to warm
    shapes = []
    gen.pipeline.transformer.register_forward_pre_hook(lambda _m, _a, kw: shapes.append(tuple(kw["hidden_states"].shape)),
                                                       with_kwargs=True)
    gen.compiled = True  # as on a GPU with compile on
    assert gen.needs_warm_up
    assert gen.warm_up(width=96, height=64, frames=5) is True
    assert not gen.needs_warm_up
    assert shapes[0] == (2, 48, 2, 4, 6)  # the batched-CFG preview shape: 2 latent frames of 4x6
    # then one step of a preview with a sketch (its own compiled variant): the pipeline's two calls of a
    # step, answered by one batch-2 forward
    assert shapes[1:] == [(1, 48, 2, 4, 6)] * 2
