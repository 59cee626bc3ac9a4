"""Several GPUs of one machine: a whole 704x1280x121 clip (50 steps, prompt in -> frames out) on one GPU
and on N, as speed-up over the default one-GPU path of the same run; the denoising and the decode
apart; the 480x832x17 preview's latency; the latents after the same steps compared with one GPU's.

    python bench/multi_gpu.py                # 1 GPU, then every visible GPU in each mode; one table
    python bench/multi_gpu.py --gpus 1,2,4   # chosen GPU counts (each > 1 in each --modes)
    python bench/multi_gpu.py --tiny         # demo model, 2 CPU processes over gloo (checks the script)

Each configuration runs in its own processes (torchrun for N > 1) on the real TI2V-5B parts with
seeded random weights (the same weights in every run; bench/models.py), with Shotsketch's default
levers (compile, fused kernels, fast decode, uniform timestep, host-side UniPC). Modes: `ulysses`
(the sequence split over all GPUs) and `cfg` (the prompt's and the negative's forward on separate
halves, each half splitting the sequence when it has more than one GPU).

Per configuration, in this order:
  warm-up     the app's warm-up after loading (compiles the preview size)
  preview     480x832x17, 25 steps, guidance 5, a new prompt each call: whole call (latency), best of 2
  720p        one 1-step call (compiles this size), then a --steps call with a new prompt, CUDA-synced
              at each step: s/step = mean over the steps after the first; decode timed on its own;
              its latents compared with the 1-GPU run's (relative L2, same seed and prompt; the bf16
              noise floor is 0.014-0.032) and its frames (mean |difference| of every 10th frame, of 255)
  guided      the same size with a sketch (layout guidance 1.0), 3 steps: s/step of steps 2..3, adherence
  clip        the whole 50-step call, measured when the --budget-s allows it, else extrapolated as
              the --steps call + (50 - steps) x s/step (the table says which)

It prints one line per measurement as it goes, then the table. Within the budget (default 500 s,
all configurations together) whatever is left out is said so; a configuration running past the
budget is stopped and the table shows what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "desktop"))
sys.path.insert(0, HERE)

PROMPT = "a red car drives from the left edge to the right edge of the screen, a house stays on the right"
FULL_STEPS = 50


def sizes(tiny: bool) -> dict:
    if tiny:
        return {"preview": (64, 96, 5, 4), "clip": (128, 224, 9), "full_steps": 6}
    return {"preview": (480, 832, 17, 25), "clip": (704, 1280, 121), "full_steps": FULL_STEPS}


# ----------------------------------------------------------------------------- one configuration
def rank_run(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from models import build_components, sync
    from shotsketch.engine.events import JobFinished, JobStep
    from shotsketch.engine.memory import MemoryPlan
    from shotsketch.engine.requests import GenerationRequest
    from shotsketch.engine.sources import ModelSource

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = "cpu" if args.tiny else "cuda"
    if args.tiny:
        torch.set_num_threads(1)
    ranks = None
    if world > 1:
        import torch.distributed as dist

        from shotsketch.engine.parallel import init_ranks

        ranks = init_ranks(device, args.timeout_s)
    first = ranks is None or ranks.is_first
    out: dict = {"gpus": world, "mode": args.mode if world > 1 else "one GPU", "rows": {}, "notes": []}

    def record(key: str, value, note: str = "") -> None:
        out["rows"][key] = value
        if first:
            print(f"[{world} GPU {out['mode']}] {key}: {value}{'  (' + note + ')' if note else ''}", flush=True)
            with open(args.json_out, "w") as fh:  # after each figure: a run stopped at the budget keeps them
                json.dump(out, fh)

    t0 = time.perf_counter()
    comps = build_components(args.tiny, device)
    if ranks is not None:  # the same weights on every rank, whatever the RNG did
        for name in ("transformer", "text_encoder", "vae"):
            for t in list(comps[name].parameters()) + list(comps[name].buffers()):
                dist.broadcast(t.data, 0)
    plan = MemoryPlan.ALL_ON_GPU if device == "cuda" else None
    if ranks is None:
        from shotsketch.engine.generator import Generator

        gen = Generator(ModelSource.demo(), device=device, components=comps, memory_plan=plan)
    else:
        from shotsketch.engine.parallel import RankGenerator

        gen = RankGenerator(ModelSource.demo(), ranks, mode=args.mode, components=comps, memory_plan=plan)
    gen.load()
    record("build + load s", round(time.perf_counter() - t0, 1))
    out["notes"].append(f"attention {gen.attention}, compiled {gen.compiled}")
    decode_times: list[float] = []
    decode = gen.decode

    def timed_decode(latents):  # noqa: ANN001, ANN202
        sync()
        t = time.perf_counter()
        frames = decode(latents)
        sync()
        decode_times.append(time.perf_counter() - t)
        return frames

    gen.decode = timed_decode
    sz = sizes(args.tiny)
    t = time.perf_counter()
    warmed = gen.warm_up(*(sz["preview"][1], sz["preview"][0], sz["preview"][2]))
    sync()
    record("warm-up s", round(time.perf_counter() - t, 1), "compiles the preview size" if warmed else "nothing to warm")

    def call(req: GenerationRequest, marks: list[float] | None = None):  # noqa: ANN202
        def on_event(ev) -> None:  # noqa: ANN001
            if marks is not None and isinstance(ev, JobStep):
                sync()
                marks.append(time.perf_counter())

        sync()
        t = time.perf_counter()
        final = gen.generate(req, on_event)
        sync()
        if not isinstance(final, JobFinished):
            raise RuntimeError(f"generation failed: {getattr(final, 'message', final)}\n{getattr(final, 'detail', '')}")
        return final, time.perf_counter() - t

    h, w, f, steps = sz["preview"]
    previews = [call(GenerationRequest(f"{PROMPT} preview {i}", "blurry", width=w, height=h, frames=f, steps=steps,
                                       seed=i))[1] for i in range(2)]
    record("preview s", round(min(previews), 3), f"{h}x{w}x{f}, {steps} steps, whole call, new prompt")

    h, w, f = sz["clip"]
    decode_times.clear()
    _, first_call = call(GenerationRequest(f"{PROMPT} warm", "blurry", width=w, height=h, frames=f, steps=1, seed=1))
    record("clip compile + 1 step s", round(first_call, 1))
    marks: list[float] = []
    decode_times.clear()
    req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=args.steps, seed=7)
    final, total = call(req, marks)
    per_step = (marks[-1] - marks[0]) / (len(marks) - 1) if first else 0.0  # events reach rank 0 only
    record("denoise s/step", round(per_step, 4), f"mean of steps 2..{args.steps}")
    record("decode s", round(decode_times[-1], 3) if decode_times else None)
    record(f"{args.steps}-step call s", round(total, 2), "prompt in -> frames out")
    full_steps = sz["full_steps"]
    estimate = total + (full_steps - args.steps) * per_step
    from shotsketch.core.examples import example_shots

    shot = example_shots()[0]  # with a sketch: layout guidance's maps are recorded per rank and summed
    guided = GenerationRequest(shot.prompt, shot.negative_prompt, width=w, height=h, frames=f, steps=3, seed=7,
                               layout_json=shot.layout.to_json(), guidance_strength=1.0)
    gmarks: list[float] = []
    try:
        gfinal, _ = call(guided, gmarks)
        if first:
            record("guided denoise s/step", round((gmarks[-1] - gmarks[0]) / (len(gmarks) - 1), 4),
                   f"a sketch, layout guidance 1.0, steps 2..3; compiled {gfinal.recipe.get('speed', {}).get('compiled')}; "
                   f"adherence {', '.join(f'{k} {v:.2f}' for k, v in gfinal.adherence.items())}")
    except RuntimeError as exc:
        record("guided denoise s/step", None, f"FAILED: {str(exc).splitlines()[0]}")
    if first:
        lat = final.latents.float().cpu().numpy()
        frames = final.frames[::10]
        tag = os.path.join(args.scratch, "one-gpu")
        if world == 1:
            np.save(tag + "-latents.npy", lat)
            np.save(tag + "-frames.npy", frames)
        elif os.path.exists(tag + "-latents.npy"):
            ref, ref_frames = np.load(tag + "-latents.npy"), np.load(tag + "-frames.npy")
            rel = float(np.linalg.norm(lat - ref) / max(np.linalg.norm(ref), 1e-12))
            record("latents rel L2 vs 1 GPU", round(rel, 5), f"after {args.steps} steps, same seed; target < 0.05")
            if ref_frames.shape == frames.shape:
                record("frames mean |diff| vs 1 GPU", round(float(np.abs(frames.astype(np.float32) - ref_frames).mean()), 3),
                       "of 255, every 10th frame")
    run_full = args.deadline > 0 and time.time() + estimate * 1.1 + args.reserve_s < args.deadline
    if ranks is not None:
        run_full = ranks.broadcast(run_full)
    if run_full:
        req = GenerationRequest(f"{PROMPT} full", "blurry", width=w, height=h, frames=f, steps=full_steps, seed=7)
        decode_times.clear()
        _, full = call(req)
        record("clip s", round(full, 2), f"measured: whole {full_steps}-step call")
        record("clip measured", True)
    else:
        record("clip s", round(estimate, 2), f"extrapolated: {args.steps}-step call + {full_steps - args.steps} x s/step")
        record("clip measured", False)
    if first and device == "cuda":
        record("peak GiB", round(torch.cuda.max_memory_allocated() / 2**30, 1))
    if ranks is not None:
        import torch.distributed as dist

        dist.barrier(group=ranks.control)
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- all configurations
def ratio(base, value) -> str:  # noqa: ANN001
    return f"{base / value:.2f}x" if base and value else "-"


def table(results: list[dict]) -> str:
    base = next((r["rows"] for r in results if r["gpus"] == 1), {})
    head = ("| GPUs | mode | denoise s/step | speed-up | decode s | speed-up | 50-step clip s | speed-up | "
            "preview s | latents rel L2 / frames diff vs 1 GPU |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in results:
        rows = r["rows"]
        clip = rows.get("clip s")
        clip_text = "-" if clip is None else f"{clip}{'' if rows.get('clip measured') else ' (extrapolated)'}"
        parity = "-"
        if "latents rel L2 vs 1 GPU" in rows:
            parity = f"{rows['latents rel L2 vs 1 GPU']} / {rows.get('frames mean |diff| vs 1 GPU', '-')}"
        lines.append(
            f"| {r['gpus']} | {r['mode']} | {rows.get('denoise s/step', '-')} | "
            f"{ratio(base.get('denoise s/step'), rows.get('denoise s/step'))} | {rows.get('decode s', '-')} | "
            f"{ratio(base.get('decode s'), rows.get('decode s'))} | {clip_text} | {ratio(base.get('clip s'), clip)} | "
            f"{rows.get('preview s', '-')} ({ratio(base.get('preview s'), rows.get('preview s'))}) | {parity} |")
    return "\n".join(lines)


def run_config(args: argparse.Namespace, gpus: int, mode: str, deadline: float, reserve: float, scratch: str) -> dict | None:
    json_out = os.path.join(scratch, f"result-{gpus}-{mode}.json")
    common = [os.path.abspath(__file__), "--rank-run", "--mode", mode, "--json-out", json_out, "--steps", str(args.steps),
              "--deadline", str(deadline), "--reserve-s", str(reserve), "--scratch", scratch,
              "--timeout-s", str(args.timeout_s)] + (["--tiny"] if args.tiny else [])
    if gpus == 1:
        cmd = [sys.executable] + common
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"] + common
    env = dict(os.environ, PYTHONUNBUFFERED="1", SHOTSKETCH_COLLECTIVE_TIMEOUT_S=str(args.timeout_s))
    print(f"# {gpus} GPU(s), {mode}: {' '.join(cmd[1:3]) if gpus > 1 else 'one process'}", flush=True)
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        proc.wait(timeout=max(10.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        print(f"# {gpus} GPU(s), {mode}: stopped at the time budget; the table shows what it measured", flush=True)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode:
        print(f"# {gpus} GPU(s), {mode}: exited with {proc.returncode}", flush=True)
    if not os.path.exists(json_out):
        return None
    with open(json_out) as fh:
        return json.load(fh)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpus", help="GPU counts, e.g. 1,2 (default: 1 and every visible GPU)")
    ap.add_argument("--modes", default="ulysses,cfg", help="multi-GPU modes: ulysses, cfg")
    ap.add_argument("--steps", type=int, default=5, help="steps of the timed 720p call (>= 3)")
    ap.add_argument("--budget-s", type=float, default=500.0, help="all configurations together")
    ap.add_argument("--timeout-s", type=float, default=180.0, help="collective timeout in the workers")
    ap.add_argument("--tiny", action="store_true", help="demo model on the CPU, 2 gloo processes")
    ap.add_argument("--json", help="write every configuration's figures here")
    ap.add_argument("--rank-run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="ulysses", help=argparse.SUPPRESS)
    ap.add_argument("--json-out", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--reserve-s", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.steps = max(3, args.steps)
    if args.rank_run:
        rank_run(args)
        return
    t_start = time.time()
    if args.gpus:
        counts = sorted({int(x) for x in args.gpus.split(",") if x.strip()})
    elif args.tiny:
        counts = [1, 2]
    else:
        import torch

        counts = sorted({1, max(1, torch.cuda.device_count())})
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    configs = [(1, "single")] if 1 in counts else []
    configs += [(n, m) for n in counts if n > 1 for m in modes if not (m == "cfg" and n % 2)]
    deadline = t_start + args.budget_s
    per_config = 40.0 if args.tiny else 150.0  # what one configuration takes without the whole clip
    results = []
    with tempfile.TemporaryDirectory(prefix="shotsketch-multi-gpu-") as scratch:
        for i, (gpus, mode) in enumerate(configs):
            if time.time() > deadline - 20:
                print(f"# {gpus} GPU(s), {mode}: not run, the time budget is spent", flush=True)
                continue
            reserve = per_config * (len(configs) - i - 1)
            res = run_config(args, gpus, mode, deadline, reserve, scratch)
            if res is not None:
                results.append(res)
    print()
    print(f"# whole 50-step clip {'(tiny sizes)' if args.tiny else '704x1280x121'}, speed-up over 1 GPU of the same run; "
          f"total {time.time() - t_start:.0f} s")
    for r in results:
        for note in r.get("notes", []):
            print(f"# {r['gpus']} GPU {r['mode']}: {note}")
    print(table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
