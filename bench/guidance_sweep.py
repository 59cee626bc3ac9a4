"""Mean adherence over the example shots for several guidance settings (demo model by default).

    PYTHONPATH=desktop python bench/guidance_sweep.py [--width 448 --height 256 --frames 9 --steps 4]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

sys.path.insert(0, "desktop")

from shotsketch.core.examples import example_shots  # noqa: E402
from shotsketch.engine.generator import Generator  # noqa: E402
from shotsketch.engine.guidance import GuidanceSettings  # noqa: E402
from shotsketch.engine.requests import GenerationRequest  # noqa: E402
from shotsketch.engine.sources import ModelSource  # noqa: E402

SETTINGS = [
    dict(strength=4.0, outside=0.5, end=0.5),
    dict(strength=4.0, outside=0.5, end=1.0),
    dict(strength=2.0, outside=0.5, end=1.0),
    dict(strength=4.0, outside=1.0, end=0.75),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=448)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    gen = Generator(ModelSource.demo())
    gen.load()
    print("| settings | off | on |\n|---|---|---|")
    for cfg in SETTINGS:
        gen.layout_guidance.settings = GuidanceSettings(**cfg)
        means = []
        for strength in (0.0, 1.0):
            scores = []
            for shot in example_shots():
                req = GenerationRequest(shot.prompt, shot.negative_prompt, width=args.width, height=args.height,
                                        frames=args.frames, steps=args.steps, seed=1,
                                        layout_json=shot.layout.to_json(), guidance_strength=strength)
                scores += list(gen.generate(req).extras["adherence"].values())
            means.append(float(np.mean(scores)))
        print(f"| {cfg} | {means[0]:.3f} | {means[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
