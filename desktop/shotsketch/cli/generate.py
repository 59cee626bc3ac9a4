"""`shotsketch generate`: one clip from a prompt (or a recipe), with a progress bar; Ctrl-C cancels.

The request is built by the same code as the window's (``shotsketch.app``): the same default
negative prompt, the sketch's spatial clause added to the prompt with ``--layout``, the same
ranges, and the clip and its recipe written by the same take code. On a terminal a progress bar
shows the steps; otherwise each step is one log line. The last line on stdout names the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from shotsketch.cli import CliError
from shotsketch.core.ranges import FAST_MODE_STEPS, RANGES, clamp

RECIPE_SUFFIX = ".json"


def _range_help(name: str, what: str) -> str:
    r = RANGES[name]
    default = f"{r.default:g}" if name == "fps" else f"as in Settings, first {r.default:g}"
    return f"{what}, {r.low:g} to {r.high:g} (default {default})"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate a clip", description="Generate a clip with Wan2.2 TI2V-5B.")
    p.add_argument("prompt", nargs="?", help="what the shot shows")
    p.add_argument("--recipe", metavar="FILE.json", help="replay a recipe written beside an earlier clip")
    p.add_argument("--model", help="'demo', a diffusers folder, or hf:ORG/NAME from the Hugging Face cache "
                                  "(default: the configured model)")
    p.add_argument("--negative", help="negative prompt (default: the window's default negative prompt)")
    p.add_argument("--width", help=_range_help("width", "multiple of 32"))
    p.add_argument("--height", help=_range_help("height", "multiple of 32"))
    p.add_argument("--frames", help=_range_help("frames", "4k+1 frames"))
    p.add_argument("--steps", help=_range_help("steps", "denoising steps"))
    p.add_argument("--guidance", help=_range_help("guidance", "classifier-free guidance scale"))
    p.add_argument("--seed", help="random seed, 0 to 2^64-1 (default 0)")
    p.add_argument("--fps", help=_range_help("fps", "frames per second of the file"))
    p.add_argument("--image", metavar="FIRST_FRAME.png", help="first frame, for image-to-video")
    p.add_argument("--layout", metavar="LAYOUT.json",
                   help="a sketch layout: its spatial clause is added to the prompt and it guides the model")
    p.add_argument("--strength", help=_range_help("layout_strength", "layout guidance strength, with --layout"))
    p.add_argument("--fast", action=argparse.BooleanOptionalAction, default=None,
                   help=f"fast mode: at most {FAST_MODE_STEPS} steps (default: as in the window's settings)")
    p.add_argument("--memory-plan", choices=["auto", "gpu", "text-encoder-offload", "model-offload", "group-offload"],
                   help="where the model lives (default: chosen from free VRAM)")
    p.add_argument("--device", choices=["cuda", "mps", "cpu"], help="force a device")
    p.add_argument("--gpus", type=int, default=1, metavar="N",
                   help="render on N GPUs of this machine (default 1; shotsketch doctor lists them)")
    p.add_argument("--lora", action="append", metavar="FILE[:STRENGTH]",
                   help="a LoRA .safetensors file, with its strength (default 1); give it again for several")
    p.add_argument("--distilled", action=argparse.BooleanOptionalAction, default=None,
                   help="the model is a step-distilled checkpoint (FastWan2.2-TI2V-5B, 3 steps) (default: as its folder says)")
    p.add_argument("--format", default="mp4", help="mp4 (default), prores, dnxhr, png or gif")
    p.add_argument("--out", required=True, metavar="FILE", help="output file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _number(name: str, text: str | None, kind: type, default: Any) -> Any:
    if text is None:
        return default
    from shotsketch.core.inputs import MAX_INT_DIGITS, shorten

    if len(text.strip()) > MAX_INT_DIGITS:  # 400 digits overflowed later, deep in the arithmetic
        raise CliError(f"--{name} {shorten(text, 30)} is far too long a number")
    try:
        value = kind(text)
    except ValueError:
        raise CliError(f"--{name} must be {'a whole number' if kind is int else 'a number'} (got {shorten(text)})") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise CliError(f"--{name} must be a finite number (got {text!r})")
    return value


def _read_recipe(path: str) -> dict[str, Any]:
    from shotsketch.core.inputs import InputError, read_json, shorten

    p = Path(path)
    try:  # a regular file of a sane size, shallow JSON, short numbers, valid text (core/inputs.py)
        data = read_json(p, "recipe")
    except InputError as exc:
        raise CliError(str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
        raise CliError(f"recipe {p} has no 'request' object; is it a Shotsketch recipe?")
    version = data.get("schema_version")
    from shotsketch.engine.generator import RECIPE_SCHEMA_VERSION

    if type(version) is not int or not 1 <= version <= RECIPE_SCHEMA_VERSION:
        raise CliError(f"recipe {p} has schema version {shorten(version)}; this Shotsketch reads versions 1 to "
                       f"{RECIPE_SCHEMA_VERSION}")
    model = data.get("model")
    if model is not None and not (isinstance(model, dict) and isinstance(model.get("id"), str) and model["id"].strip()):
        raise CliError(f"recipe {p} does not say which model made it (its 'model' has no id); pass --model")
    return data


def build_request(args: argparse.Namespace, recipe: dict[str, Any] | None):  # noqa: ANN201
    """The request for the command line, built by the window's code (:class:`OpenShot`):
    a new shot from the prompt, or a recipe's request with the options given changed."""
    from shotsketch.app.requests import request_layout, written_prompt
    from shotsketch.app.shot import OpenShot, ShotSettings
    from shotsketch.core.settings import load_settings
    from shotsketch.engine.requests import GenerationRequest, RequestError

    settings = load_settings()
    shot = OpenShot(settings)
    if recipe is not None:
        try:
            base = GenerationRequest.from_dict(recipe["request"])
            base_layout = request_layout(base)
        except (RequestError, TypeError) as exc:
            raise CliError(f"the recipe's request is not valid: {exc}") from None
        written = written_prompt(recipe["request"])
        defaults = ShotSettings(base.width, base.height, base.frames, base.steps, base.guidance, base.seed)
        strength = settings.layout_guidance_strength
        if base.layout_json:  # an older recipe may hold a strength outside today's range: clamped, said
            strength = float(clamp("layout_strength", base.guidance_strength, where=f"recipe {args.recipe}"))
            if strength != base.guidance_strength and args.strength is None:
                sys.stderr.write(f"shotsketch: the recipe's layout guidance strength {base.guidance_strength:g} is "
                                 f"outside 0 to {RANGES['layout_strength'].high:g}; using {strength:g} (the clip "
                                 "will differ from the recipe's)\n")
        fast = base.is_fast
    else:
        if not args.prompt:
            raise CliError("give a prompt, e.g. shotsketch generate \"a red car drives left to right\" --out car.mp4")
        base, base_layout, written = None, None, args.prompt
        defaults = ShotSettings.from_app(settings)
        strength, fast = settings.layout_guidance_strength, settings.fast_mode
    shot.set_prompt(args.prompt or written)
    shot.set_negative_prompt(args.negative if args.negative is not None else (base.negative_prompt if base else ""))
    shot.set_layout(_read_layout(args.layout) if args.layout else base_layout or shot.layout)
    # numbers as typed (validated, never clamped: a wrong one is refused with the range's sentence)
    shot.set_settings(ShotSettings(
        width=_number("width", args.width, int, defaults.width),
        height=_number("height", args.height, int, defaults.height),
        frames=_number("frames", args.frames, int, defaults.frames),
        steps=_number("steps", args.steps, int, defaults.steps),
        guidance=_number("guidance", args.guidance, float, defaults.guidance),
        seed=_number("seed", args.seed, int, defaults.seed),
    ))
    shot.set_fast(fast if args.fast is None else args.fast)
    _set_loras(shot, args.lora, base)
    request = shot.request()
    if request.layout_json:  # as typed: validated with the request, never clamped
        request = dataclasses.replace(request, guidance_strength=_number("strength", args.strength, float, strength))
    if base is not None and args.negative is None:  # the recipe's negative prompt as it was, even empty
        request = dataclasses.replace(request, negative_prompt=base.negative_prompt)
    if base is not None and not args.prompt and not args.layout:
        # an exact replay: the recipe's final prompt as it was (it may have been edited by hand)
        request = dataclasses.replace(request, prompt=base.prompt, prompt_as_written=base.prompt_as_written)
    image = str(Path(args.image).resolve()) if args.image else (base.image if base else None)
    return dataclasses.replace(request, image=image, fps=_number("fps", args.fps, int, base.fps if base else 24))


def _set_loras(shot, given: list[str] | None, base) -> None:  # noqa: ANN001 - OpenShot, GenerationRequest
    """--lora's files on the shot (as the window's LoRA list puts them: absolute paths, in the
    request's typed `loras`), else a replayed recipe's LoRAs (its `loras`, or `extra["loras"]` in
    recipes from before that field)."""
    from shotsketch.engine.lora import LoraChoice, LoraError, loras_of

    try:
        choices = [LoraChoice.parse(text) for text in given] if given else (loras_of(base) if base else [])
        shot.set_loras(choices)
    except LoraError as exc:
        raise CliError(str(exc)) from None


def _read_layout(path: str):  # noqa: ANN202 - core.layout.Layout
    """The layout file, validated (and migrated to the current schema)."""
    from shotsketch.core.layout import LayoutError, load_layout

    if not Path(path).is_file():
        raise CliError(f"layout {path} does not exist")
    try:
        return load_layout(path)
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
    recipe = recipe_path(path)  # every file the command will write is checked before the work
    if recipe.is_dir():
        raise CliError(f"cannot write the recipe {recipe}: a folder has that name; choose another --out")
    if recipe.exists() and not overwrite:
        raise CliError(f"{recipe} already exists (the recipe of another clip?); choose another --out or pass "
                       "--overwrite")


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
    """Progress on stderr: a bar that redraws on a terminal, one log line per step elsewhere
    (a pipe, a log file, a job runner); nothing with --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = sys.stderr.isatty() or os.environ.get("SHOTSKETCH_PROGRESS") == "1"

    def step(self, step: int, total: int, eta: float | None) -> None:
        if self.quiet:
            return
        if not self.live:
            sys.stderr.write(f"shotsketch: step {step}/{total}" + (f", about {eta:.0f}s left" if eta else "") + "\n")
            sys.stderr.flush()
            return
        eta_text = f" eta {eta:4.0f}s" if eta is not None else ""
        width = 30
        filled = int(width * step / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] step {step}/{total}{eta_text}")
        sys.stderr.flush()
        if step == total:
            sys.stderr.write("\n")

    def note(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")


def run(args: argparse.Namespace) -> int:
    from shotsketch.engine.requests import RequestError, validate_request

    from shotsketch.core.inputs import path_problem

    for option, value in (("--out", args.out), ("--image", args.image), ("--layout", args.layout),
                          ("--recipe", args.recipe), ("--model", args.model)):
        problem = path_problem(value, option) if value else None
        if problem:
            raise CliError(problem)
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
    from contextlib import ExitStack

    from shotsketch.core.atomic import OutputTaken, claim_output
    from shotsketch.media.encode import write_failure

    with ExitStack() as claimed:
        try:  # the name is claimed before the work: a second run to it is refused now, not after it
            claimed.enter_context(claim_output(out))
        except OutputTaken as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:  # a full disk, a read-only folder: said before the work, in one line
            raise CliError(str(write_failure(exc, out, "write")), code=1) from None
        return generate_to_file(request, source, out, fmt, args, model_text=model_text, recipe=recipe)


def distilled_choice(args: argparse.Namespace, model_text: str | None,
                     recipe: dict[str, Any] | None = None) -> bool | None:
    """The Generator's ``distilled``: --distilled / --no-distilled; else a replayed recipe made with
    DMD's schedule; else what Settings says of this model (app/model_options.py); else None (as
    its folder says)."""
    given = getattr(args, "distilled", None)
    if given is not None:
        return bool(given)
    schedule = recipe.get("schedule") if isinstance(recipe, dict) else None
    if isinstance(schedule, dict):  # a replay: made with DMD's 3 steps (said by its folder or by the person)
        from shotsketch.engine.schedulers import DMD_TIMESTEPS

        if tuple(schedule.get("timesteps") or ()) == DMD_TIMESTEPS:
            return True
    from shotsketch.app.model_options import load_model_options
    from shotsketch.core.settings import load_settings

    return load_model_options().distilled_for(model_text or load_settings().model)


def generate_to_file(request, source, out: Path, fmt, args: argparse.Namespace,  # noqa: ANN001
                     model_text: str | None = None, recipe: dict[str, Any] | None = None) -> int:
    from shotsketch.engine.events import CancelToken, JobCancelled, JobFailed, JobFinished, JobStep
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.memory import MemoryPlan
    from shotsketch.engine.sources import ModelError
    from shotsketch.media.encode import EncodeCancelled, EncodeError

    plan = None if args.memory_plan in (None, "auto") else MemoryPlan(args.memory_plan)
    bar = _Bar(args.quiet)
    cancel = CancelToken()

    def on_sigint(_sig, _frame):  # noqa: ANN001
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        sys.stderr.write("\ncancelling (Ctrl-C again to stop at once)\n")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        distilled = distilled_choice(args, model_text, recipe)
        if (args.gpus or 1) > 1 and distilled is not None:  # the GPU workers take the model as its folder says
            bar.note(f"shotsketch: the model is {'' if distilled else 'not '}step-distilled by choice, which the GPU "
                     f"workers cannot be told; rendering on one GPU, not {args.gpus}")
        if (args.gpus or 1) > 1 and distilled is None:  # persistent workers, one per GPU (engine/parallel_client.py)
            from shotsketch.engine.parallel_client import GpuWorkers, gpu_count_problem

            if gpu_count_problem(args.gpus, args.device):
                raise CliError(f"--gpus {args.gpus}: {gpu_count_problem(args.gpus, args.device)}")
            from shotsketch.core.settings import load_settings

            gen = GpuWorkers(model_text or load_settings().model, args.gpus, args.memory_plan or "auto", device=args.device)
            bar.note(f"model: {source.describe()} on {args.gpus} GPUs")
        else:
            gen = Generator(source, device=args.device, memory_plan=plan, distilled=distilled)
            bar.note(f"model: {source.describe()} on {gen.device.name} ({gen.memory_plan.value})")
        t0 = time.perf_counter()
        try:
            gen.load()
        except ModelError as exc:
            raise CliError(str(exc)) from None
        if getattr(gen, "notice", None):
            bar.note(gen.notice)
        from shotsketch.app.model_options import schedule_text

        if getattr(gen, "schedule", None):
            bar.note(f"{schedule_text(gen.schedule)}: --steps and --guidance are not used")

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
            shares = ", ".join(f"{k} {v:.0%}" for k, v in guidance["adherence"].items())
            bar.note(f"attention inside the boxes: {shares}")
        from shotsketch.app.takes import write_clip_with_recipe

        try:  # the clip and its recipe sidecar only: the heatmaps stay with the library's takes
            written, _ = write_clip_with_recipe(frames, recipe, out, fmt=fmt, fps=request.fps,
                                                overwrite=args.overwrite, cancelled=lambda: cancel.cancelled)
        except EncodeCancelled:
            raise CliError("cancelled; no file was written", code=130) from None
        except EncodeError as exc:
            raise CliError(str(exc), code=1) from None
        print(f"wrote {written} and {recipe_path(written).name} in {time.perf_counter() - t0:.1f}s")
        return 0
    finally:
        signal.signal(signal.SIGINT, previous)


def recipe_path(clip: Path) -> Path:
    """The recipe sidecar beside a clip: FILE + '.json' (clip.mp4 -> clip.mp4.json)."""
    from shotsketch.media.sidecar import sidecar_path

    return sidecar_path(clip)
