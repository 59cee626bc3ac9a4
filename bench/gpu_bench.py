"""Speed and memory of Shotsketch's engine beside the stock diffusers WanPipeline, in one run.

Real TI2V-5B size with random weights (speed does not depend on weight values), built in code on
the GPU. Prints one table; every figure of ours is given as a ratio to stock measured in the same
process. `--tiny` runs the same code on the demo-sized model (for checking the script on a CPU).

    PYTHONPATH=desktop python bench/gpu_bench.py --cases full,decode,preview,guidance
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from contextlib import contextmanager

import torch

sys.path.insert(0, "desktop")

from shotsketch.core.examples import example_shots  # noqa: E402
from shotsketch.engine.events import JobStep  # noqa: E402
from shotsketch.engine.generator import Generator  # noqa: E402
from shotsketch.engine.guidance import GuidanceSettings  # noqa: E402
from shotsketch.engine.requests import GenerationRequest  # noqa: E402
from shotsketch.engine.sources import ModelSource  # noqa: E402
from shotsketch.engine.speed import SpeedOptions  # noqa: E402

ROWS: list[dict] = []


def row(case: str, what: str, stock: float | None, ours: float | None, unit: str = "s", note: str = "") -> None:
    r = {"case": case, "what": what, "stock": stock, "ours": ours, "unit": unit, "note": note,
         "ratio": (ours / stock) if stock and ours is not None else None}
    ROWS.append(r)
    ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
    fmt = (lambda v: "-" if v is None else f"{v:.3f}")
    print(f"| {case} | {what} | {fmt(stock)} | {fmt(ours)} | {unit} | {ratio} | {note} |", flush=True)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@contextmanager
def peak(label: dict):
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    yield
    if torch.cuda.is_available():
        label["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30


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


def timed_steps(run, steps: int) -> list[float]:
    """Run a pipeline call whose callback marks each step end; per-step seconds (synced)."""
    marks = []

    def cb(_p, _i, _t, _kw):
        sync()
        marks.append(time.perf_counter())
        return {}

    sync()
    t0 = time.perf_counter()
    run(cb)
    out = []
    prev = t0
    for m in marks:
        out.append(m - prev)
        prev = m
    return out


def case_full(comps, args) -> None:
    """704x1280x121 step time with CFG: stock vs ours (a few steps; the first is warm-up)."""
    h, w, f = (64, 96, 9) if args.tiny else (704, 1280, 121)
    steps = 4
    stock = stock_pipeline(comps)
    pe, ne = stock.encode_prompt("a red car drives from the left to the right", "blurry", True, device=args.device)
    g = torch.Generator("cpu").manual_seed(0)

    def run_stock(cb):
        stock(prompt_embeds=pe, negative_prompt_embeds=ne, height=h, width=w, num_frames=f, num_inference_steps=steps,
              guidance_scale=5.0, generator=g, output_type="latent", callback_on_step_end=cb)

    stock_times = timed_steps(run_stock, steps)
    s_step = min(stock_times[1:])
    row("full 704x1280x121", "step with CFG (stock: 2 forwards)", s_step, None, note=f"steps {[round(x, 3) for x in stock_times]}")
    shot = next(s for s in example_shots() if s.id == "red_car_house")
    for label, speed, layout in [
        ("ours: uniform timestep", SpeedOptions(uniform_timestep=True), None),
        ("ours: + layout guidance (eager)", SpeedOptions(uniform_timestep=True), shot),
        ("ours: + regional compile", SpeedOptions(uniform_timestep=True, compile=not args.tiny), None),
        ("ours: compile + layout guidance", SpeedOptions(uniform_timestep=True, compile=not args.tiny), shot),
    ]:
        gen = Generator(ModelSource.demo(), device=args.device, components=comps, speed=speed)
        gen.layout_guidance.settings = GuidanceSettings(record=False)
        req = GenerationRequest(shot.prompt if layout else "a red car drives from the left to the right", "blurry",
                                width=w, height=h, frames=f, steps=steps, seed=0,
                                layout_json=layout.layout.to_json() if layout else None,
                                guidance_strength=1.0 if layout else 0.0)
        gen.encode_prompts(req.prompt, req.negative_prompt)
        marks = []
        gen.decode = lambda lat: None  # time the denoising only
        sync()
        t0 = time.perf_counter()

        def on_event(ev):
            if isinstance(ev, JobStep):
                sync()
                marks.append(time.perf_counter())

        final = gen.generate(req, on_event)
        times = [b - a for a, b in zip([t0] + marks[:-1], marks)]
        if not times:
            row("full 704x1280x121", label, s_step, None, note=f"failed: {getattr(final, 'message', final)}")
            continue
        row("full 704x1280x121", label, s_step, min(times[1:]), note=f"steps {[round(x, 3) for x in times]}")
        if speed.compile:  # undo the compile for the next variant
            for block in comps["transformer"].blocks:
                if hasattr(block, "_orig_mod"):
                    pass
        del gen
        gc.collect()


def case_decode(comps, args) -> None:
    """VAE decode of a full clip's latents: stock (float32, as the pipeline) vs bf16 + cuDNN autotune."""
    lat_f, lat_h, lat_w = (3, 4, 6) if args.tiny else (31, 44, 80)
    vae = comps["vae"]
    z = torch.randn(1, 48, lat_f, lat_h, lat_w, device=args.device)
    torch.backends.cudnn.benchmark = False
    info: dict = {}
    with torch.inference_mode(), peak(info):
        sync(); t0 = time.perf_counter()
        ref = vae.decode(z.float(), return_dict=False)[0]
        sync(); t_stock = time.perf_counter() - t0
    stock_peak = info.get("peak_gib")
    ref = ref.float().cpu()
    row("decode 704x1280x121", "VAE decode fp32 (stock)", t_stock, None, note=f"peak {stock_peak} GiB")
    if args.device == "cuda":
        vae.to(torch.bfloat16)
        torch.backends.cudnn.benchmark = True
        from shotsketch.engine.speed import channels_last_convs

        with torch.inference_mode():
            for label, prepare in (("ours: bf16 + cuDNN autotune", None),
                                   ("ours: bf16 + cuDNN autotune + channels-last convs", channels_last_convs)):
                if prepare is not None:
                    prepare(vae)
                vae.decode(z[:, :, :2].to(torch.bfloat16), return_dict=False)  # autotune warm-up on a short clip
                info = {}
                with peak(info):
                    sync(); t0 = time.perf_counter()
                    out = vae.decode(z.to(torch.bfloat16), return_dict=False)[0]
                    sync(); t = time.perf_counter() - t0
                err = (out.float().cpu() - ref).abs()
                row("decode 704x1280x121", label, t_stock, t,
                    note=f"peak {info.get('peak_gib', 0):.1f} GiB; |err| mean {err.mean():.4f} max {err.max():.3f} (of 2.0 range)")
                del out
        vae.to(torch.float32)
        for m in vae.modules():
            if isinstance(m, torch.nn.Conv3d):
                m.to(memory_format=torch.contiguous_format)
        torch.backends.cudnn.benchmark = False


def case_preview(comps, args) -> None:
    """480x832x17, 25 steps, guidance 5, prompt in -> frames out."""
    h, w, f, steps = (64, 96, 5, 4) if args.tiny else (480, 832, 17, 25)
    prompt = "a yellow ball rolls from the left edge to the center of the screen"
    stock = stock_pipeline(comps)
    stock(prompt=prompt, negative_prompt="blurry", height=h, width=w, num_frames=f, num_inference_steps=2,
          output_type="np")  # warm-up (kernels, allocator)
    ts = []
    for _ in range(2):
        sync(); t0 = time.perf_counter()
        stock(prompt=prompt, negative_prompt="blurry", height=h, width=w, num_frames=f, num_inference_steps=steps,
              guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(0), output_type="np")
        sync(); ts.append(time.perf_counter() - t0)
    t_stock = min(ts)
    row("preview 480x832x17x25", "stock whole call (text encode + denoise + fp32 decode)", t_stock, None)
    for label, speed in [("ours: uniform timestep, fp32 VAE", SpeedOptions(vae_bf16=False)),
                         ("ours: + bf16 VAE", SpeedOptions(vae_bf16=True)),
                         ("ours: + regional compile", SpeedOptions(vae_bf16=True, compile=not args.tiny))]:
        comps["vae"].to(torch.float32)
        gen = Generator(ModelSource.demo(), device=args.device, components=comps, speed=speed)
        req = GenerationRequest(prompt, "blurry", width=w, height=h, frames=f, steps=steps, seed=0)
        first = time.perf_counter(); gen.generate(req); sync(); first = time.perf_counter() - first
        times = []
        for _ in range(2):
            sync(); t0 = time.perf_counter()
            gen.generate(req)
            sync(); times.append(time.perf_counter() - t0)
        row("preview 480x832x17x25", label + " (prompt cached)", t_stock, min(times), note=f"first call {first:.2f}s")
        del gen
        gc.collect()
    comps["vae"].to(torch.float32)


def case_guidance(comps, args) -> None:
    """Adherence with and without guidance at preview size (random weights: the map, not the picture)."""
    h, w, f, steps = (256, 448, 9, 4) if args.tiny else (480, 832, 17, 10)
    gen = Generator(ModelSource.demo(), device=args.device, components=comps)
    for strength in (0.0, 1.0):
        scores = []
        for shot in example_shots():
            req = GenerationRequest(shot.prompt, shot.negative_prompt, width=w, height=h, frames=f, steps=steps,
                                    seed=0, layout_json=shot.layout.to_json(), guidance_strength=strength)
            gen.decode = lambda lat: None
            final = gen.generate(req)
            scores += list(final.extras.get("adherence", {}).values())
        mean = sum(scores) / max(1, len(scores))
        row(f"adherence {w}x{h}x{f}x{steps}", f"mean over example shots, guidance {'on' if strength else 'off'}",
            None, mean, unit="score")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="full,decode,preview,guidance")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"# {dev}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}", flush=True)
    comps = build_components(args.tiny, args.device)
    print("| case | what | stock | ours | unit | ours/stock | note |\n|---|---|---|---|---|---|---|", flush=True)
    for name in args.cases.split(","):
        try:
            {"full": case_full, "decode": case_decode, "preview": case_preview, "guidance": case_guidance}[name](comps, args)
        except Exception as exc:  # noqa: BLE001 - a failed case must not hide the others
            import traceback

            traceback.print_exc()
            row(name, "FAILED", None, None, note=f"{exc.__class__.__name__}: {str(exc)[:200]}")
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": dev, "torch": torch.__version__, "rows": ROWS}, fh, indent=1)


if __name__ == "__main__":
    main()
