"""The memory planner: each plan's predicted peak for a job, and the fastest plan that fits."""

import json

import pytest
import torch

from shotsketch.engine.memory import (
    GiB, PLAN_ORDER, DeviceChoice, JobShape, MemoryPlan, ModelFootprint, best_fit, choose_plan, plan_that_fits,
    plan_variants, predict_peak,
)

FULL = JobShape(guided=True)  # 704x1280x121, compiled, with a sketch
PREVIEW = JobShape(832, 480, 17, batched_cfg=True)
MID = JobShape(832, 480, 81)
MODEL = ModelFootprint.wan_ti2v_5b()


def _card(free_gib: float) -> DeviceChoice:
    return DeviceChoice("cuda", torch.bfloat16, "GPU", int(free_gib * GiB), int(free_gib * GiB))


@pytest.mark.parametrize(("free", "full", "full_tiled", "preview"), [
    (8, MemoryPlan.GROUP_OFFLOAD, True, MemoryPlan.GROUP_OFFLOAD),
    # the 720p steps beside the 9.3 GiB transformer do not fit; one model at a time is never chosen (slower)
    (12, MemoryPlan.GROUP_OFFLOAD, True, MemoryPlan.GROUP_OFFLOAD),
    # the transformer stays on the GPU (the encoder streams); the 720p decode beside it goes in tiles
    (16, MemoryPlan.TEXT_ENCODER_OFFLOAD, True, MemoryPlan.TEXT_ENCODER_OFFLOAD),
    (22.5, MemoryPlan.TEXT_ENCODER_OFFLOAD, False, MemoryPlan.TEXT_ENCODER_OFFLOAD),  # a 24 GiB card driving a display
    (24, MemoryPlan.TEXT_ENCODER_OFFLOAD, False, MemoryPlan.TEXT_ENCODER_OFFLOAD),
    (28, MemoryPlan.TEXT_ENCODER_OFFLOAD, False, MemoryPlan.ALL_ON_GPU),  # the 720p decode beside every model does not fit
    (32, MemoryPlan.ALL_ON_GPU, False, MemoryPlan.ALL_ON_GPU),
    (48, MemoryPlan.ALL_ON_GPU, False, MemoryPlan.ALL_ON_GPU),
])
def test_the_fastest_plan_that_fits_each_card(free, full, full_tiled, preview):
    assert plan_that_fits(int(free * GiB), FULL, MODEL) is full
    assert plan_that_fits(int(free * GiB), PREVIEW, MODEL) is preview
    chosen = best_fit(int(free * GiB), FULL, MODEL)
    assert (chosen.plan, chosen.tiled_decode) == (full, full_tiled)
    assert chosen.needed <= free * GiB or full is MemoryPlan.GROUP_OFFLOAD
    # every faster (plan, decode) would not have fitted
    faster = plan_variants()[:plan_variants().index((full, full_tiled))]
    assert all(predict_peak(p, FULL, MODEL, tiled_decode=t).needed > free * GiB for p, t in faster)


def test_choose_plan_plans_for_the_full_clip_by_default():
    assert choose_plan(_card(24)) is MemoryPlan.TEXT_ENCODER_OFFLOAD
    assert choose_plan(_card(24), job=PREVIEW) is MemoryPlan.TEXT_ENCODER_OFFLOAD
    assert choose_plan(_card(40), job=PREVIEW) is MemoryPlan.ALL_ON_GPU
    assert choose_plan(_card(2), demo=True) is MemoryPlan.ALL_ON_GPU
    assert choose_plan(DeviceChoice("cpu", torch.float32, "CPU")) is MemoryPlan.CPU


def test_predictions_follow_size_compile_guidance_fast_mode_and_decode():
    def peak(plan, **changes):
        fields = dict(width=1280, height=704, frames=121, compiled=True)
        fields.update(changes)
        return predict_peak(plan, JobShape(**fields), MODEL)

    for plan in PLAN_ORDER:
        assert peak(plan).peak >= peak(plan, frames=81).peak >= peak(plan, width=832, height=480, frames=17).peak
    gpu = MemoryPlan.ALL_ON_GPU
    assert peak(gpu, compiled=False).phases["denoise"] > peak(gpu).phases["denoise"]  # eager keeps more
    assert peak(gpu, guided=True).phases["denoise"] > peak(gpu).phases["denoise"]
    assert peak(gpu, batched_cfg=True).phases["denoise"] > peak(gpu).phases["denoise"]
    assert peak(gpu, fp8=True).peak - peak(gpu).peak == pytest.approx(MODEL.fp8_copy)
    assert peak(MemoryPlan.TEXT_ENCODER_OFFLOAD, fp8=True).peak == peak(MemoryPlan.TEXT_ENCODER_OFFLOAD).peak
    assert peak(gpu, decode=False).phase != "decode"
    # the text K/V cache (opt-in) on a preview: every block's keys and values for both rows
    small = dict(width=832, height=480, frames=17, batched_cfg=True)
    assert (peak(gpu, text_kv=True, **small).phases["denoise"] - peak(gpu, **small).phases["denoise"]
            == 2 * MODEL.text_kv_per_row == 2 * 30 * 2 * 512 * 3072 * 2)
    assert peak(gpu, text_kv=True).phases == peak(gpu).phases  # 720p: more tokens than it is kept for
    # each plan keeps less on the GPU than the one before it
    peaks = [peak(p).peak for p in PLAN_ORDER]
    assert peaks == sorted(peaks, reverse=True)
    # the text encoder streams its blocks through the GPU next to the transformer: never all of it
    te_off = peak(MemoryPlan.TEXT_ENCODER_OFFLOAD, width=832, height=480, frames=17)
    assert te_off.phase == "encode"
    assert MODEL.transformer + MODEL.vae + MODEL.text_encoder_streamed <= te_off.peak < MODEL.transformer + MODEL.text_encoder
    # a tiled decode needs less than the untiled one beside the transformer, and says so
    te_tiled = predict_peak(MemoryPlan.TEXT_ENCODER_OFFLOAD, FULL, MODEL, tiled_decode=True)
    te_untiled = predict_peak(MemoryPlan.TEXT_ENCODER_OFFLOAD, FULL, MODEL)
    assert te_tiled.tiled_decode and not te_untiled.tiled_decode
    assert te_tiled.phases["decode"] < te_untiled.phases["decode"] and te_untiled.phase == "decode"


def test_footprint_from_a_folder_matches_the_loaded_modules(tmp_path):
    from shotsketch.engine.demo import build_pipeline

    pipe = build_pipeline()
    pipe.save_pretrained(tmp_path, safe_serialization=True)
    from_folder = ModelFootprint.from_folder(tmp_path, vae_bytes_per_param=4)
    from_modules = ModelFootprint.from_modules(pipe.transformer, pipe.text_encoder, pipe.vae, vae_bytes_per_param=4)
    assert from_folder == from_modules
    assert from_folder.transformer == sum(p.numel() for p in pipe.transformer.parameters()) * 2
    # a folder whose weights cannot be read gives no footprint (the planner then uses the 5B's)
    (tmp_path / "transformer" / "config.json").write_text(json.dumps({"num_attention_heads": 2}))
    assert ModelFootprint.from_folder(tmp_path) is None
    assert ModelFootprint.from_folder(tmp_path / "nowhere") is None


def test_the_published_5b_counts_match_its_classes():
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
            text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    assert MODEL.transformer == sum(p.numel() for p in transformer.parameters()) * 2
    assert MODEL.fp8_copy == sum(p.numel() for b in transformer.blocks for p in b.parameters())


def test_a_job_that_does_not_fit_moves_to_a_leaner_plan_before_it_runs(make_request, monkeypatch):
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.sources import ModelSource

    gen = Generator(ModelSource.demo(), device="cpu")
    gen.footprint = MODEL  # as for the real model on a 24 GiB card
    gen.device = _card(24)
    gen.memory_plan = MemoryPlan.TEXT_ENCODER_OFFLOAD
    moves = []
    monkeypatch.setattr(gen, "replan", lambda plan: moves.append(plan) or setattr(gen, "memory_plan", plan))
    assert gen._fit_plan(make_request(width=832, height=480, frames=17)).plan is MemoryPlan.TEXT_ENCODER_OFFLOAD
    assert gen._fit_plan(make_request(width=1280, height=704, frames=121)).plan is MemoryPlan.TEXT_ENCODER_OFFLOAD
    assert moves == []
    gen.device = _card(16)  # a 16 GiB card: the transformer stays, the 720p decode goes in tiles
    prediction = gen._fit_plan(make_request(width=1280, height=704, frames=121))
    assert moves == [] and prediction.plan is MemoryPlan.TEXT_ENCODER_OFFLOAD and prediction.tiled_decode
    assert prediction.needed <= 16 * GiB
    assert not gen._fit_plan(make_request(width=832, height=480, frames=17)).tiled_decode  # a preview decodes whole
    gen.device = _card(12)  # a 12 GiB card: the 720p clip streams the blocks, and so does the next preview
    assert gen._fit_plan(make_request(width=1280, height=704, frames=121)).plan is MemoryPlan.GROUP_OFFLOAD
    assert gen._fit_plan(make_request(width=832, height=480, frames=17)).plan is MemoryPlan.GROUP_OFFLOAD
    assert moves == [MemoryPlan.GROUP_OFFLOAD]
    gen.device = _card(24)  # room again (another program closed): back to the faster plan
    assert gen._fit_plan(make_request(width=832, height=480, frames=17)).plan is MemoryPlan.TEXT_ENCODER_OFFLOAD
    assert moves == [MemoryPlan.GROUP_OFFLOAD, MemoryPlan.TEXT_ENCODER_OFFLOAD]
    gen.auto_fallback = False  # a plan the user pinned stays
    gen.memory_plan = MemoryPlan.MODEL_OFFLOAD
    assert gen._fit_plan(make_request(width=1280, height=704, frames=121)).plan is MemoryPlan.MODEL_OFFLOAD
    assert len(moves) == 2


def test_the_planner_sees_what_other_programs_took_since_start(make_request, monkeypatch):
    """A display or another app taking GPU memory after start is taken off what the planner uses."""
    from shotsketch.engine import generator as generator_module
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.sources import ModelSource

    gen = Generator(ModelSource.demo(), device="cpu")
    gen.footprint = MODEL
    gen.device = _card(24)
    gen.memory_plan = MemoryPlan.TEXT_ENCODER_OFFLOAD
    gen._others_at_start = 1 * GiB
    monkeypatch.setattr(generator_module.torch.cuda, "is_available", lambda: True)
    taken = {"now": 1 * GiB}
    monkeypatch.setattr(generator_module, "_memory_held_by_others", lambda: taken["now"])
    monkeypatch.setattr(gen, "replan", lambda plan: setattr(gen, "memory_plan", plan))
    assert gen._free_now() == 24 * GiB
    assert not gen._fit_plan(make_request(width=1280, height=704, frames=121)).tiled_decode
    taken["now"] = 7 * GiB  # 6 GiB more in use by others: 18 GiB left, the 720p decode goes in tiles
    assert gen._free_now() == 18 * GiB
    assert gen._fit_plan(make_request(width=1280, height=704, frames=121)).tiled_decode


def test_frames_as_uint8_in_chunks_equals_the_whole_conversion():
    from shotsketch.engine.generator import frames_as_uint8

    video = torch.rand(1, 3, 9, 16, 24, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2  # beyond [-1, 1] too
    whole = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
    for chunk in (1, 3 * 16 * 24 * 4 * 2, 10**9):  # one frame, two frames, all at once
        got = frames_as_uint8(video, chunk_bytes=chunk)
        assert got.shape == (9, 16, 24, 3) and got.dtype == whole.dtype
        assert (got == whole).all()


def test_group_offloading_comes_off_a_module_and_it_runs_as_before():
    """A plan change takes diffusers' group offloading off the transformer (replan) and the text
    encoder's stack; the model then computes what it computed before."""
    from diffusers.hooks import apply_group_offloading

    from shotsketch.engine.demo import build_components
    from shotsketch.engine.generator import _remove_group_offloading

    transformer = build_components()["transformer"]
    x = torch.randn(1, 48, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 8, transformer.config.text_dim, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([500.0])
    with torch.no_grad():
        before = transformer(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    apply_group_offloading(transformer, onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                           offload_type="block_level", num_blocks_per_group=1)
    hooked = [m for m in transformer.modules() if getattr(m, "_diffusers_hook", None) is not None
              and m._diffusers_hook.get_hook("group_offloading") is not None]
    assert hooked
    _remove_group_offloading(transformer)
    assert all(m._diffusers_hook.get_hook("group_offloading") is None for m in hooked)
    with torch.no_grad():
        after = transformer(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    torch.testing.assert_close(after, before)


def _offload_as_on_a_cuda_stream(module: torch.nn.Module) -> None:
    """diffusers' block-level group offloading as it goes on with use_stream=True (a CUDA stream, which
    this CPU lacks): the groups' hooks, then the lazy-prefetch hook on the module, which puts a layer
    execution tracker on every block until the first forward has run."""
    from diffusers.hooks import HookRegistry, apply_group_offloading
    from diffusers.hooks.group_offloading import LazyPrefetchGroupOffloadingHook

    apply_group_offloading(module, onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                           offload_type="block_level", num_blocks_per_group=1)
    HookRegistry.check_if_exists_or_initialize(module).register_hook(
        LazyPrefetchGroupOffloadingHook(), "lazy_prefetch_group_offloading")


def test_a_plan_changed_before_any_forward_can_stream_the_blocks_again():
    """Bench session 7, 12 GiB card: loaded with the blocks streamed, the first job planned another plan
    before any forward had run, and the 720p job that went back to streaming failed with "Hook with
    name layer_execution_tracker already exists". Every hook of the offloading comes off."""
    from shotsketch.engine.demo import build_components
    from shotsketch.engine.generator import _remove_group_offloading

    transformer = build_components()["transformer"]
    _offload_as_on_a_cuda_stream(transformer)
    names = {name for m in transformer.modules() if getattr(m, "_diffusers_hook", None) is not None
             for name in m._diffusers_hook.hooks}
    assert "layer_execution_tracker" in names  # what the stream path leaves before its first forward
    _remove_group_offloading(transformer)
    left = {name for m in transformer.modules() if getattr(m, "_diffusers_hook", None) is not None
            for name in m._diffusers_hook.hooks}
    assert not left & {"layer_execution_tracker", "lazy_prefetch_group_offloading", "group_offloading"}
    _offload_as_on_a_cuda_stream(transformer)  # raised ValueError before the fix
