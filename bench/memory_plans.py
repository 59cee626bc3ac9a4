"""Memory plans on smaller cards, emulated with torch.cuda.set_per_process_memory_fraction.

One scenario per process (a fresh CUDA allocator each time):

    PYTHONPATH=desktop python bench/memory_plans.py --card 24 --case full --budget      # auto plan from a 24 GiB budget
    PYTHONPATH=desktop python bench/memory_plans.py --card 24 --case full               # plan from the real free VRAM -> OOM -> fallback
    PYTHONPATH=desktop python bench/memory_plans.py --card 12 --case full --plan group-offload --reference
    PYTHONPATH=desktop python bench/memory_plans.py --card 8 --case preview --budget

Stock baseline in the same process: WanPipeline with enable_model_cpu_offload() and VAE tiling,
the diffusers recipe for small cards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, "desktop")
sys.path.insert(0, "bench")

from models import build_components, stock_pipeline, sync  # noqa: E402
from shotsketch.engine.events import JobFinished, JobStep  # noqa: E402
from shotsketch.engine.generator import Generator  # noqa: E402
from shotsketch.engine.memory import MemoryPlan  # noqa: E402
from shotsketch.engine.requests import GenerationRequest  # noqa: E402
from shotsketch.engine.sources import ModelSource  # noqa: E402

GiB = 2**30
SIZES = {"full": (704, 1280, 121), "preview": (480, 832, 17)}
PROMPT = "a red car drives from the left edge to the right edge of the screen"


def to_cpu(comps) -> None:
    for name in ("transformer", "text_encoder", "vae"):
        comps[name].to("cpu")
    torch.cuda.empty_cache()


def run_ours(comps, req, plan):
    gen = Generator(ModelSource.demo(), device="cuda", components=comps, memory_plan=plan)
    marks = []

    def on_event(ev):
        if isinstance(ev, JobStep):
            sync()
            marks.append(time.perf_counter())

    torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    final = gen.generate(req, on_event)
    sync()
    total = time.perf_counter() - t0
    steps = [b - a for a, b in zip(marks, marks[1:])]
    gen._bench_marks = marks
    return gen, final, total, steps, torch.cuda.max_memory_allocated() / GiB


def marks_of(gen) -> list:
    return getattr(gen, "_bench_marks", [])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--card", type=float, required=True, help="GiB of the emulated card")
    ap.add_argument("--case", choices=list(SIZES), default="full")
    ap.add_argument("--budget", action="store_true", help="tell the engine the card size (SHOTSKETCH_GPU_MEMORY_GIB)")
    ap.add_argument("--plan", help="pin a plan instead of the automatic one")
    ap.add_argument("--reference", action="store_true", help="first time the all-on-GPU step without a cap")
    ap.add_argument("--no-stock", action="store_true")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    h, w, f = (64, 96, 5) if args.tiny else SIZES[args.case]
    comps = build_components(args.tiny, "cuda")
    req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=args.steps, seed=0)
    out = {"card_gib": args.card, "case": args.case, "size": [w, h, f], "steps": args.steps}
    if args.reference:
        gen, final, total, steps, peak = run_ours(comps, req, MemoryPlan.ALL_ON_GPU)
        out["reference_all_on_gpu"] = {"step_s": min(steps) if steps else None, "peak_gib": peak}
        gen.replan(MemoryPlan.CPU)
        del gen
    to_cpu(comps)
    total_gib = torch.cuda.get_device_properties(0).total_memory / GiB
    torch.cuda.set_per_process_memory_fraction(min(1.0, args.card / total_gib))
    if not args.no_stock:
        pipe = stock_pipeline(comps)
        pipe.enable_model_cpu_offload()
        pipe.vae.enable_tiling()
        torch.cuda.reset_peak_memory_stats()
        marks = []

        def cb(_p, _i, _t, _kw):
            sync()
            marks.append(time.perf_counter())
            return {}

        try:
            sync(); t0 = time.perf_counter()
            pipe(prompt=PROMPT, negative_prompt="blurry", height=h, width=w, num_frames=f, num_inference_steps=args.steps,
                 generator=torch.Generator("cpu").manual_seed(0), output_type="np", callback_on_step_end=cb)
            sync()
            steps = [b - a for a, b in zip(marks, marks[1:])]
            out["stock_model_offload"] = {"total_s": time.perf_counter() - t0, "step_s": min(steps) if steps else None,
                                          "peak_gib": torch.cuda.max_memory_allocated() / GiB}
        except torch.cuda.OutOfMemoryError as exc:
            out["stock_model_offload"] = {"error": "out of memory", "detail": str(exc)[:160]}
        pipe.remove_all_hooks()
        del pipe
        to_cpu(comps)
    if args.budget:
        os.environ["SHOTSKETCH_GPU_MEMORY_GIB"] = str(args.card)
    plan = MemoryPlan(args.plan) if args.plan else None
    gen, final, total, steps, peak = run_ours(comps, req, plan)
    out["ours"] = {
        "result": type(final).__name__, "message": getattr(final, "message", None),
        "plan_used": final.recipe["device"]["memory_plan"] if isinstance(final, JobFinished) else gen.memory_plan.value,
        "total_s": total, "step_s": min(steps) if steps else None, "peak_gib": peak, "steps_done": len(marks_of(gen)),
    }
    if not isinstance(final, JobFinished):
        lines = [ln for ln in (getattr(final, "detail", "") or "").splitlines() if ln.strip().startswith("File ")]
        out["ours"]["where"] = lines[-6:]
        out["ours"]["oom"] = (getattr(final, "detail", "") or "").strip().splitlines()[-1:]
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
