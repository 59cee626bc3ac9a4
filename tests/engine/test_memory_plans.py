"""The memory planner: each plan's predicted peak for a job, and the fastest plan that fits."""

import json

import pytest
import torch

from shotsketch.engine.memory import (
    GiB, PLAN_ORDER, DeviceChoice, JobShape, MemoryPlan, ModelFootprint, choose_plan, plan_that_fits, predict_peak,
)

FULL = JobShape(guided=True)  # 704x1280x121, compiled, with a sketch
PREVIEW = JobShape(832, 480, 17, batched_cfg=True)
MID = JobShape(832, 480, 81)
MODEL = ModelFootprint.wan_ti2v_5b()


def _card(free_gib: float) -> DeviceChoice:
    return DeviceChoice("cuda", torch.bfloat16, "GPU", int(free_gib * GiB), int(free_gib * GiB))


@pytest.mark.parametrize(("free", "full", "preview"), [
    (8, MemoryPlan.GROUP_OFFLOAD, MemoryPlan.GROUP_OFFLOAD),
    (12, MemoryPlan.GROUP_OFFLOAD, MemoryPlan.MODEL_OFFLOAD),  # a 720p clip with the 11 GiB text encoder does not fit
    (16, MemoryPlan.MODEL_OFFLOAD, MemoryPlan.MODEL_OFFLOAD),
    (22.5, MemoryPlan.MODEL_OFFLOAD, MemoryPlan.MODEL_OFFLOAD),  # a 24 GiB card driving a display
    (24, MemoryPlan.TEXT_ENCODER_OFFLOAD, MemoryPlan.TEXT_ENCODER_OFFLOAD),
    (28, MemoryPlan.TEXT_ENCODER_OFFLOAD, MemoryPlan.ALL_ON_GPU),  # the 720p decode beside every model does not fit
    (32, MemoryPlan.ALL_ON_GPU, MemoryPlan.ALL_ON_GPU),
    (48, MemoryPlan.ALL_ON_GPU, MemoryPlan.ALL_ON_GPU),
])
def test_the_fastest_plan_that_fits_each_card(free, full, preview):
    assert plan_that_fits(int(free * GiB), FULL, MODEL) is full
    assert plan_that_fits(int(free * GiB), PREVIEW, MODEL) is preview
    chosen = predict_peak(full, FULL, MODEL)
    assert chosen.needed <= free * GiB or full is MemoryPlan.GROUP_OFFLOAD
    faster = PLAN_ORDER[:PLAN_ORDER.index(full)]
    assert all(predict_peak(p, FULL, MODEL).needed > free * GiB for p in faster)


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
    # each plan keeps less on the GPU than the one before it
    peaks = [peak(p).peak for p in PLAN_ORDER]
    assert peaks == sorted(peaks, reverse=True)
    # the text encoder comes onto the GPU next to the transformer to encode a new prompt
    te_off = peak(MemoryPlan.TEXT_ENCODER_OFFLOAD, width=832, height=480, frames=17)
    assert te_off.phase == "encode" and te_off.peak >= MODEL.transformer + MODEL.text_encoder


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
    gen.device = _card(16)  # the same jobs on a 16 GiB card: one model at a time, chosen before the job
    prediction = gen._fit_plan(make_request(width=1280, height=704, frames=121))
    assert moves == [MemoryPlan.MODEL_OFFLOAD] and prediction.plan is MemoryPlan.MODEL_OFFLOAD
    assert prediction.needed <= 16 * GiB
    gen.auto_fallback = False  # a plan the user pinned stays
    gen.memory_plan = MemoryPlan.ALL_ON_GPU
    assert gen._fit_plan(make_request(width=1280, height=704, frames=121)).plan is MemoryPlan.ALL_ON_GPU
    assert moves == [MemoryPlan.MODEL_OFFLOAD]
