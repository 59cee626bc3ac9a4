"""Where a denoising step's GPU time goes: torch.profiler over a few steps of ours (compiled, exact).

    PYTHONPATH=desktop python bench/profile_step.py [--size preview|full] [--steps 3] [--tiny]

Prints the kernels that take the most GPU time, grouped by kind, and the share of the wall time
the GPU was busy (a low share means the step waits on the CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from models import build_components, sync  # noqa: E402
from shotsketch.engine.events import JobStep  # noqa: E402
from shotsketch.engine.generator import Generator  # noqa: E402
from shotsketch.engine.memory import MemoryPlan  # noqa: E402
from shotsketch.engine.requests import GenerationRequest  # noqa: E402
from shotsketch.engine.sources import ModelSource  # noqa: E402
from shotsketch.engine.speed import SpeedOptions  # noqa: E402

SIZES = {"preview": (480, 832, 17), "full": (704, 1280, 121)}
KINDS = [("attention", ("fmha", "flash", "attention", "sdpa", "cudnn")), ("gemm", ("gemm", "sm90_xmma", "cutlass", "nvjet", "gemv")),
         ("triton (fused elementwise)", ("triton",)), ("copy / layout", ("copy", "cat", "transpose", "elementwise_kernel"))]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def profile_job(gen: Generator, req: GenerationRequest) -> tuple[float, dict, dict, list]:
    """One job under the profiler after a first one (compile, tune, cache the prompt): wall seconds a
    step (steps 2..n), GPU seconds per kernel name, calls per kernel name, CPU ops by self time."""
    gen.generate(req)
    marks: list[float] = []

    def on_event(ev) -> None:
        if isinstance(ev, JobStep):
            sync()
            marks.append(time.perf_counter())

    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        gen.generate(req, on_event)
    per_kernel: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for ev in prof.events():
        t = getattr(ev, "device_time", 0) or 0
        if t and ev.device_type == torch.autograd.DeviceType.CUDA:
            per_kernel[ev.name] += t / 1e6
            counts[ev.name] += 1
    cpu_ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    return (marks[-1] - marks[0]) / max(1, len(marks) - 1), per_kernel, counts, cpu_ops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=list(SIZES), default="preview")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sketch", action="store_true", help="profile the example shot unguided and guided; per-kernel differences")
    args = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    h, w, f = (64, 96, 5) if args.tiny else SIZES[args.size]
    comps = build_components(args.tiny, dev)
    gen = Generator(ModelSource.demo(), device=dev, components=comps, speed=SpeedOptions(compile=dev == "cuda"),
                    memory_plan=MemoryPlan.ALL_ON_GPU if dev == "cuda" else None)
    gen.decode = lambda lat: None
    req = GenerationRequest("a red car drives from the left to the right", "blurry", width=w, height=h, frames=f,
                            steps=args.steps + 1, seed=0)
    steps = args.steps + 1
    name = torch.cuda.get_device_name() if dev == "cuda" else "CPU"
    if args.sketch:  # the same job with the example shot's sketch, kernel by kernel against the unguided one
        from shotsketch.core.examples import example_shots

        shot = {s.id: s for s in example_shots()}["red_car_house"]
        plain = GenerationRequest(shot.prompt, "blurry", width=w, height=h, frames=f, steps=steps, seed=0)
        guided = GenerationRequest(shot.prompt, "blurry", width=w, height=h, frames=f, steps=steps, seed=0,
                                   layout_json=shot.layout.to_json(), guidance_strength=1.0)
        (wall_u, kern_u, count_u, _), (wall_g, kern_g, count_g, _) = (profile_job(gen, r) for r in (plain, guided))
        print(f"# {name}, {args.size} {w}x{h}x{f}, {steps} steps profiled, unguided then guided (folded path)")
        print(f"# step (wall): unguided {wall_u:.4f} s, guided {wall_g:.4f} s ({wall_g / wall_u:.3f}x); GPU kernel "
              f"time a step: unguided {sum(kern_u.values()) / steps:.4f} s, guided {sum(kern_g.values()) / steps:.4f} s")
        diff = {k: kern_g.get(k, 0.0) - kern_u.get(k, 0.0) for k in set(kern_u) | set(kern_g)}
        print("\n| kernel | calls a step (unguided / guided) | us a step unguided | guided | guided - unguided |\n|---|---|---|---|---|")
        for k, t in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:args.top]:
            print(f"| {k[:110]} | {count_u.get(k, 0) / steps:.0f} / {count_g.get(k, 0) / steps:.0f} | "
                  f"{kern_u.get(k, 0) / steps * 1e6:.0f} | {kern_g.get(k, 0) / steps * 1e6:.0f} | {t / steps * 1e6:+.0f} |")
        return
    wall, per_kernel, counts, cpu_ops = profile_job(gen, req)
    total = sum(per_kernel.values())
    print(f"# {name}, {args.size} {w}x{h}x{f}, {steps} steps profiled")
    print(f"# step (wall, marked steps): {wall:.4f} s; GPU kernel time per step: {total / steps:.4f} s")
    by_kind: dict[str, float] = defaultdict(float)
    for name, t in per_kernel.items():
        by_kind[kind_of(name)] += t
    print("| kind | s a step | share |\n|---|---|---|")
    for kind, t in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {t / steps:.4f} | {t / max(total, 1e-9):.1%} |")
    print("\n| kernel | calls a step | s a step | share |\n|---|---|---|---|")
    for name, t in sorted(per_kernel.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"| {name[:110]} | {counts[name] / steps:.0f} | {t / steps:.4f} | {t / max(total, 1e-9):.1%} |")
    print("\n| CPU op (self time) | calls a step | ms a step |\n|---|---|---|")
    for e in cpu_ops[:args.top]:
        print(f"| {e.key[:90]} | {e.count / steps:.0f} | {e.self_cpu_time_total / 1000 / steps:.2f} |")
    if dev == "cuda":
        cross_attention_backends(args)


def cross_attention_backends(args) -> None:
    """Cross-attention (video tokens attend to 512 text tokens) under each SDPA backend."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for label, (b, n) in {"720p": (1, 27280), "preview batch-2": (2, 1950)}.items():
        q = torch.randn(b, 24, n, 128, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(b, 24, 512, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        for name, backend in (("cuDNN", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                              ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)):
            try:
                with sdpa_kernel(backend):
                    F.scaled_dot_product_attention(q, k, v)
                    torch.cuda.synchronize()
                    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    s.record()
                    for _ in range(10):
                        F.scaled_dot_product_attention(q, k, v)
                    e.record()
                    torch.cuda.synchronize()
                print(f"| cross-attention {label} | {name} | {s.elapsed_time(e) / 10:.3f} ms |")
            except RuntimeError as exc:
                print(f"| cross-attention {label} | {name} | unavailable: {str(exc)[:60]} |")


if __name__ == "__main__":
    main()
