"""The real TI2V-5B parts at full size with random weights, built in code (speed does not depend on
weight values), and the stock diffusers pipeline over them: what every benchmark measures."""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "desktop"))


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds_per_call(fn, reps: int = 5) -> float:  # noqa: ANN001
    """Seconds per call of `fn` after one call to warm it (CUDA events where a GPU is there)."""
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000 / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def build_components(tiny: bool, device: str) -> dict:
    from shotsketch.engine.demo import build_components as demo_components

    if tiny:
        comps = demo_components()
        for name in ("transformer", "text_encoder", "vae"):
            comps[name].to(device)
        return comps
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    comps = demo_components()  # tokenizer + scheduler (the tokenizer's speed is irrelevant)
    t0 = time.perf_counter()
    with torch.device(device):
        torch.manual_seed(0)
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
            text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
        ).to(torch.bfloat16)
        vae = AutoencoderKLWan(
            base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
            temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12,
            patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
            latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
        ).to(torch.float32)
        text_encoder = UMT5EncoderModel(UMT5Config(
            vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
            relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
            dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
        )).to(torch.bfloat16)
    for m in (transformer, vae, text_encoder):
        m.eval().requires_grad_(False)
    comps.update(transformer=transformer, vae=vae, text_encoder=text_encoder)
    n = sum(p.numel() for p in transformer.parameters())
    print(f"# built real-size components in {time.perf_counter() - t0:.1f}s; transformer {n / 1e9:.3f}B params", flush=True)
    return comps


def stock_pipeline(comps: dict):
    from diffusers import WanPipeline

    pipe = WanPipeline(**{k: comps[k] for k in ("tokenizer", "text_encoder", "vae", "scheduler", "transformer")},
                       expand_timesteps=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe
