"""`shotsketch doctor`: what this machine has and what is wrong with the configured model."""

from __future__ import annotations

import argparse

from shotsketch.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the GPU, libraries and model")
    p.add_argument("--model", help="check this model instead of the configured one")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from shotsketch import __version__
    from shotsketch.core.settings import load_settings, settings_path
    from shotsketch.engine.generator import library_versions
    from shotsketch.engine.memory import GiB, choose_plan, pick_device
    from shotsketch.engine.sources import HUB_REPO_ID, ModelError, ModelSource, SourceKind, check_model_folder, hf_cache_folder
    from shotsketch.logs import log_file

    lines = [f"shotsketch {__version__}"]
    lines += [f"{k}: {v}" for k, v in library_versions().items()]
    device = pick_device()
    lines.append(f"device: {device.name} ({device.device}, {str(device.dtype).removeprefix('torch.')})")
    if device.device == "cuda":
        lines.append(f"VRAM: {device.free_bytes / GiB:.1f} GiB free of {device.total_bytes / GiB:.1f} GiB")
        lines.append(f"CUDA: {torch.version.cuda}")
        from shotsketch.engine.parallel_gpus import describe_gpus, read_topology

        gpus = [(torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory / GiB)
                for i in range(torch.cuda.device_count())]
        lines += describe_gpus(gpus, read_topology() if len(gpus) > 1 else None)
    else:
        lines.append("GPU: none found — generation runs on the CPU and is very slow at real sizes")
    from shotsketch.engine.attention import describe as describe_attention

    lines.append(f"attention: {describe_attention(device.device)}")
    settings = load_settings()
    model_text = args.model or settings.model
    lines.append(f"settings: {settings_path()}")
    lines.append(f"log: {log_file()}")
    problems: list[str] = []
    try:
        source = ModelSource.parse(model_text)
    except ModelError as exc:
        source = None
        problems.append(str(exc))
    if source is not None:
        lines.append(f"model: {source.describe()}")
        plan = choose_plan(device, demo=source.is_demo)
        lines.append(f"memory plan (auto): {plan.value} — {plan.label}")
        if source.kind is SourceKind.FOLDER:
            problems += check_model_folder(source.location)
        elif source.kind is SourceKind.HF_CACHE:
            folder = hf_cache_folder(source.location, source.revision)
            if folder is None:
                problems.append(f"{source.location} is not in the Hugging Face cache")
            else:
                problems += check_model_folder(folder)
    cached = hf_cache_folder(HUB_REPO_ID)
    lines.append(f"{HUB_REPO_ID} in the Hugging Face cache: {cached or 'no'}")
    lines.append(_leftovers_line())
    for line in lines:
        print(line)
    if problems:
        for problem in problems:
            print(f"problem: {problem}")
        raise CliError(f"{len(problems)} problem(s) with the model; see above", code=1)
    print("model: ok")
    return 0


def _leftovers_line() -> str:
    """How many files runs that were stopped (killed, crashed) left behind; the next start of the
    app, or the next command writing into their folder, removes them (core/leftovers.py)."""
    import tempfile
    from pathlib import Path

    from shotsketch.core import leftovers, paths

    folders = [paths.data_dir(), paths.data_dir() / "media", Path(tempfile.gettempdir())]
    found = [p for folder in folders for p in leftovers.stale(folder)]
    if not found:
        return "leftovers of stopped runs: 0"
    return f"leftovers of stopped runs: {len(found)} (removed at the next start), e.g. {found[0]}"
