"""`shotsketch adherence`: generate with (or without) layout guidance and score where each subject landed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shotsketch.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adherence", help="generate from a layout and score where each subject landed")
    p.add_argument("layout", metavar="LAYOUT.json")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative", default="")
    p.add_argument("--model", default="demo", help="'demo', a diffusers folder, or hf:ORG/NAME")
    p.add_argument("--width", default="448")
    p.add_argument("--height", default="256")
    p.add_argument("--frames", default="17")
    p.add_argument("--steps", default="4")
    p.add_argument("--seed", default="0")
    p.add_argument("--guidance", default="5.0", help="classifier-free guidance scale")
    p.add_argument("--strength", default=None, help="layout guidance strength (default 1.0)")
    p.add_argument("--no-guidance", action="store_true", help="generate without layout guidance (scores only)")
    p.add_argument("--device", choices=["cuda", "mps", "cpu"])
    p.add_argument("--heatmaps", metavar="OUT.npz", help="write each subject's map [latent_frames, h/32, w/32]")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shotsketch.cli.generate import _number, _read_layout, model_source
    from shotsketch.core.atomic import write_bytes_atomic
    from shotsketch.engine.events import JobFailed, JobFinished
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.requests import GenerationRequest, RequestError, validate_request
    from shotsketch.engine.sources import ModelError

    layout_json = _read_layout(args.layout).to_json()  # _read_layout gives a Layout now
    strength = 0.0 if args.no_guidance else _number("strength", args.strength, float, 1.0)
    request = GenerationRequest(
        prompt=args.prompt, negative_prompt=args.negative,
        width=_number("width", args.width, int, 448), height=_number("height", args.height, int, 256),
        frames=_number("frames", args.frames, int, 17), steps=_number("steps", args.steps, int, 4),
        seed=_number("seed", args.seed, int, 0), guidance=_number("guidance", args.guidance, float, 5.0),
        layout_json=layout_json, guidance_strength=strength,
    )
    try:
        validate_request(request)
    except RequestError as exc:
        raise CliError(str(exc)) from None
    if args.heatmaps:
        out = Path(args.heatmaps)
        if not out.parent.is_dir():
            raise CliError(f"cannot write {out}: the folder {out.parent} does not exist")
    gen = Generator(model_source(args.model), device=args.device)
    try:
        gen.load()
    except ModelError as exc:
        raise CliError(str(exc)) from None
    final = gen.generate(request)
    if isinstance(final, JobFailed):
        raise CliError(final.message, code=1)
    assert isinstance(final, JobFinished)
    info = final.guidance
    scores = final.adherence
    missing = info.get("missing", [])
    for name in missing:
        print(f"shotsketch: subject {name!r} is not named in the prompt; it was not guided or scored", file=sys.stderr)
    result = {
        "subjects": {k: round(v, 4) for k, v in scores.items()},
        "mean": round(sum(scores.values()) / len(scores), 4) if scores else None,
        "guidance": bool(info.get("enabled")),
        "missing": missing,
    }
    if args.heatmaps:
        from shotsketch.media.heatmaps import npz_bytes

        write_bytes_atomic(args.heatmaps, npz_bytes(final.heatmaps))
    if args.json:
        print(json.dumps(result))
    else:
        for name, score in result["subjects"].items():
            print(f"{name}: {score:.3f}")
        print(f"mean: {result['mean']}" + ("" if result["guidance"] else " (no guidance)"))
    return 0
