"""`shotsketch generate`: one clip from a prompt (or a recipe), with a progress bar; Ctrl-C cancels."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from shotsketch.cli import CliError

RECIPE_SUFFIX = ".json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate a clip", description="Generate a clip with Wan2.2 TI2V-5B.")
    p.add_argument("prompt", nargs="?", help="what the shot shows")
    p.add_argument("--recipe", metavar="FILE.json", help="replay a recipe written beside an earlier clip")
    p.add_argument("--model", help="'demo', a diffusers folder, or hf:ORG/NAME from the Hugging Face cache "
                                  "(default: the configured model)")
    p.add_argument("--negative", help="negative prompt")
    p.add_argument("--width", help="multiple of 32 (default 832)")
    p.add_argument("--height", help="multiple of 32 (default 480)")
    p.add_argument("--frames", help="4k+1 frames (default 17)")
    p.add_argument("--steps", help="denoising steps (default 25)")
    p.add_argument("--guidance", help="classifier-free guidance scale (default 5.0)")
    p.add_argument("--seed", help="random seed (default 0)")
    p.add_argument("--fps", help="frames per second of the file (default 24)")
    p.add_argument("--image", metavar="FIRST_FRAME.png", help="first frame, for image-to-video")
    p.add_argument("--layout", metavar="LAYOUT.json", help="a sketch layout for layout guidance")
    p.add_argument("--strength", help="layout guidance strength (default 1.0 with --layout)")
    p.add_argument("--memory-plan", choices=["auto", "gpu", "text-encoder-offload", "model-offload", "group-offload"],
                   help="where the model lives (default: chosen from free VRAM)")
    p.add_argument("--device", choices=["cuda", "mps", "cpu"], help="force a device")
    p.add_argument("--format", default="mp4", help="mp4 (default), prores, dnxhr, png or gif")
    p.add_argument("--out", required=True, metavar="FILE", help="output file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _number(name: str, text: str | None, kind: type, default: Any) -> Any:
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise CliError(f"--{name} must be {'a whole number' if kind is int else 'a number'} (got {text!r})") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise CliError(f"--{name} must be a finite number (got {text!r})")
    return value


def _read_recipe(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"recipe {p} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"recipe {p} is not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
        raise CliError(f"recipe {p} has no 'request' object; is it a Shotsketch recipe?")
    version = data.get("schema_version")
    from shotsketch.engine.generator import RECIPE_SCHEMA_VERSION

    if not isinstance(version, int) or version > RECIPE_SCHEMA_VERSION:
        raise CliError(f"recipe {p} has schema version {version!r}; this Shotsketch reads up to {RECIPE_SCHEMA_VERSION}")
    return data


def build_request(args: argparse.Namespace, recipe: dict[str, Any] | None):  # noqa: ANN201
    from shotsketch.core.settings import load_settings
    from shotsketch.engine.requests import GenerationRequest, RequestError

    settings = load_settings()
    if recipe is not None:
        try:
            base = GenerationRequest.from_dict(recipe["request"])
        except (RequestError, TypeError) as exc:
            raise CliError(f"the recipe's request is not valid: {exc}") from None
    else:
        if not args.prompt:
            raise CliError("give a prompt, e.g. shotsketch generate \"a red car drives left to right\" --out car.mp4")
        base = GenerationRequest(prompt=args.prompt, width=settings.width, height=settings.height,
                                 frames=settings.frames, steps=settings.steps, guidance=settings.guidance)
    layout_json = base.layout_json
    if args.layout:
        layout_json = _read_layout(args.layout)
    strength_default = base.guidance_strength if recipe is not None or not args.layout else settings.layout_guidance_strength
    fields = dict(
        prompt=args.prompt if args.prompt else base.prompt,
        negative_prompt=args.negative if args.negative is not None else base.negative_prompt,
        width=_number("width", args.width, int, base.width),
        height=_number("height", args.height, int, base.height),
        frames=_number("frames", args.frames, int, base.frames),
        steps=_number("steps", args.steps, int, base.steps),
        guidance=_number("guidance", args.guidance, float, base.guidance),
        seed=_number("seed", args.seed, int, base.seed),
        fps=_number("fps", args.fps, int, base.fps),
        image=str(Path(args.image).resolve()) if args.image else base.image,
        layout_json=layout_json,
        guidance_strength=_number("strength", args.strength, float, strength_default),
    )
    return GenerationRequest(**fields)


def _read_layout(path: str) -> str:
    """The layout file's JSON, validated (and migrated to the current schema)."""
    from shotsketch.core.layout import LayoutError, load_layout

    if not Path(path).is_file():
        raise CliError(f"layout {path} does not exist")
    try:
        return load_layout(path).to_json()
    except LayoutError as exc:
        raise CliError(f"the layout is not valid: {exc}") from None


def _clip_format(name: str):  # noqa: ANN202
    from shotsketch.media import encode

    parse = getattr(encode.ClipFormat, "parse", None)
    try:
        return parse(name) if parse else encode.ClipFormat(name.lower())
    except (ValueError, KeyError):
        names = ", ".join(f.value for f in encode.ClipFormat)
        raise CliError(f"--format {name!r} is not known; choose one of {names}") from None


def check_output(path: Path, overwrite: bool, *, sequence: bool = False) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir() and not (sequence and overwrite):  # a PNG sequence is a folder: --overwrite replaces it
        if sequence:
            raise CliError(f"{path} already exists; choose another --out or pass --overwrite")
        raise CliError(f"--out {path} is a folder; give a file name such as {path / 'clip.mp4'}")
    if not folder.is_dir():
        raise CliError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"cannot write {path}: the folder {folder} is not writable")
    if path.exists() and not overwrite:
        raise CliError(f"{path} already exists; choose another --out or pass --overwrite")


def model_source(text: str | None):  # noqa: ANN201
    from shotsketch.core.settings import load_settings
    from shotsketch.engine.sources import ModelError, ModelSource, SourceKind, check_model_folder

    text = text or load_settings().model
    try:
        source = ModelSource.parse(text)
    except ModelError as exc:
        raise CliError(str(exc)) from None
    if source.kind is SourceKind.FOLDER:
        problems = check_model_folder(source.location)
        if problems:
            raise CliError(f"the model folder {source.location} cannot be used: " + "; ".join(problems))
    return source


class _Bar:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet or not sys.stderr.isatty() and os.environ.get("SHOTSKETCH_PROGRESS") != "1"
        self.last = 0.0

    def step(self, step: int, total: int, eta: float | None) -> None:
        if self.quiet:
            return
        width = 30
        filled = int(width * step / total)
        eta_text = f" eta {eta:4.0f}s" if eta is not None else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] step {step}/{total}{eta_text}")
        sys.stderr.flush()
        if step == total:
            sys.stderr.write("\n")

    def note(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")


def run(args: argparse.Namespace) -> int:
    from shotsketch.engine.requests import RequestError, validate_request

    recipe = _read_recipe(args.recipe) if args.recipe else None
    request = build_request(args, recipe)
    if recipe is not None and request.image is not None and not args.image and recipe.get("image_sha256"):
        from shotsketch.engine.generator import file_sha256

        if file_sha256(request.image) != recipe["image_sha256"]:
            raise CliError(f"the first-frame image {request.image} has changed (or is gone) since the recipe was "
                           "written; pass --image to use it anyway")
    try:
        validate_request(request)
    except RequestError as exc:
        raise CliError(str(exc)) from None
    fmt = _clip_format(args.format)
    out = Path(args.out)
    check_output(out, args.overwrite, sequence=fmt.is_sequence)
    model_text = args.model
    if model_text is None and recipe is not None:
        model = recipe.get("model")
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            raise CliError(f"recipe {args.recipe} does not say which model made it; pass --model")
        kind, mid, rev = model.get("kind"), model["id"], model.get("revision")
        if kind == "hf-cache":  # the same snapshot as the recipe's, not whatever is cached now
            model_text = f"hf:{mid}" + (f"@{rev}" if isinstance(rev, str) and rev else "")
        else:
            model_text = mid
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device cuda: no CUDA GPU is available (see shotsketch doctor)")
    source = model_source(model_text)
    return generate_to_file(request, source, out, fmt, args)


def generate_to_file(request, source, out: Path, fmt, args: argparse.Namespace) -> int:  # noqa: ANN001
    from shotsketch.engine.events import CancelToken, JobCancelled, JobFailed, JobFinished, JobStep
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.memory import MemoryPlan
    from shotsketch.engine.sources import ModelError
    from shotsketch.media.encode import EncodeCancelled, EncodeError, write_clip

    plan = None if args.memory_plan in (None, "auto") else MemoryPlan(args.memory_plan)
    bar = _Bar(args.quiet)
    cancel = CancelToken()

    def on_sigint(_sig, _frame):  # noqa: ANN001
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        sys.stderr.write("\ncancelling after this step (Ctrl-C again to stop at once)\n")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        gen = Generator(source, device=args.device, memory_plan=plan)
        bar.note(f"model: {source.describe()} on {gen.device.name} ({gen.memory_plan.value})")
        t0 = time.perf_counter()
        try:
            gen.load()
        except ModelError as exc:
            raise CliError(str(exc)) from None

        def on_event(event) -> None:  # noqa: ANN001
            match event:
                case JobStep(step=step, total_steps=total, eta_s=eta):
                    bar.step(step, total, eta)
                case _:
                    pass

        final = gen.generate(request, on_event, cancel)
        match final:
            case JobCancelled():
                raise CliError("cancelled; no file was written", code=130)
            case JobFailed(message=message):
                raise CliError(message, code=1)
            case JobFinished(frames=frames, recipe=recipe):
                pass
        guidance = recipe.get("layout_guidance") or {}
        for name in guidance.get("missing", []):
            sys.stderr.write(f"shotsketch: layout subject {name!r} is not named in the prompt; it was not guided\n")
        if guidance.get("adherence"):
            scores = ", ".join(f"{k} {v:.2f}" for k, v in guidance["adherence"].items())
            bar.note(f"layout adherence: {scores}")
        recipe["output"] = {"file": out.name, "format": fmt.value, "fps": request.fps,
                            "frames": int(frames.shape[0]), "width": int(frames.shape[2]), "height": int(frames.shape[1])}
        recipe_text = json.dumps(recipe, ensure_ascii=False, separators=(",", ":"))
        try:
            written = write_clip(frames, out, fmt=fmt, fps=request.fps, cancelled=lambda: cancel.cancelled,
                                 metadata={"comment": recipe_text, "title": request.prompt[:200]},
                                 on_exists="overwrite" if args.overwrite else "error")
        except EncodeCancelled:
            raise CliError("cancelled; no file was written", code=130) from None
        except EncodeError as exc:
            raise CliError(str(exc), code=1) from None
        from shotsketch.media.sidecar import write_sidecar

        write_sidecar(written, recipe)
        bar.note(f"wrote {written} and {recipe_path(written).name} in {time.perf_counter() - t0:.1f}s")
        return 0
    finally:
        signal.signal(signal.SIGINT, previous)


def recipe_path(clip: Path) -> Path:
    """The recipe sidecar beside a clip: FILE + '.json' (clip.mp4 -> clip.mp4.json)."""
    from shotsketch.media.sidecar import sidecar_path

    return sidecar_path(clip)
