"""bench/run.py cases for compiled sketches, step-distilled models, LoRAs, preview latency and
SageAttention (issue 16). Each case measures stock diffusers in the same process where a ratio is
printed; `--tiny` runs the same code on the demo model on a CPU (compile through dynamo's "eager"
backend there, so the recompile counts are real).

    sketch      720p step and 480x832x17 preview, compiled, with and without a layout; recompiles
                after the first job of each kind; the first guided preview against the first unguided
    sketchfast  fast mode (FP8, compiled) 720p step with and without a layout
    distilled   a whole 704x1280x121 clip with the 3-step DMD schedule vs stock's 50 steps
    lora        fusing LoRAs and switching between them (real-size random LoRAs, kohya and Wan layouts)
    latency     the preview as the app's worker runs it: warm-up, prompt encoded ahead, Generate ->
                first step preview -> whole take
    sage        SageAttention's 8-bit kernels for fast mode's self-attention, if the package is installed
"""

from __future__ import annotations

import gc
import os
import tempfile
import time

import torch
from run import PROMPT, STOCK, _step_times, add, gib, peak, rel_err, uncompile  # noqa: I001

from models import stock_pipeline, sync
from shotsketch.core.examples import example_shots
from shotsketch.engine.events import JobFinished, JobStarted, JobStep
from shotsketch.engine.generator import Generator
from shotsketch.engine.memory import MemoryPlan
from shotsketch.engine.requests import GenerationRequest
from shotsketch.engine.sources import ModelSource
from shotsketch.engine.speed import SpeedOptions


def _sizes(args) -> dict[str, tuple[int, int, int]]:
    if args.tiny:
        return {"full": (64, 96, 9), "preview": (64, 96, 5)}
    return {"full": (704, 1280, 121), "preview": (480, 832, 17)}


def _compiled(comps, args, **speed) -> Generator:
    """Ours compiled: inductor on CUDA; on a CPU (--tiny) dynamo with the eager backend."""
    speed = {"compile": True, **({} if args.device == "cuda" else {"compile_backend": "eager"}), **speed}
    plan = MemoryPlan.ALL_ON_GPU if args.device == "cuda" else None
    return Generator(ModelSource.demo(), device=args.device, components=comps, speed=SpeedOptions(**speed),
                     memory_plan=plan)


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _stock_again(comps) -> None:
    """The transformer as stock diffusers has it: our attention processor, fused GELU and compiled
    blocks taken off (a Generator puts them on at load)."""
    from shotsketch.engine.attention import uninstall
    from shotsketch.engine.fused import unfuse_feed_forward

    uninstall(comps["transformer"])
    unfuse_feed_forward(comps["transformer"])
    uncompile(comps["transformer"])


def _fresh_compile_state(comps) -> None:
    _stock_again(comps)
    from torch._dynamo.utils import counters

    counters.clear()


def _stock_step(comps, args, size, steps=4) -> float:
    if "step" in STOCK:
        return STOCK["step"]
    h, w, f = size
    _stock_again(comps)
    comps["vae"].to(torch.float32)
    stock = stock_pipeline(comps)
    pe, ne = stock.encode_prompt(PROMPT, "blurry", True, device=args.device, max_sequence_length=512)
    marks: list[float] = []

    def cb(_p, _i, _t, _kw):
        sync()
        marks.append(time.perf_counter())
        return {}

    sync(); t0 = time.perf_counter()
    stock(prompt_embeds=pe, negative_prompt_embeds=ne, height=h, width=w, num_frames=f, num_inference_steps=steps,
          guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(0), output_type="latent", callback_on_step_end=cb)
    times = [b - a for a, b in zip([t0] + marks[:-1], marks)]
    STOCK["step"] = min(times[1:])
    add("stock", f"stock step {w}x{h}x{f}: WanPipeline, CFG as two forwards", STOCK["step"], None,
        note=f"steps {[round(x, 3) for x in times]}")
    del stock
    return STOCK["step"]


def _stock_preview(comps, args, size, steps) -> float:
    if "preview" in STOCK:
        return STOCK["preview"]
    h, w, f = size
    _stock_again(comps)
    comps["vae"].to(torch.float32)
    stock = stock_pipeline(comps)
    kw = dict(height=h, width=w, num_frames=f, guidance_scale=5.0, output_type="np")
    stock(prompt=PROMPT, negative_prompt="blurry", num_inference_steps=2, **kw)  # warm-up
    ts = []
    for i in range(2):
        sync(); t0 = time.perf_counter()
        stock(prompt=f"{PROMPT} {i}", negative_prompt="blurry", num_inference_steps=steps,
              generator=torch.Generator("cpu").manual_seed(i), **kw)
        sync(); ts.append(time.perf_counter() - t0)
    STOCK["preview"] = min(ts)
    add("stock", f"stock preview {w}x{h}x{f}x{steps}: whole call (text encode + steps + float32 decode)",
        STOCK["preview"], None)
    del stock
    return STOCK["preview"]


def _sketch_rounds(gen, size, steps, first_seed: int, after=None, rounds: int = 3) -> dict[str, list[float]]:  # noqa: ANN001
    """`rounds` rounds of the sketch kinds (no layout, guided, strength 0), each a whole call; seconds
    per kind, in order. `after(kind, request)` runs after each job."""
    results: dict[str, list[float]] = {}
    for round_no in range(rounds):
        for kind, req in _sketch_requests(size, steps, round_no + first_seed):
            sync(); t0 = time.perf_counter()
            final = gen.generate(req)
            sync(); results.setdefault(kind, []).append(time.perf_counter() - t0)
            if not isinstance(final, JobFinished):
                raise RuntimeError(getattr(final, "message", str(final)))
            if after is not None:
                after(kind, req)
    return results


def _sketch_requests(size, steps, round_no: int, **fields) -> list[tuple[str, GenerationRequest]]:
    h, w, f = size
    shots = {s.id: s for s in example_shots()}
    shot = shots["red_car_house" if round_no % 2 == 0 else "yellow_ball"]
    base = dict(width=w, height=h, frames=f, steps=steps, seed=round_no, **fields)
    return [
        ("no layout", GenerationRequest(f"{shot.prompt} plain {round_no}", "blurry", **base)),
        ("layout, guidance 1.0", GenerationRequest(f"{shot.prompt} {round_no}", "blurry", layout_json=shot.layout.to_json(),
                                                   guidance_strength=1.0, **base)),
        ("layout, guidance 0 (maps recorded)", GenerationRequest(f"{shot.prompt} {round_no} off", "blurry",
                                                                 layout_json=shot.layout.to_json(),
                                                                 guidance_strength=0.0, **base)),
    ]


def _guided_steps(gen: Generator, label: str, stock_step: float, size, steps: int, target_note: str, **fields) -> None:
    """Round 0 compiles each kind once; rounds 1-2 must not compile anything; min step per kind."""
    first: dict[str, float] = {}
    best: dict[str, float] = {}
    compiled: dict[str, bool] = {}
    graphs_after_warm = None
    for round_no in range(3):
        if round_no == 1:
            graphs_after_warm = _graphs()
        for kind, req in _sketch_requests(size, steps, round_no, **fields):
            gen.encode_prompts(req.prompt, req.negative_prompt)  # prompt cached: the steps alone
            times, final = _step_times(gen, req)
            if round_no == 0:
                first[kind] = times[0]
            else:
                best[kind] = min(best.get(kind, 1e9), min(times[1:] or times))
            compiled[kind] = compiled.get(kind, True) and bool(final.recipe["speed"]["compiled"])
    recompiles = _graphs() - graphs_after_warm
    plain = best["no layout"]
    for kind in best:
        note = f"first job's first step {first[kind]:.1f} s (compiles); compiled in every job: {compiled[kind]}"
        if kind != "no layout":
            note += f"; {best[kind] / plain:.3f}x the step without a layout ({target_note})"
        add(label, f"ours compiled, {kind}", stock_step, best[kind], note=note)
    add(label, "graphs compiled after the first job of each kind (6 more jobs)", None, recompiles, unit="graphs",
        note="target 0")


def case_sketch(comps, args) -> None:
    """Item 0: compiled with a sketch. 720p step and preview, with and without a layout."""
    sizes = _sizes(args)
    steps = 4
    s_step = _stock_step(comps, args, sizes["full"], steps)
    _fresh_compile_state(comps)
    gen = _compiled(comps, args)
    gen.decode = lambda lat: None
    _guided_steps(gen, "sketch: step 704x1280x121" if not args.tiny else "sketch: step tiny", s_step, sizes["full"],
                  steps, "target <= 1.03x")
    del gen
    gc.collect()
    # preview: whole call, after the app's warm-up; the first guided preview against the first unguided
    h, w, f = sizes["preview"]
    p_steps = 4 if args.tiny else 25
    s_prev = _stock_preview(comps, args, sizes["preview"], p_steps)
    _fresh_compile_state(comps)
    gen = _compiled(comps, args)
    gen.load()
    sync(); t0 = time.perf_counter()
    gen.warm_up(width=w, height=h, frames=f)
    sync(); t_warm = time.perf_counter() - t0
    graphs_warm = _graphs()
    label = "sketch: preview 480x832x17x25" if not args.tiny else "sketch: preview tiny"
    add(label, "warm_up() after loading (unguided forward + one guided preview step)", None, t_warm,
        note=f"{graphs_warm} graphs compiled")
    results = _sketch_rounds(gen, (h, w, f), p_steps, 10)
    for kind, ts in results.items():
        add(label, f"ours compiled, {kind}: first preview after the warm-up (new prompt)", s_prev, ts[0],
            note=f"later ones {[round(t, 3) for t in ts[1:]]}")
    add(label, "first guided preview / first unguided preview", results["no layout"][0], results["layout, guidance 1.0"][0],
        note="target <= 1.0x")
    add(label, "graphs compiled by the previews after the warm-up", None, _graphs() - graphs_warm, unit="graphs",
        note="target 0 (the strength-0 kind may compile once)")
    del gen
    gc.collect()
    _stock_again(comps)


def case_sketchfast(comps, args) -> None:
    """Fast mode (FP8, compiled) 720p step with and without a layout."""
    sizes = _sizes(args)
    s_step = _stock_step(comps, args, sizes["full"])
    _fresh_compile_state(comps)
    gen = _compiled(comps, args)
    gen.decode = lambda lat: None
    _guided_steps(gen, "sketch: fast-mode step 704x1280x121" if not args.tiny else "sketch: fast-mode step tiny",
                  s_step, sizes["full"], 4, "target <= 1.03x", extra=(("mode", "fast"),))
    del gen
    gc.collect()
    _stock_again(comps)


def case_distilled(comps, args) -> None:
    """A whole 704x1280x121 clip: the 3-step DMD schedule (no CFG) against stock's 50 steps."""
    h, w, f = _sizes(args)["full"]
    stock_steps = 50 if not args.tiny else 4
    if args.stock_full or args.tiny:
        _stock_again(comps)
        comps["vae"].to(torch.float32)
        stock = stock_pipeline(comps)
        sync(); t0 = time.perf_counter()
        stock(prompt=PROMPT, negative_prompt="blurry", height=h, width=w, num_frames=f,
              num_inference_steps=stock_steps, guidance_scale=5.0, output_type="np")
        sync(); t_stock = time.perf_counter() - t0
        how = "stock measured end to end"
        del stock
    else:
        s_step = _stock_step(comps, args, (h, w, f))
        t_stock = 0.3 + stock_steps * s_step + 10.5
        how = f"stock extrapolated: encode 0.3 + 50 x step {s_step:.3f} + float32 decode 10.5 s (bench/RESULTS.md)"
    label = "distilled clip 704x1280x121" if not args.tiny else "distilled clip tiny"
    add(label, f"stock: {stock_steps} steps, UniPC, CFG", t_stock, None, note=how)
    _fresh_compile_state(comps)
    speed = {"compile": True, **({} if args.device == "cuda" else {"compile_backend": "eager"})}
    plan = MemoryPlan.ALL_ON_GPU if args.device == "cuda" else None
    for variant, extra in [("ours, distilled: 3 DMD steps, no CFG, compiled", ()),
                           ("ours, distilled: 3 DMD steps, no CFG, compiled, FP8 (fast mode)", (("mode", "fast"),))]:
        gen = Generator(ModelSource.demo(), device=args.device, components=comps, speed=SpeedOptions(**speed),
                        memory_plan=plan, distilled=True)
        times, marks = [], []
        for i in range(2):
            req = GenerationRequest(f"{PROMPT} distilled {i} {variant}", "blurry", width=w, height=h, frames=f,
                                    steps=50, seed=i, extra=extra)
            info: dict = {}
            with peak(info):
                sync(); t0 = time.perf_counter()
                final = gen.generate(req, lambda ev, m=marks: isinstance(ev, JobStep) and m.append(time.perf_counter()))
                sync(); times.append(time.perf_counter() - t0)
            if not isinstance(final, JobFinished):
                raise RuntimeError(getattr(final, "message", str(final)))
        sched = final.recipe.get("schedule")
        add(label, variant + " (prompt not cached)", t_stock, times[1], target=0.1,
            note=f"first call {times[0]:.1f} s (compiles); {gib(info)}; schedule {sched}; "
                 f"FP8 {final.recipe['speed']['fp8_matmuls']}")
        del gen
        gc.collect()
    _stock_again(comps)


def _write_loras(transformer, folder: str, rank: int) -> dict[str, str]:
    """Real-size random LoRAs for every trained layer: one kohya-named, one with the original Wan names."""
    from safetensors.torch import save_file

    modules = dict(transformer.named_modules())
    targets = [(f"self_attn.{o}", f"attn1.{c}") for o, c in zip("qkvo", ["to_q", "to_k", "to_v", "to_out.0"])]
    targets += [(f"cross_attn.{o}", f"attn2.{c}") for o, c in zip("qkvo", ["to_q", "to_k", "to_v", "to_out.0"])]
    targets += [("ffn.0", "ffn.net.0.proj"), ("ffn.2", "ffn.net.2")]
    paths = {}
    for seed, layout in enumerate(("kohya", "wan")):
        g = torch.Generator().manual_seed(seed)
        state = {}
        for i in range(len(transformer.blocks)):
            for wan, ours in targets:
                layer = modules[f"blocks.{i}.{ours}"]
                down = (torch.randn(rank, layer.in_features, generator=g) * 0.01).to(torch.bfloat16)
                up = (torch.randn(layer.out_features, rank, generator=g) * 0.01).to(torch.bfloat16)
                name = f"lora_unet_blocks_{i}_{wan.replace('.', '_')}" if layout == "kohya" else f"diffusion_model.blocks.{i}.{wan}"
                state[f"{name}.lora_down.weight"], state[f"{name}.lora_up.weight"] = down, up
                state[f"{name}.alpha"] = torch.tensor(float(rank))
        paths[layout] = os.path.join(folder, f"{layout}.safetensors")
        save_file(state, paths[layout])
    return paths


def case_lora(comps, args) -> None:
    """Fusing LoRAs and switching between them between jobs (target < 2 s), compiled preview jobs."""
    folder = tempfile.mkdtemp(prefix="shotsketch-lora-")
    paths = _write_loras(comps["transformer"], folder, rank=4 if args.tiny else 32)
    size = os.path.getsize(paths["kohya"]) / 2**20
    h, w, f = _sizes(args)["preview"]
    steps = 4 if args.tiny else 25
    _fresh_compile_state(comps)
    gen = _compiled(comps, args)
    gen.load()
    gen.warm_up(width=w, height=h, frames=f)

    def job(loras, seed):
        req = GenerationRequest(f"{PROMPT} lora {seed}", "blurry", width=w, height=h, frames=f, steps=steps, seed=seed,
                                loras=tuple(loras))
        gen.encode_prompts(req.prompt, req.negative_prompt)
        sync(); t0 = time.perf_counter()
        final = gen.generate(req)
        sync()
        if not isinstance(final, JobFinished):
            raise RuntimeError(getattr(final, "message", str(final)))
        return time.perf_counter() - t0

    t_plain = min(job([], 0), job([], 1))
    graphs = _graphs()
    switches = [("none -> kohya LoRA x1.0", [(paths["kohya"], 1.0)]),
                ("kohya -> Wan-layout LoRA x0.8", [(paths["wan"], 0.8)]),
                ("-> both (x1.0, x0.5)", [(paths["kohya"], 1.0), (paths["wan"], 0.5)]),
                ("the same again (no work)", [(paths["kohya"], 1.0), (paths["wan"], 0.5)]),
                ("-> none (weights put back)", [])]
    label = "lora switch" if not args.tiny else "lora switch tiny"
    from shotsketch.engine.lora import loras_of

    for i, (what, loras) in enumerate(switches):
        switch = GenerationRequest(f"{PROMPT} lora switch {i}", loras=tuple(loras))  # the typed field, as the app sends it
        sync(); t0 = time.perf_counter()
        gen._apply_loras(loras_of(switch))
        sync(); t_switch = time.perf_counter() - t0
        t_job = job(loras, 10 + i)
        add(label, f"{what}: fusing / restoring the weights", None, t_switch, target=None,
            note=f"target < 2 s; then a preview with it {t_job:.3f} s against {t_plain:.3f} s without; "
                 f"LoRA files {size:.0f} MiB each")
    add(label, "graphs compiled by the LoRA jobs", None, _graphs() - graphs, unit="graphs", note="target 0")
    del gen
    gc.collect()
    _stock_again(comps)


def case_latency(comps, args) -> None:
    """The preview as the app's GPU worker drives the engine (shotsketch/ui/worker.py: load, warm_up,
    the prompt encoded ahead while the person writes, then Generate): Generate -> first step preview
    on its way to the screen, and -> the whole take. Qt is not on the GPU machine, so the worker's
    calls are made in its order here, without the Qt thread hop (a queued signal, well under 1 ms)."""
    h, w, f = _sizes(args)["preview"]
    steps = 4 if args.tiny else 25
    s_prev = _stock_preview(comps, args, (h, w, f), steps)
    _fresh_compile_state(comps)
    gen = _compiled(comps, args)
    gen.load()
    gen.warm_up(width=w, height=h, frames=f)
    shot = next(s for s in example_shots() if s.id == "red_car_house")
    label = "preview latency 480x832x17x25" if not args.tiny else "preview latency tiny"
    for variant, ahead, sketch in [("prompt encoded ahead (the app's encode-while-typing)", True, False),
                                   ("new prompt at Generate", False, False),
                                   ("prompt encoded ahead, with a sketch", True, True)]:
        firsts, wholes = [], []
        for i in range(3):
            req = GenerationRequest(f"{shot.prompt} {variant} {i}", "blurry", width=w, height=h, frames=f, steps=steps,
                                    seed=i, layout_json=shot.layout.to_json() if sketch else None,
                                    guidance_strength=1.0 if sketch else 0.0)
            if ahead:
                gen.encode_prompts(req.prompt, req.negative_prompt)
            marks: dict[str, float] = {}

            def on_event(ev, marks=marks):
                if isinstance(ev, JobStep) and ev.preview is not None and "first" not in marks:
                    marks["first"] = time.perf_counter()
                elif isinstance(ev, JobStarted):
                    marks["started"] = time.perf_counter()

            sync(); t0 = time.perf_counter()
            final = gen.generate(req, on_event)
            sync(); t_end = time.perf_counter()
            if not isinstance(final, JobFinished):
                raise RuntimeError(getattr(final, "message", str(final)))
            firsts.append(marks.get("first", t_end) - t0)
            wholes.append(t_end - t0)
        add(label, f"{variant}: Generate -> first step preview", None, min(firsts),
            note=f"all {[round(x, 3) for x in firsts]}; target < 1 s")
        add(label, f"{variant}: Generate -> whole take", s_prev, min(wholes),
            note=f"all {[round(x, 3) for x in wholes]}; target < 2.2 s")
    del gen
    gc.collect()
    _stock_again(comps)


def _sage_attention():
    """sageattention's kernel as an opaque op in the model's [batch, tokens, heads, dim] layout."""
    from sageattention import sageattn

    @torch.library.custom_op("shotsketch_bench::sage", mutates_args=())
    def sage(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return sageattn(query, key, value, tensor_layout="NHD", is_causal=False).contiguous()

    @sage.register_fake
    def _(query, key, value):  # noqa: ANN001, ANN202
        return torch.empty_like(query)

    return sage


def case_sage(comps, args) -> None:
    """SageAttention (8-bit QK) for fast mode's self-attention: speed, and latents after 4 steps
    against exact mode (fast mode's bound: 0.03 relative L2)."""
    try:
        sage = _sage_attention()
    except ImportError as exc:
        add("sage", "SageAttention", None, None, note=f"not installed: {exc}")
        return
    from shotsketch.engine.attention import install, uninstall

    h, w, f = _sizes(args)["full"]
    s_step = _stock_step(comps, args, (h, w, f))
    req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=4, seed=0)
    fast = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=4, seed=0, extra=(("mode", "fast"),))
    results = {}
    for variant, r, use_sage in [("exact (bf16, PyTorch attention)", req, False), ("fast mode: FP8", fast, False),
                                 ("fast mode: FP8 + SageAttention", fast, True),
                                 ("exact + SageAttention (bf16 products)", req, True)]:
        _fresh_compile_state(comps)
        gen = _compiled(comps, args, attention="sdpa")
        gen.load()
        if use_sage:
            install(gen.pipeline.transformer, sage)
        gen.encode_prompts(r.prompt, r.negative_prompt)
        times, final = _step_times(gen, r)
        results[variant] = final.latents
        err = rel_err(final.latents, results["exact (bf16, PyTorch attention)"])
        add("sage: step 704x1280x121" if not args.tiny else "sage: step tiny", variant, s_step, min(times[1:]),
            note=f"steps {[round(x, 3) for x in times]}; latents after 4 steps vs exact: rel. L2 {err:.4f} (bound 0.03)")
        uninstall(gen.pipeline.transformer)
        del gen
        gc.collect()
    _stock_again(comps)


CASES = {"sketch": case_sketch, "sketchfast": case_sketchfast, "distilled": case_distilled, "lora": case_lora,
         "latency": case_latency, "sage": case_sage}
