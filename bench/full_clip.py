"""A whole 704x1280x121 clip end to end (prompt in, frames out): stock at 50 steps beside ours.

    PYTHONPATH=desktop python bench/full_clip.py [--ours-steps 16] [--stock-steps 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

sys.path.insert(0, "desktop")
sys.path.insert(0, "bench")

from gpu_bench import build_components, stock_pipeline, sync  # noqa: E402
from shotsketch.engine.generator import Generator  # noqa: E402
from shotsketch.engine.requests import GenerationRequest  # noqa: E402
from shotsketch.engine.sources import ModelSource  # noqa: E402

PROMPT = "a red car drives from the left edge to the right edge of the screen"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stock-steps", type=int, default=50)
    ap.add_argument("--ours-steps", type=int, default=16)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    h, w, f = (64, 96, 9) if args.tiny else (704, 1280, 121)
    comps = build_components(args.tiny, dev)
    out = {}
    pipe = stock_pipeline(comps)
    sync(); t0 = time.perf_counter()
    pipe(prompt=PROMPT, negative_prompt="blurry", height=h, width=w, num_frames=f, num_inference_steps=args.stock_steps,
         guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(0), output_type="np")
    sync(); out["stock_s"] = time.perf_counter() - t0
    print("RESULT " + json.dumps(out), flush=True)
    del pipe
    gen = Generator(ModelSource.demo(), device=dev, components=comps)
    req = GenerationRequest(PROMPT, "blurry", width=w, height=h, frames=f, steps=args.ours_steps, seed=0)
    sync(); t0 = time.perf_counter()
    final = gen.generate(req)
    sync(); out[f"ours_{args.ours_steps}_steps_s"] = time.perf_counter() - t0
    out["ours_result"] = type(final).__name__
    out["ratio"] = out[f"ours_{args.ours_steps}_steps_s"] / out["stock_s"]
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
