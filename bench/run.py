"""The benchmark entry: speed of Shotsketch's engine beside stock diffusers, printed as one table.

Real TI2V-5B sizes with random weights built in code on the GPU (speed does not depend on weight
values); every figure of ours is given as a ratio to stock diffusers measured in the same process.

    PYTHONPATH=desktop python bench/run.py                        # every case
    PYTHONPATH=desktop python bench/run.py --cases decode,step    # some of them
    PYTHONPATH=desktop python bench/run.py --tiny                 # the same code on the demo-sized model (CPU check)
    python bench/run.py --merge a.json b.json                     # one table from several runs' --json files

Cases (targets from the speed issue in brackets):
- floor    bf16 matrix product and attention rates on this GPU (what the step times are measured against)
- decode   VAE decode of a full 704x1280x121 clip: stock float32 vs ours [0.4x]
- step     one 704x1280x121 denoising step with CFG: stock vs ours, exact mode [0.67x]; fast mode's FP8
- preview  480x832x17, 25 steps, prompt in -> frames out [0.5x]
- fast     a whole 704x1280x121 clip in fast mode (16 steps, FP8) vs stock at 50 steps [0.3x]
- warmup   the app's warm-up after loading, then the first preview against the next one
- guidance layout adherence with and without layout guidance at preview size (not a speed figure)
- cold     process start -> first preview step, full-size safetensors through the real loaders; ours
           compiled twice (the second start reads the persistent compile cache)
- sketch, sketchfast, distilled, lora, latency, sage: bench/cases_more.py (compiled sketches, step-distilled
           models, LoRA switches, preview latency as the app's worker runs it, SageAttention)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "desktop"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from models import build_components, stock_pipeline, sync  # noqa: E402
from shotsketch.core.examples import example_shots  # noqa: E402
from shotsketch.engine.events import JobFinished, JobStep  # noqa: E402
from shotsketch.engine.generator import Generator  # noqa: E402
from shotsketch.engine.memory import MemoryPlan  # noqa: E402
from shotsketch.engine.requests import FAST_MODE_STEPS, GenerationRequest  # noqa: E402
from shotsketch.engine.sources import ModelSource  # noqa: E402
from shotsketch.engine.speed import SpeedOptions  # noqa: E402

ROWS: list[dict] = []
STOCK: dict[str, float] = {}  # figures later cases reuse (stock encode, step and decode times)
PROMPT = "a red car drives from the left edge to the right edge of the screen, a house stays on the right"


def add(case: str, variant: str, stock: float | None, ours: float | None, *, unit: str = "s",
        target: float | None = None, note: str = "") -> None:
    ratio = ours / stock if stock and ours is not None else None
    r = {"case": case, "variant": variant, "stock": stock, "ours": ours, "unit": unit, "ratio": ratio,
         "target": target, "met": None if ratio is None or target is None else ratio <= target, "note": note}
    ROWS.append(r)
    print("ROW " + json.dumps(r), flush=True)


def table(rows: list[dict]) -> str:
    f = (lambda v: "-" if v is None else (f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"))
    out = ["| case | variant | stock | ours | unit | ours/stock | target | met | note |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        target = "" if r["target"] is None else f"{r['target']:.2f}x"
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        out.append(f"| {r['case']} | {r['variant']} | {f(r['stock'])} | {f(r['ours'])} | {r['unit']} | {ratio} | "
                   f"{target} | {met} | {r['note']} |")
    return "\n".join(out)


@contextmanager
def peak(into: dict):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    yield
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        into["peak"] = torch.cuda.max_memory_allocated() / 2**30


def gib(info: dict) -> str:
    return f"peak {info['peak']:.1f} GiB" if "peak" in info else ""


def uncompile(transformer) -> None:
    """Back to eager blocks (the next variant measures without, or compiles afresh)."""
    for block in transformer.blocks:
        block._compiled_call_impl = None
    torch._dynamo.reset()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


# ------------------------------------------------------------------------------------------ cases
def case_floor(comps, args) -> None:
    if args.device != "cuda":
        return
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from models import seconds_per_call as events

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    t = events(lambda: a @ a)
    add("floor", "bf16 matmul 8192^3", None, 2 * 8192**3 / t / 1e12, unit="TFLOP/s")
    del a
    from shotsketch.engine.fused import linear_gelu_tanh

    for name, m in {"720p": 27280, "preview (CFG batch)": 3900}.items():  # the feed-forward's first product
        x = torch.randn(m, 3072, device="cuda", dtype=torch.bfloat16)
        lin = torch.nn.Linear(3072, 14336, device="cuda", dtype=torch.bfloat16)
        with torch.inference_mode():
            ref = F.gelu(F.linear(x.float(), lin.weight.float(), lin.bias.float()), approximate="tanh")
            t_stock = events(lambda: F.gelu(lin(x), approximate="tanh"))
            t_ours = events(lambda: linear_gelu_tanh(x, lin.weight, lin.bias))
            errs = (rel_err(F.gelu(lin(x), approximate="tanh"), ref), rel_err(linear_gelu_tanh(x, lin.weight, lin.bias), ref))
        add("floor", f"{name} feed-forward product + tanh GELU: separate (stock) vs one cuBLASLt call",
            t_stock * 1000, t_ours * 1000, unit="ms",
            note=f"rel. L2 error vs float32: stock {errs[0]:.4f}, fused {errs[1]:.4f}")
        del x, lin, ref
    from shotsketch.engine.fused import rms_rope, rotate

    def stock_norm_rope(x, w, cos, sin):  # noqa: ANN001, ANN202 - what diffusers runs, compiled as our blocks are
        return rotate(F.rms_norm(x, (3072,), w, 1e-6).unflatten(2, (24, 128)), cos, sin)

    compiled_stock = torch.compile(stock_norm_rope, fullgraph=True)
    for name, (b, s) in {"720p": (1, 27280), "preview (CFG batch)": (2, 1950)}.items():
        x = torch.randn(b, s, 3072, device="cuda", dtype=torch.bfloat16)
        w = torch.rand(3072, device="cuda", dtype=torch.bfloat16) + 0.5
        ang = torch.rand(1, s, 1, 64, device="cuda") * 6
        # bf16 like the model's rotary buffers once the transformer is cast
        cos, sin = (t.repeat_interleave(2, -1).to(torch.bfloat16) for t in (ang.cos(), ang.sin()))
        with torch.inference_mode():
            t_stock = events(lambda: compiled_stock(x, w, cos, sin))
            t_ours = events(lambda: rms_rope(x, w, cos, sin, 1e-6, 24))
            diff = (rms_rope(x, w, cos, sin, 1e-6, 24).float() - stock_norm_rope(x, w, cos, sin).float()).abs()
        add("floor", f"{name} query norm + rotary: inductor's fusion of the stock ops vs our Triton kernel",
            t_stock * 1000, t_ours * 1000, unit="ms",
            note=f"vs eager stock ops: max abs diff {diff.max().item():.4f}, mean {diff.mean().item():.2e}")
        del x, w, cos, sin
    from shotsketch.engine.attention import choose_attention

    have_flash4 = choose_attention("flash4", "cuda") == "flash4"
    for name, (b, s) in {"720p self-attention": (1, 27280), "preview self-attention (CFG batch)": (2, 1950)}.items():
        # the model's layout: [batch, tokens, heads, 128], as the projections produce it
        q, k, v = (torch.randn(b, s, 24, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        flop = 4 * b * 24 * s * s * 128
        rows = 1024  # error against a float32 reference over the first query rows
        ref = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q[:, :rows].float(), k.float()) / 128**0.5, -1)
        ref = torch.einsum("bhqk,bkhd->bqhd", ref, v.float())
        bhsd = [t.transpose(1, 2) for t in (q, k, v)]
        contiguous = [t.contiguous() for t in bhsd]
        kernels = [
            ("cuDNN SDPA (the model's layout, as diffusers calls it)", SDPBackend.CUDNN_ATTENTION,
             lambda: F.scaled_dot_product_attention(*bhsd).transpose(1, 2)),
            ("cuDNN SDPA (contiguous heads-first copies)", SDPBackend.CUDNN_ATTENTION,
             lambda: F.scaled_dot_product_attention(*contiguous).transpose(1, 2)),
            ("flash SDPA", SDPBackend.FLASH_ATTENTION, lambda: F.scaled_dot_product_attention(*bhsd).transpose(1, 2)),
        ]
        if have_flash4:
            kernels.append(("FlashAttention-4", None, lambda: torch.ops.shotsketch.flash4_attention(q, k, v)))
        for label, backend, fn in kernels:
            try:
                note = ""
                with sdpa_kernel(backend) if backend is not None else contextlib.nullcontext():
                    if backend is None:
                        sync(); t0 = time.perf_counter(); fn(); sync()
                        note = f"first call (kernel build) {time.perf_counter() - t0:.1f} s; "
                    t = events(fn)
                    err = rel_err(fn()[:, :rows], ref)
                add("floor", f"{name}, {label}", None, flop / t / 1e12, unit="TFLOP/s",
                    note=f"{note}{t * 1000:.2f} ms a layer; rel. L2 error vs float32 {err:.4f}")
            except Exception as exc:  # noqa: BLE001 - report and go on
                add("floor", f"{name}, {label}", None, None, note=f"unavailable: {str(exc)[:160]}")
        if not have_flash4:
            add("floor", f"{name}, FlashAttention-4", None, None, note="not installed here")
        del q, k, v, bhsd, contiguous, ref


def case_decode(comps, args) -> None:
    """VAE decode of a full clip's latents: stock (float32, as the pipeline) vs ours."""
    from shotsketch.engine.speed import channels_last_convs
    from shotsketch.engine.vae_decode import ConvKind, DecodeOptions, FastDecoder

    lat = (3, 4, 6) if args.tiny else (31, 44, 80)
    label = "decode 704x1280x121" if not args.tiny else "decode tiny"
    vae = comps["vae"]
    vae.to(torch.float32)
    torch.manual_seed(0)
    z = torch.randn(1, 48, *lat, device=args.device)
    torch.backends.cudnn.benchmark = False
    info: dict = {}
    with torch.inference_mode(), peak(info):
        sync(); t0 = time.perf_counter()
        ref = vae.decode(z, return_dict=False)[0]
        sync(); t_stock = time.perf_counter() - t0
    ref = ref.float().cpu()
    STOCK["decode"] = t_stock
    add(label, "stock: diffusers decode, float32 VAE", t_stock, None, note=gib(info))

    def measure(variant: str, fn) -> None:
        with torch.inference_mode():
            fn(z[:, :, :2])  # cuDNN autotuning and kernel compilation on a short clip
            info = {}
            with peak(info):
                sync(); t0 = time.perf_counter()
                out = fn(z)
                sync(); t = time.perf_counter() - t0
        err = (out.float().cpu() - ref).abs()
        add(label, variant, t_stock, t, target=0.4,
            note=f"{gib(info)}; abs err vs fp32 mean {err.mean():.4f} max {err.max():.3f} (range 2.0)")

    if args.device == "cuda":
        vae.to(torch.bfloat16)
        channels_last_convs(vae)
        torch.backends.cudnn.benchmark = True
        measure("ours before: diffusers decode in bf16, channels-last, cuDNN autotune",
                lambda x: vae.decode(x.to(torch.bfloat16), return_dict=False)[0])
    variants = [("ours: fast decoder (conv3d, sub-pixel upsample, fused norm)", DecodeOptions())]
    if args.device == "cuda":
        dec = FastDecoder(vae, DecodeOptions())
        torch.backends.cudnn.benchmark = False
        t0 = time.perf_counter()
        measure("fast decoder, cuDNN autotune off", lambda x, d=dec: d.decode(x.to(vae.dtype)))
        ROWS[-1]["note"] += f"; with its warm-up {time.perf_counter() - t0:.1f} s"
        torch.backends.cudnn.benchmark = True
    if not args.quick:
        variants += [
            ("fast decoder, 2D conv with time taps as channels", DecodeOptions(conv=ConvKind.TAPS2D)),
            ("fast decoder, one 2D conv per time tap", DecodeOptions(conv=ConvKind.SUM2D)),
            ("fast decoder, upsample then 3x3 conv (no sub-pixel)", DecodeOptions(subpixel_upsample=False)),
            ("fast decoder, norm as PyTorch ops (no Triton)", DecodeOptions(triton_norm=False)),
        ]
    for variant, opts in variants:
        dec = FastDecoder(vae, opts)
        t0 = time.perf_counter()
        measure(variant, lambda x, d=dec: d.decode(x.to(vae.dtype)))
        ROWS[-1]["note"] += f"; with its warm-up (autotune on a 2-frame clip) {time.perf_counter() - t0:.1f} s"
    # the preview's decode (5 latent frames at 480x832), stock vs ours
    zp = torch.randn(1, 48, 5, 30, 52, device=args.device) if not args.tiny else z
    with torch.inference_mode():
        vae.to(torch.float32)
        torch.backends.cudnn.benchmark = False
        vae.decode(zp, return_dict=False)
        sync(); t0 = time.perf_counter()
        vae.decode(zp, return_dict=False)
        sync(); tp_stock = time.perf_counter() - t0
        STOCK["decode_preview"] = tp_stock
        if args.device == "cuda":
            vae.to(torch.bfloat16)
            torch.backends.cudnn.benchmark = True
        dec = FastDecoder(vae)
        dec.decode(zp.to(vae.dtype))
        sync(); t0 = time.perf_counter()
        dec.decode(zp.to(vae.dtype))
        sync(); tp = time.perf_counter() - t0
    add("decode 480x832x17", "ours: fast decoder vs stock float32", tp_stock, tp)
    vae.to(torch.float32)
    torch.backends.cudnn.benchmark = False


def _generator(comps, args, **speed) -> Generator:
    speed.setdefault("compile", False)
    plan = MemoryPlan.ALL_ON_GPU if args.device == "cuda" else None
    return Generator(ModelSource.demo(), device=args.device, components=comps, speed=SpeedOptions(**speed),
                     memory_plan=plan)


def _step_times(gen: Generator, req: GenerationRequest) -> tuple[list[float], JobFinished]:
    marks: list[float] = []
    gen.decode = lambda lat: None  # denoising only

    def on_event(ev) -> None:
        if isinstance(ev, JobStep):
            sync()
            marks.append(time.perf_counter())

    sync()
    t0 = time.perf_counter()
    final = gen.generate(req, on_event)
    if not isinstance(final, JobFinished):
        raise RuntimeError(f"generation failed: {getattr(final, 'message', final)}")
    return [b - a for a, b in zip([t0] + marks[:-1], marks)], final


def case_step(comps, args) -> None:
    """One 704x1280x121 step with CFG (two transformer forwards), stock vs ours."""
    h, w, f = (64, 96, 9) if args.tiny else (704, 1280, 121)
    label = "step 704x1280x121" if not args.tiny else "step tiny"
    steps = 4
    comps["vae"].to(torch.float32)
    stock = stock_pipeline(comps)
    sync(); t0 = time.perf_counter()
    pe, ne = stock.encode_prompt(PROMPT, "blurry", True, device=args.device, max_sequence_length=512)  # as __call__
    sync(); STOCK["encode"] = time.perf_counter() - t0
    marks: list[float] = []

    def cb(_p, _i, _t, _kw):
        sync()
        marks.append(time.perf_counter())
        return {}

    sync(); t0 = time.perf_counter()
    stock_latents = stock(prompt_embeds=pe, negative_prompt_embeds=ne, height=h, width=w, num_frames=f,
                          num_inference_steps=steps, guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(0),
                          output_type="latent", callback_on_step_end=cb).frames
    times = [b - a for a, b in zip([t0] + marks[:-1], marks)]
    s_step = min(times[1:])
    STOCK["step"] = s_step
    add(label, "stock: WanPipeline, CFG as two forwards, per-token timesteps", s_step, None,
        note=f"steps {[round(x, 3) for x in times]}")
    if args.device == "cuda":  # how far two stock runs differ when only the attention kernel changes
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            other = stock(prompt_embeds=pe, negative_prompt_embeds=ne, height=h, width=w, num_frames=f,
                          num_inference_steps=steps, guidance_scale=5.0,
                          generator=torch.Generator("cpu").manual_seed(0), output_type="latent").frames
        add(label, f"noise floor: stock with flash instead of cuDNN attention vs stock, latents after {steps} steps",
            None, rel_err(other, stock_latents), unit="rel. L2 error", note="random weights amplify rounding")
    del stock
    req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=steps, seed=0)
    fast_req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=steps, seed=0,
                                 extra=(("mode", "fast"),))
    compile_ok = args.device == "cuda"
    from shotsketch.engine.attention import choose_attention, uninstall
    from shotsketch.engine.fused import unfuse_feed_forward

    have_flash4 = choose_attention("flash4", args.device) == "flash4"
    before = {"attention": "sdpa", "fused_gelu": False, "fused_rope": False}  # the earlier sessions' levers only
    variants = [
        ("ours, exact: uniform timestep (eager)", before, req, None),
        ("ours, exact: + regional compile", {"compile": compile_ok, **before}, req, 0.67),
        ("ours, exact: + regional compile + fused feed-forward GELU",
         {"compile": compile_ok, "attention": "sdpa", "fused_rope": False}, req, 0.67),
        ("ours, exact: + regional compile + fused GELU + fused norm/rotary", {"compile": compile_ok, "attention": "sdpa"},
         req, 0.67),
    ]
    if have_flash4:
        variants.append(("ours, exact: + regional compile + fused GELU + fused norm/rotary + FlashAttention-4",
                         {"compile": compile_ok}, req, 0.67))
    variants.append(("ours, fast mode: + FP8 matrix products (compiled)", {"compile": compile_ok}, fast_req, None))
    if not args.quick:
        variants.append(("ours, fast mode: FP8 matrix products, eager", before, fast_req, None))
    exact_variants = [v[0] for v in variants if v[2] is req]
    latents = {}
    for variant, speed, r, target in variants:
        uncompile(comps["transformer"])  # each variant compiles afresh (dynamo's per-code cache stays small)
        gen = _generator(comps, args, **speed)
        gen.encode_prompts(r.prompt, r.negative_prompt)
        info: dict = {}
        with peak(info):
            times, final = _step_times(gen, r)
        latents[variant] = final.latents
        used = final.recipe.get("speed", {})
        note = f"steps {[round(x, 3) for x in times]}; {gib(info)}; attention {used.get('attention')}"
        if r is fast_req:
            exact = latents[exact_variants[-1] if speed.get("compile") else exact_variants[0]]
            note += (f"; FP8 used: {used.get('fp8_matmuls')}; latents after {steps} steps vs exact "
                     f"({exact_variants[-1] if speed.get('compile') else exact_variants[0]}): "
                     f"rel. L2 error {rel_err(final.latents, exact):.4f}")
        add(label, variant, s_step, min(times[1:]), target=target, note=note)
        del gen
        uninstall(comps["transformer"])
        unfuse_feed_forward(comps["transformer"])
        gc.collect()
    uncompile(comps["transformer"])
    for variant in exact_variants:
        add(label, f"exactness: {variant.removeprefix('ours, exact: ')} vs stock latents after {steps} steps",
            None, rel_err(latents[variant], stock_latents), unit="rel. L2 error",
            note="same seed and embeddings; bf16 tolerance is ~1e-2")


def case_preview(comps, args) -> None:
    """480x832x17, 25 steps, guidance 5, prompt in -> frames out."""
    h, w, f, steps = (64, 96, 5, 4) if args.tiny else (480, 832, 17, 25)
    label = "preview 480x832x17x25" if not args.tiny else "preview tiny"
    comps["vae"].to(torch.float32)
    stock = stock_pipeline(comps)
    kw = dict(height=h, width=w, num_frames=f, guidance_scale=5.0, output_type="np")
    stock(prompt=PROMPT, negative_prompt="blurry", num_inference_steps=2, **kw)  # warm-up
    ts = []
    stock_frames = None
    for i in range(2):
        sync(); t0 = time.perf_counter()
        out = stock(prompt=f"{PROMPT} {i}", negative_prompt="blurry", num_inference_steps=steps,
                    generator=torch.Generator("cpu").manual_seed(i), **kw).frames
        sync(); ts.append(time.perf_counter() - t0)
        if i == 0:
            stock_frames = (out[0] * 255).round()  # [F, H, W, 3] in 0..255
    t_stock = min(ts)
    add(label, "stock: whole call (text encode + 25 steps + float32 decode)", t_stock, None)
    del stock
    compile_ok = args.device == "cuda"
    from shotsketch.engine.attention import choose_attention, uninstall
    from shotsketch.engine.fused import unfuse_feed_forward

    variants = [("ours, exact, compiled, CFG batched", {"compile": compile_ok})]
    if choose_attention("flash4", args.device) == "flash4":
        variants.append(("ours, exact, compiled, CFG batched, PyTorch attention", {"compile": compile_ok, "attention": "sdpa"}))
    variants.append(("ours, exact, compiled, CFG batched, PyTorch attention, GELU and norm/rotary unfused",
                     {"compile": compile_ok, "attention": "sdpa", "fused_gelu": False, "fused_rope": False}))
    variants.append(("ours, exact, compiled, CFG batched, PyTorch attention, unfused, stock UniPC (waits for the GPU)",
                     {"compile": compile_ok, "attention": "sdpa", "fused_gelu": False, "fused_rope": False,
                      "host_scheduler": False}))
    if not args.quick:
        variants += [("ours, exact (eager)", {"attention": "sdpa"}),
                     ("ours, exact, compiled, CFG as two forwards", {"compile": compile_ok, "batch_cfg_max_tokens": 0})]
    for variant, speed in variants:
        uncompile(comps["transformer"])  # each variant compiles afresh (dynamo's per-code cache stays small)
        gen = _generator(comps, args, **speed)
        req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=steps, seed=0)
        sync(); t0 = time.perf_counter()
        final = gen.generate(req)
        sync(); first = time.perf_counter() - t0
        if not isinstance(final, JobFinished):
            raise RuntimeError(getattr(final, "message", str(final)))
        fresh, cached = [], []
        for i in range(2):
            new = GenerationRequest(f"{PROMPT} {i}", "blurry", width=w, height=h, frames=f, steps=steps, seed=i)
            sync(); t0 = time.perf_counter()
            final = gen.generate(new)
            sync(); fresh.append(time.perf_counter() - t0)
            if i == 0 and stock_frames is not None:
                diff = abs(final.frames.astype("float32") - stock_frames)
                frames_note = (f"frames vs stock: mean {diff.mean():.2f}, max {diff.max():.0f} of 255; "
                               f"speed {final.recipe.get('speed')}")
            sync(); t0 = time.perf_counter()
            gen.generate(new)  # the same prompt again (a new seed or sketch): embeddings from the cache
            sync(); cached.append(time.perf_counter() - t0)
        add(label, f"{variant}: new prompt", t_stock, min(fresh), target=0.5,
            note=f"first call {first:.1f} s; {frames_note}")
        add(label, f"{variant}: prompt seen before (embeddings cached)", t_stock, min(cached), target=0.5)
        del gen
        uninstall(comps["transformer"])
        unfuse_feed_forward(comps["transformer"])
        gc.collect()
    uncompile(comps["transformer"])


def case_fast(comps, args) -> None:
    """A whole 704x1280x121 clip in fast mode, prompt in -> frames out; stock at 50 steps."""
    h, w, f = (64, 96, 9) if args.tiny else (704, 1280, 121)
    label = "fast clip 704x1280x121" if not args.tiny else "fast clip tiny"
    stock_steps = 50
    if args.stock_full or not {"encode", "step", "decode"} <= STOCK.keys():
        comps["vae"].to(torch.float32)
        stock = stock_pipeline(comps)
        sync(); t0 = time.perf_counter()
        stock(prompt=PROMPT, negative_prompt="blurry", height=h, width=w, num_frames=f,
              num_inference_steps=stock_steps, guidance_scale=5.0, output_type="np")
        sync(); t_stock = time.perf_counter() - t0
        how = "stock measured end to end"
        del stock
    else:
        t_stock = STOCK["encode"] + stock_steps * STOCK["step"] + STOCK["decode"]
        how = (f"stock extrapolated from this run: encode {STOCK['encode']:.2f} + 50 x step {STOCK['step']:.3f} "
               f"+ decode {STOCK['decode']:.2f} s")
    add(label, f"stock: {stock_steps} steps", t_stock, None, note=how)
    compile_ok = args.device == "cuda"
    for variant, extra in [("ours, fast mode: 16 steps, FP8, compiled", (("mode", "fast"),)),
                           ("ours: 16 steps, bf16, compiled (FP8 off)", ())]:
        gen = _generator(comps, args, compile=compile_ok)
        times = []
        for i in range(2):
            req = GenerationRequest(f"{PROMPT} {variant} {i}", "blurry", width=w, height=h, frames=f,
                                    steps=FAST_MODE_STEPS, seed=i, extra=extra)
            info: dict = {}
            with peak(info):
                sync(); t0 = time.perf_counter()
                final = gen.generate(req)
                sync(); times.append(time.perf_counter() - t0)
            if not isinstance(final, JobFinished):
                raise RuntimeError(getattr(final, "message", str(final)))
        add(label, variant + " (prompt not cached)", t_stock, times[1], target=0.3,
            note=f"first call in the process {times[0]:.1f} s (compiles); {gib(info)}")
        del gen
        gc.collect()
    uncompile(comps["transformer"])


def case_guidance(comps, args) -> None:
    """Adherence with and without guidance at preview size (random weights: the map, not the picture)."""
    h, w, f, steps = (256, 448, 9, 4) if args.tiny else (480, 832, 17, 10)
    gen = _generator(comps, args)
    for strength in (0.0, 1.0):
        scores = []
        for shot in example_shots():
            req = GenerationRequest(shot.prompt, shot.negative_prompt, width=w, height=h, frames=f, steps=steps,
                                    seed=0, layout_json=shot.layout.to_json(), guidance_strength=strength)
            gen.decode = lambda lat: None
            final = gen.generate(req)
            scores += list(final.extras.get("adherence", {}).values())
        mean = sum(scores) / max(1, len(scores))
        add(f"adherence {w}x{h}x{f}x{steps}", f"mean over example shots, layout guidance {'on' if strength else 'off'}",
            None, mean, unit="score", note="random weights: the attention maps, not a picture")


def case_warmup(comps, args) -> None:
    """The app's warm-up after loading: the compiled preview forward built before the first job."""
    h, w, f, steps = (64, 96, 5, 4) if args.tiny else (480, 832, 17, 25)
    uncompile(comps["transformer"])  # fresh dynamo state; inductor's on-disk cache stays (a later app start)
    gen = _generator(comps, args, compile=args.device == "cuda")
    gen.load()
    sync(); t0 = time.perf_counter()
    warmed = gen.warm_up(width=w, height=h, frames=f)
    sync(); t_warm = time.perf_counter() - t0
    times = []
    for i in range(2):
        req = GenerationRequest(f"{PROMPT} warm {i}", "blurry", width=w, height=h, frames=f, steps=steps, seed=i)
        sync(); t0 = time.perf_counter()
        final = gen.generate(req)
        sync(); times.append(time.perf_counter() - t0)
        if not isinstance(final, JobFinished):
            raise RuntimeError(getattr(final, "message", str(final)))
    add("warm-up", "warm_up() right after loading (compile cache on disk warm, as at a later start)", None, t_warm,
        note=f"warmed: {warmed}")
    add("warm-up", "first preview after the warm-up, against the next one (new prompts both)", times[1], times[0])
    del gen
    gc.collect()
    uncompile(comps["transformer"])


def case_cold(args) -> None:
    """Separate processes: stock, ours, ours compiled twice (persistent compile cache)."""
    folder = args.model_dir or tempfile.mkdtemp(prefix="shotsketch-bench-")
    cache = tempfile.mkdtemp(prefix="shotsketch-inductor-")
    # fresh compile caches (inductor's, FlashAttention-4's): the first start below is a first start ever
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, FLASH_ATTENTION_CUTE_DSL_CACHE_DIR=os.path.join(cache, "flash4"))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cold_start.py")

    def run(*what: str) -> dict:
        out = subprocess.run([sys.executable, script, *what], env=env, capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"{what}: {out.stderr[-800:]}")
        return json.loads(lines[-1][7:])

    if not os.path.exists(os.path.join(folder, "model_index.json")):
        w = run("write", folder)
        print(f"# wrote the full-size model in {w['write_s']:.0f} s", flush=True)
    stock = run("stock", folder)
    add("cold start", "stock: from_pretrained(...).to('cuda') -> first preview step", stock["first_step_s"], None,
        note=f"load {stock['load_s']:.1f} s")
    for variant in ("ours", "ours-compiled", "ours-compiled"):
        r = run(variant, folder)
        n = sum(1 for row in ROWS if row["variant"].startswith(f"ours: {variant} ")) + 1
        add("cold start", f"ours: {variant} (start {n})", stock["first_step_s"], r["first_step_s"],
            note=f"load {r['load_s']:.1f} s; attention {r.get('attention')}, compiled {r.get('compiled')}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="floor,decode,step,preview,fast")
    ap.add_argument("--tiny", action="store_true", help="demo-sized model (checks the script on a CPU)")
    ap.add_argument("--quick", action="store_true", help="only the chosen variants")
    ap.add_argument("--stock-full", action="store_true", help="measure stock's 50-step clip instead of extrapolating")
    ap.add_argument("--model-dir", help="cold: a folder for the full-size safetensors (written if missing)")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--merge", nargs="+", help="print one table from these --json files")
    args = ap.parse_args()
    if args.merge:
        rows = []
        for path in args.merge:
            with open(path) as fh:
                rows += json.load(fh)["rows"]
        print(table(rows))
        return
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    import diffusers

    header = f"{dev}, torch {torch.__version__}, diffusers {diffusers.__version__}, {time.strftime('%Y-%m-%d %H:%M')}"
    print(f"# {header}", flush=True)
    cases = args.cases.split(",")
    comps = None
    if any(c != "cold" for c in cases):
        comps = build_components(args.tiny, args.device)
    for name in cases:
        t0 = time.perf_counter()
        try:
            if name == "cold":
                case_cold(args)
            else:
                sys.modules.setdefault("run", sys.modules[__name__])  # bench/cases_more.py adds to these rows
                from cases_guided import CASES as GUIDED
                from cases_more import CASES

                {"floor": case_floor, "decode": case_decode, "step": case_step, "preview": case_preview,
                 "fast": case_fast, "guidance": case_guidance, "warmup": case_warmup, **CASES, **GUIDED}[name](comps, args)
        except Exception as exc:  # noqa: BLE001 - a failed case must not hide the others
            import traceback

            traceback.print_exc()
            add(name, "FAILED", None, None, note=f"{exc.__class__.__name__}: {str(exc)[:300]}")
        print(f"# case {name} took {time.perf_counter() - t0:.0f} s", flush=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": dev, "header": header, "rows": ROWS}, fh, indent=1)
    print(f"\n# {header}\n" + table(ROWS), flush=True)


if __name__ == "__main__":
    main()
