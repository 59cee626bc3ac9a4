"""Memory plans on smaller cards, emulated with torch.cuda.set_per_process_memory_fraction, planned
as a real model folder is: a full-size folder written with save_pretrained (random weights), loaded
through the same loader as the app, its plan chosen by the planner from what is free.

One scenario per process (a fresh CUDA allocator each time); `--matrix` runs several, each in its
own process, and prints one table:

    PYTHONPATH=desktop python bench/memory_plans.py --model-dir /tmp/wan5b --card 24 --case full
    PYTHONPATH=desktop python bench/memory_plans.py --model-dir /tmp/wan5b --card 24 --taken 1.5 --case full
    PYTHONPATH=desktop python bench/memory_plans.py --model-dir /tmp/wan5b --matrix 24:preview,24:mid,24:full,24-1.5:full
    PYTHONPATH=desktop python bench/memory_plans.py --tiny --card 8 --case preview      # the script on a CPU

The issue's table (`--cards`): one process per card, each loading the folder once and running, as a
person would in one session, a preview, a 480x832x81 clip, a 704x1280x121 clip and another 720p clip
with a sketch, each a new prompt, the planner choosing before every job; first the all-on-GPU
reference on the uncapped card, the same jobs pinned to that plan:

    PYTHONPATH=desktop python bench/memory_plans.py --model-dir /tmp/wan5b --cards 8,12,16,24,24-1.5,32,48 --json mem.json

`--taken` is that many GiB of the card in use by another process (a display's share): this process
is capped at what is left, and the engine plans for it (SHOTSKETCH_GPU_MEMORY_GIB), as it would see
such a card. Printed per scenario:
the plan chosen, its predicted peak (and the phase) beside the measured peak, whether any job ran
out of memory and was retried (the fallback: it should not happen), the step time, and the
all-on-GPU step time on the uncapped card for the 1.3x target (`--reference`). Stock's recipe for
small cards (model CPU offload + VAE tiling) beside it unless `--no-stock`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "desktop"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from models import build_components, stock_pipeline, sync  # noqa: E402
from shotsketch.engine.events import JobFinished, JobStep  # noqa: E402
from shotsketch.engine.generator import Generator  # noqa: E402
from shotsketch.engine.memory import MemoryPlan  # noqa: E402
from shotsketch.engine.requests import GenerationRequest  # noqa: E402
from shotsketch.engine.sources import ModelSource  # noqa: E402

GiB = 2**30
SIZES = {"full": (704, 1280, 121), "mid": (480, 832, 81), "preview": (480, 832, 17)}
PROMPT = "a red car drives from the left edge to the right edge of the screen"


class Misses(logging.Handler):
    """The engine's own words when the planner missed: out-of-memory retries and prediction misses."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "out of GPU memory" in text or "prediction missed" in text:
            self.lines.append(text.splitlines()[0][:200])


def cap_gib(usable: float) -> None:
    """This process may use `usable` GiB of the GPU, and the engine plans for that much: a card of
    CARD GiB of which another process (a display) holds TAKEN looks the same from in here. (Holding the
    TAKEN GiB as a tensor of this process would put it in the engine's own peak readings.)"""
    total_gib = torch.cuda.get_device_properties(0).total_memory / GiB
    torch.cuda.set_per_process_memory_fraction(min(1.0, usable / total_gib))
    os.environ["SHOTSKETCH_GPU_MEMORY_GIB"] = str(usable)


def write_folder(folder: str, tiny: bool) -> float:
    """The full-size model (random weights) as a diffusers folder, safetensors, as the app would find it."""
    t0 = time.perf_counter()
    comps = build_components(tiny, "cuda" if torch.cuda.is_available() else "cpu")
    stock_pipeline(comps).save_pretrained(folder, safe_serialization=True)
    del comps
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the scenarios run in other processes: leave them the card
    return time.perf_counter() - t0


def run_job(gen: Generator, req: GenerationRequest) -> dict:
    marks: list[float] = []

    def on_event(ev) -> None:
        if isinstance(ev, JobStep):
            sync()
            marks.append(time.perf_counter())

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    sync(); t0 = time.perf_counter()
    final = gen.generate(req, on_event)
    sync()
    end = time.perf_counter()
    steps = [b - a for a, b in zip(marks, marks[1:])]
    out = {"result": type(final).__name__, "total_s": end - t0, "step_s": min(steps) if steps else None,
           "steps_s": steps, "steps_done": len(marks)}
    if marks:  # where a job's time goes besides its steps: before the first (plan, moves, encode, compile)...
        out["until_first_step_s"] = marks[0] - t0
        out["after_last_step_s"] = end - marks[-1]  # ...and after the last (the decode, the frames)
    if isinstance(final, JobFinished):
        out["plan_used"] = final.recipe["device"]["memory_plan"]
        out["memory"] = final.recipe.get("memory", {})
        out["speed"] = final.recipe.get("speed", {})  # compiled, attention, CFG batched steps
    else:
        out["message"] = getattr(final, "message", None)
    if torch.cuda.is_available():
        out["peak_gib"] = torch.cuda.max_memory_allocated() / GiB
    return out


SESSION = [("preview", False), ("mid", False), ("full", False), ("full", True)]  # (size, with a sketch)


def session(args) -> dict:
    """One card: the jobs of SESSION in a row in one process, one load, the planner before each job."""
    from shotsketch.core.examples import example_shots

    device = "cuda" if torch.cuda.is_available() else "cpu"
    out: dict = {"card_gib": args.card, "taken_gib": args.taken, "steps": args.steps, "jobs": []}
    misses = Misses()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")  # to stderr: the card's log
    logging.getLogger("shotsketch").addHandler(misses)
    if device == "cuda" and args.card > 0:
        cap_gib(args.card - args.taken)
    plan = MemoryPlan(args.plan) if args.plan else None
    t0 = time.perf_counter()
    gen = Generator(ModelSource.parse(args.model_dir), device=device, memory_plan=plan)
    out["planned_at_load"] = gen.memory_plan.value
    out["free_gib_seen"] = None if gen.device.free_bytes is None else gen.device.free_bytes / GiB
    gen.load()
    out["load_s"] = time.perf_counter() - t0
    if args.warm_up:  # as the app does after loading, while the first prompt is written
        t0 = time.perf_counter()
        out["warmed_up"] = gen.warm_up()
        out["warm_up_s"] = time.perf_counter() - t0
        print(f"# card {args.card}-{args.taken} warm-up: {out['warmed_up']} in {out['warm_up_s']:.1f} s", flush=True)
    shot = {s.id: s for s in example_shots()}["red_car_house"]
    jobs = [(c, s) for c, s in SESSION if f"{c}{'+sketch' if s else ''}" in args.jobs.split(",")] if args.jobs else SESSION
    for i, (case, sketch) in enumerate(jobs):
        h, w, f = (64, 96, 5) if args.tiny else SIZES[case]
        extra = dict(layout_json=shot.layout.to_json(), guidance_strength=1.0) if sketch else {}
        prompt = (shot.prompt if sketch else PROMPT) + f" take {i}"
        req = GenerationRequest(prompt, "blurry", width=w, height=h, frames=f, steps=args.steps, seed=i, **extra)
        before = len(misses.lines)
        job = run_job(gen, req)
        job.update(case=case, size=[w, h, f], sketch=sketch, misses=misses.lines[before:])
        out["jobs"].append(job)
        print(f"# card {args.card}-{args.taken} {case}{' sketch' if sketch else ''}: {job.get('plan_used')} "
              f"{job.get('memory')} step {job.get('step_s')} total {job['total_s']:.1f} s (until the first step "
              f"{job.get('until_first_step_s', 0):.1f} s, after the last {job.get('after_last_step_s', 0):.1f} s) "
              f"steps {[round(s, 3) for s in job.get('steps_s', [])]} speed {job.get('speed')} misses {job['misses']}",
              flush=True)
    return out


def session_table(results: list[dict]) -> str:
    """One row per job: card, size, plan, predicted and measured peak, retries, step vs all-on-GPU."""
    refs: dict[tuple, float] = {}
    for r in results:
        if r.get("reference"):
            for job in r.get("jobs", []):
                if job.get("step_s"):
                    refs[(job["case"], job["sketch"])] = job["step_s"]
    if not refs:  # no uncapped run: the largest card's jobs that ran all on the GPU are the reference
        for r in sorted((r for r in results if "jobs" in r), key=lambda r: -float(r.get("card_gib") or 0)):
            for job in r["jobs"]:
                if job.get("plan_used") == "gpu" and job.get("step_s") and not job.get("misses"):
                    refs.setdefault((job["case"], job["sketch"]), job["step_s"])
    f2 = (lambda v: "-" if v is None else f"{v:.2f}")
    lines = ["| card GiB | taken | job | plan (decode) | predicted peak GiB | measured peak GiB (reserved) | "
             "OOM retries / misses | step s | all-on-GPU step s | step ratio | job s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        card = "uncapped (reference)" if r.get("reference") else r.get("card_gib")
        if "error" in r:
            lines.append(f"| {card} | {r.get('taken_gib')} | FAILED: {str(r['error'])[:160]} | | | | | | | | |")
            continue
        for job in r["jobs"]:
            mem = job.get("memory", {})
            name = f"{job['case']} {'x'.join(map(str, job['size']))}{' + sketch' if job['sketch'] else ''}"
            ref = refs.get((job["case"], job["sketch"]))
            step = job.get("step_s")
            ratio = f"{step / ref:.2f}x" if step and ref and not r.get("reference") else "-"
            decode = "tiled" if mem.get("tiled_decode") else "untiled"
            lines.append(
                f"| {card} | {r.get('taken_gib')} | {name} | {job.get('plan_used', '-')} ({decode}) | "
                f"{f2(mem.get('predicted_peak_gib'))} ({mem.get('predicted_phase', '-')}) | {f2(mem.get('peak_gib'))} "
                f"({f2(mem.get('peak_reserved_gib'))}) | {len(job['misses'])}{': ' + '; '.join(job['misses'])[:140] if job['misses'] else ''} | "
                f"{f2(step)} | {f2(ref)} | {ratio} | {f2(job.get('total_s'))} |")
    return "\n".join(lines)


def scenario(args) -> dict:
    h, w, f = (64, 96, 5) if args.tiny else SIZES[args.case]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=args.steps, seed=0)
    out: dict = {"card_gib": args.card, "taken_gib": args.taken, "case": args.case, "size": [w, h, f], "steps": args.steps}
    misses = Misses()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")  # to stderr: the card's log
    logging.getLogger("shotsketch").addHandler(misses)
    source = ModelSource.parse(args.model_dir)
    if device == "cuda" and args.card > 0:  # --card 0: the whole card, no cap (the all-on-GPU reference)
        cap_gib(args.card - args.taken)
    if not args.no_stock and device == "cuda":
        from diffusers import WanPipeline

        pipe = WanPipeline.from_pretrained(args.model_dir, torch_dtype=torch.bfloat16, use_safetensors=True)
        pipe.set_progress_bar_config(disable=True)
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
        torch.cuda.empty_cache()
    plan = MemoryPlan(args.plan) if args.plan else None
    t0 = time.perf_counter()
    gen = Generator(source, device=device, memory_plan=plan)
    out["planned"] = gen.memory_plan.value
    out["free_gib_seen"] = None if gen.device.free_bytes is None else gen.device.free_bytes / GiB
    gen.load()
    out["load_s"] = time.perf_counter() - t0
    out["ours"] = run_job(gen, req)
    out["ours_again"] = run_job(gen, GenerationRequest(PROMPT + " again", "blurry", width=w, height=h, frames=f,
                                                       steps=args.steps, seed=1))
    out["misses"] = misses.lines  # out-of-memory retries and prediction misses, in the engine's words
    return out


def table(results: list[dict]) -> str:
    lines = ["| card (GiB) | taken | case | plan | predicted peak | measured peak | OOM retries / misses | step s | "
             "all-on-GPU step s | step ratio | job s | stock offload job s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r.get('card_gib')} | {r.get('taken_gib')} | {r.get('case')} | FAILED: {r['error'][:120]} |"
                         " | | | | | | | |")
            continue
        ours, mem = r["ours"], r["ours"].get("memory", {})
        ref = (r.get("reference_all_on_gpu") or {}).get("step_s")
        step = ours.get("step_s")
        ratio = f"{step / ref:.2f}x" if step and ref else "-"
        stock = r.get("stock_model_offload", {})
        f2 = (lambda v: "-" if v is None else f"{v:.2f}")
        lines.append(
            f"| {r['card_gib']} | {r['taken_gib']} | {r['case']} {r['size']} | {ours.get('plan_used', r['planned'])} | "
            f"{f2(mem.get('predicted_peak_gib'))} | {f2(ours.get('peak_gib'))} | {len(r['misses'])}: {'; '.join(r['misses'])[:160]} | "
            f"{f2(step)} | {f2(ref)} | {ratio} | {f2(ours.get('total_s'))} | {f2(stock.get('total_s')) if 'total_s' in stock else stock.get('error', '-')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", help="a full-size model folder (written here first if it has no model_index.json)")
    ap.add_argument("--card", type=float, default=24, help="GiB of the emulated card (0: the whole card, uncapped)")
    ap.add_argument("--taken", type=float, default=0.0, help="GiB already in use on it (a display)")
    ap.add_argument("--case", choices=list(SIZES), default="full")
    ap.add_argument("--matrix", help="CARD[-TAKEN]:CASE,... : several scenarios, each in its own process")
    ap.add_argument("--cards", help="CARD[-TAKEN],... : the session of jobs on each card, a process per card, "
                                    "after the all-on-GPU reference on the uncapped card")
    ap.add_argument("--session", action="store_true", help="(internal) one card's session in this process")
    ap.add_argument("--no-reference", action="store_true",
                    help="--cards: skip the uncapped reference (the largest card's all-on-GPU jobs stand in)")
    ap.add_argument("--table-from", nargs="+", help="print the --cards table from these --json files")
    ap.add_argument("--plan", help="pin a plan instead of the planner's")
    ap.add_argument("--reference", action="store_true",
                    help="--matrix: first time the all-on-GPU step on the uncapped card, per case, in its own process")
    ap.add_argument("--no-stock", action="store_true")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--jobs", help="--cards: only these of each card's jobs (preview,mid,full,full+sketch; default all)")
    ap.add_argument("--warm-up", action="store_true", help="--cards: the app's warm-up after loading, timed, before the jobs")
    ap.add_argument("--tiny", action="store_true", help="the demo-sized model in a folder (checks the script on a CPU)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.table_from:
        results = []
        for path in args.table_from:
            with open(path) as fh:
                results += json.load(fh)
        print(session_table(results))
        return
    if not args.model_dir:
        import tempfile

        args.model_dir = tempfile.mkdtemp(prefix="shotsketch-model-")
    if not os.path.exists(os.path.join(args.model_dir, "model_index.json")):
        print(f"# wrote the {'demo-size' if args.tiny else 'full-size'} model folder in "
              f"{write_folder(args.model_dir, args.tiny):.0f} s", flush=True)
    if args.session:
        try:
            result = session(args)
        except Exception as exc:  # noqa: BLE001 - the table says what failed
            import traceback

            traceback.print_exc()
            result = {"card_gib": args.card, "taken_gib": args.taken, "error": f"{type(exc).__name__}: {exc}"}
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.cards:
        results = []
        cards = [("0", "", True)] if not args.no_reference else []
        cards += [(c.partition("-")[0], c.partition("-")[2], False) for c in args.cards.split(",")]
        for card, taken, reference in cards:
            cmd = [sys.executable, os.path.abspath(__file__), "--session", "--model-dir", args.model_dir, "--card", card,
                   "--taken", taken or "0", "--steps", str(args.steps)] + (["--jobs", args.jobs] if args.jobs else [])
            cmd += ["--plan", "gpu"] if reference else (["--plan", args.plan] if args.plan else [])
            cmd += ["--tiny"] if args.tiny else []
            cmd += ["--warm-up"] if args.warm_up and not reference else []
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            if args.json:  # the session's log (the engine's warnings: plan moves, misses, compile failures)
                with open(f"{os.path.splitext(args.json)[0]}.card-{card}-{taken or '0'}.log", "w") as fh:
                    fh.write(done.stderr)
            for line in done.stdout.splitlines():
                if line.startswith("# "):
                    print(line, flush=True)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            tail = done.stderr.strip().splitlines()
            result = json.loads(lines[-1][7:]) if lines else {"card_gib": card, "taken_gib": taken,
                                                              "error": tail[-1] if tail else "no result"}
            result["reference"] = reference
            results.append(result)
            print("RESULT " + json.dumps(result), flush=True)
            print(f"# card {card}-{taken} took {time.perf_counter() - t0:.0f} s", flush=True)
            if args.json:  # after every card: a run cut short keeps what it measured
                with open(args.json, "w") as fh:
                    json.dump(results, fh, indent=1)
        print(session_table(results), flush=True)
        return
    if not args.matrix:
        try:
            result = scenario(args)
        except Exception as exc:  # noqa: BLE001 - the table says what failed
            import traceback

            traceback.print_exc()
            result = {"card_gib": args.card, "taken_gib": args.taken, "case": args.case, "error": f"{type(exc).__name__}: {exc}"}
        print("RESULT " + json.dumps(result), flush=True)
        return
    def run(card: str, case: str, taken: str, *extra: str) -> dict:
        cmd = [sys.executable, os.path.abspath(__file__), "--model-dir", args.model_dir, "--card", card, "--case", case,
               "--taken", taken or "0", "--steps", str(args.steps), *extra]
        cmd += [flag for flag, on in (("--no-stock", args.no_stock), ("--tiny", args.tiny)) if on]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        tail = done.stderr.strip().splitlines()
        result = json.loads(lines[-1][7:]) if lines else {"card_gib": card, "taken_gib": taken, "case": case,
                                                          "error": tail[-1] if tail else "no result"}
        print("RESULT " + json.dumps(result), flush=True)
        print(f"# {card}-{taken}:{case} {' '.join(extra)} took {time.perf_counter() - t0:.0f} s", flush=True)
        return result

    items = [(c.partition("-")[0], case, c.partition("-")[2]) for c, _, case in
             (item.partition(":") for item in args.matrix.split(","))]
    references = {}
    if args.reference:  # the all-on-GPU step on the whole card, each case in its own process
        for case in dict.fromkeys(case for _, case, _ in items):
            ref = run("0", case, "", "--plan", "gpu", "--no-stock")
            references[case] = ref.get("ours_again", ref.get("ours", {}))
    results = []
    for card, case, taken in items:
        result = run(card, case, taken)
        if case in references:
            result["reference_all_on_gpu"] = references[case]
        results.append(result)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    print(table(results), flush=True)


if __name__ == "__main__":
    main()
