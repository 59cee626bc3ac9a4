"""Transformer-forward and VAE-decode levers at the real 5B size, timed with CUDA events.

Exploration for the exact mode: each variant is timed beside the stock forward in the same
process. Usage: PYTHONPATH=desktop python bench/levers.py [--tiny] [--only forward,decode]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

sys.path.insert(0, "desktop")
sys.path.insert(0, "bench")

from gpu_bench import build_components  # noqa: E402


def cuda_time(fn, reps: int = 3) -> float:
    fn()
    if not torch.cuda.is_available():
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = float("inf")
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1000)
    return best


def forward_levers(comps, args) -> None:
    tr = comps["transformer"]
    dev = args.device
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    sizes = {"preview 480x832x17": (5, 30, 52), "full 704x1280x121": (31, 44, 80)} if not args.tiny else {"tiny": (2, 4, 6)}
    text_dim = tr.config.text_dim
    for name, (f, h, w) in sizes.items():
        x = torch.randn(1, 48, f, h, w, device=dev, dtype=dtype)
        ehs = torch.randn(1, 512, text_dim, device=dev, dtype=dtype)
        neg = torch.randn(1, 512, text_dim, device=dev, dtype=dtype)
        t_tok = torch.full((1, f * (h // 2) * (w // 2)), 500.0, device=dev)
        t_one = torch.full((1,), 500.0, device=dev)

        def two(ts):
            def run():
                with torch.inference_mode():
                    tr(hidden_states=x, timestep=ts, encoder_hidden_states=ehs, return_dict=False)
                    tr(hidden_states=x, timestep=ts, encoder_hidden_states=neg, return_dict=False)
            return run

        def batched(ts):
            xx, ee, tt = torch.cat([x, x]), torch.cat([ehs, neg]), torch.cat([ts, ts])

            def run():
                with torch.inference_mode():
                    tr(hidden_states=xx, timestep=tt, encoder_hidden_states=ee, return_dict=False)
            return run

        base = cuda_time(two(t_tok))
        print(f"| {name} | stock: 2 forwards, per-token timestep | {base:.3f} | 1.00x |", flush=True)
        for label, fn in [("2 forwards, shared timestep", two(t_one)), ("batch-2 CFG, shared timestep", batched(t_one))]:
            t = cuda_time(fn)
            print(f"| {name} | {label} | {t:.3f} | {t / base:.2f}x |", flush=True)
        if dev == "cuda" and not args.no_compile:
            torch._dynamo.reset()
            tr.compile_repeated_blocks(fullgraph=True)
            for label, fn in [("compiled, 2 forwards, shared", two(t_one)), ("compiled, batch-2 CFG, shared", batched(t_one))]:
                t = cuda_time(fn)
                print(f"| {name} | {label} | {t:.3f} | {t / base:.2f}x |", flush=True)
            for attn in tr.modules():
                if hasattr(attn, "fuse_projections") and attn.__class__.__name__ == "WanAttention":
                    attn.fuse_projections()
            torch._dynamo.reset()
            tr.compile_repeated_blocks(fullgraph=True)
            for label, fn in [("compiled + fused QKV, 2 forwards", two(t_one)), ("compiled + fused QKV, batch-2", batched(t_one))]:
                t = cuda_time(fn)
                print(f"| {name} | {label} | {t:.3f} | {t / base:.2f}x |", flush=True)
            if name.startswith("preview"):
                torch._dynamo.reset()
                tr.compile_repeated_blocks(fullgraph=True, mode="max-autotune-no-cudagraphs")
                t0 = time.perf_counter()
                t = cuda_time(batched(t_one))
                print(f"| {name} | max-autotune + fused QKV, batch-2 | {t:.3f} | {t / base:.2f}x | (incl. tuning {time.perf_counter() - t0:.0f}s wall) |", flush=True)
            for attn in tr.modules():
                if attn.__class__.__name__ == "WanAttention" and getattr(attn, "fused_projections", False):
                    attn.unfuse_projections()
            torch._dynamo.reset()
            for block in tr.blocks:
                block._compiled_call_impl = None
        del x, ehs, neg
        torch.cuda.empty_cache() if dev == "cuda" else None


def decode_levers(comps, args) -> None:
    vae = comps["vae"]
    dev = args.device
    f, h, w = (3, 4, 6) if args.tiny else (31, 44, 80)
    z = torch.randn(1, 48, f, h, w, device=dev)
    torch.backends.cudnn.benchmark = True
    with torch.inference_mode():
        base = cuda_time(lambda: vae.decode(z, return_dict=False), reps=1)
        print(f"| decode {f}x{h}x{w} | fp32 (stock) | {base:.3f} | 1.00x |", flush=True)
        if dev != "cuda":
            return
        vae.to(torch.bfloat16)
        zb = z.to(torch.bfloat16)
        t = cuda_time(lambda: vae.decode(zb, return_dict=False), reps=1)
        print(f"| decode | bf16 | {t:.3f} | {t / base:.2f}x |", flush=True)
        for m in vae.modules():
            if isinstance(m, torch.nn.Conv3d):
                m.to(memory_format=torch.channels_last_3d)
        t = cuda_time(lambda: vae.decode(zb, return_dict=False), reps=1)
        print(f"| decode | bf16 + channels_last_3d conv weights | {t:.3f} | {t / base:.2f}x |", flush=True)
        for m in vae.modules():
            if isinstance(m, torch.nn.Conv3d):
                m.to(memory_format=torch.contiguous_format)
        vae.decoder = torch.compile(vae.decoder)
        t0 = time.perf_counter()
        try:
            t = cuda_time(lambda: vae.decode(zb, return_dict=False), reps=1)
            print(f"| decode | bf16 + torch.compile(decoder) | {t:.3f} | {t / base:.2f}x | wall incl. compile {time.perf_counter() - t0:.0f}s |", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"| decode | bf16 + compile FAILED: {str(exc)[:200]} |", flush=True)
        vae.decoder = getattr(vae.decoder, "_orig_mod", vae.decoder)
        vae.to(torch.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--only", default="forward,decode")
    args = ap.parse_args()
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    comps = build_components(args.tiny, args.device)
    print("| case | variant | seconds | ratio |\n|---|---|---|---|")
    if "decode" in args.only:
        decode_levers(comps, args)
    if "forward" in args.only:
        forward_levers(comps, args)


if __name__ == "__main__":
    main()
