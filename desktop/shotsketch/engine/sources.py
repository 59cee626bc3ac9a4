"""Where the model comes from: the demo model, a local diffusers folder, the Hugging Face cache,
or a download the user asked for. Offline by default.

Safety: weights load as safetensors only, never pickle; no remote code; a folder's
model_index.json may only name the component classes of the Wan2.2 TI2V-5B pipeline.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shotsketch.core.safetensors_header import HeaderProblem, read_header
from shotsketch.engine.demo import DEMO_MODEL_ID, DEMO_REVISION

HUB_REPO_ID = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
PIPELINE_CLASSES = {"WanPipeline", "WanImageToVideoPipeline", "WanDMDPipeline"}  # DMD: FastVideo's distilled 5B

# component -> (allowed libraries, allowed classes, kind)
_COMPONENTS: dict[str, tuple[set[str], set[str], str]] = {
    "transformer": ({"diffusers"}, {"WanTransformer3DModel"}, "model"),
    "vae": ({"diffusers"}, {"AutoencoderKLWan"}, "model"),
    "text_encoder": ({"transformers"}, {"UMT5EncoderModel", "T5EncoderModel"}, "model"),
    "tokenizer": ({"transformers"}, {"T5TokenizerFast", "T5Tokenizer", "PreTrainedTokenizerFast", "TokenizersBackend", "AutoTokenizer"}, "tokenizer"),
    "scheduler": ({"diffusers"}, {"UniPCMultistepScheduler", "FlowMatchEulerDiscreteScheduler"}, "scheduler"),
}
_OPTIONAL = {"transformer_2"}  # the 5B has none; the A14B would
_HUB_PATTERNS = ["model_index.json", "*/config.json", "*/*.safetensors", "*/*.safetensors.index.json",
                 "scheduler/scheduler_config.json", "tokenizer/*"]


class SourceKind(enum.Enum):
    DEMO = "demo"
    FOLDER = "folder"
    HF_CACHE = "hf-cache"


class ModelError(RuntimeError):
    """The model cannot be used; the message names what is wrong and what to do."""


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    location: str = ""  # folder path, or hub repo id
    revision: str | None = None

    @property
    def model_id(self) -> str:
        if self.kind is SourceKind.DEMO:
            return DEMO_MODEL_ID
        if self.kind is SourceKind.FOLDER:
            return str(Path(self.location).resolve())
        return self.location

    @property
    def is_demo(self) -> bool:
        return self.kind is SourceKind.DEMO

    def describe(self) -> str:
        from shotsketch import DEMO_LABEL

        if self.is_demo:
            return DEMO_LABEL
        if self.kind is SourceKind.FOLDER:
            return f"local folder {self.location}"
        return f"{self.location} from the Hugging Face cache"

    @classmethod
    def demo(cls) -> "ModelSource":
        return cls(SourceKind.DEMO, DEMO_MODEL_ID, DEMO_REVISION)

    @classmethod
    def parse(cls, text: str) -> "ModelSource":
        """`demo`, `hf:ORG/NAME[@REVISION]`, or a folder path."""
        text = text.strip()
        if text == DEMO_MODEL_ID:
            return cls.demo()
        if text.startswith("hf:"):
            repo, _, rev = text[3:].partition("@")
            if repo.count("/") != 1:
                raise ModelError(f"'{text}' is not a Hugging Face model id (expected hf:ORG/NAME)")
            return cls(SourceKind.HF_CACHE, repo, rev or None)
        return cls(SourceKind.FOLDER, text)


_MAX_JSON_BYTES = 16 * 1024 * 1024  # model_index.json, config.json, a shard index: far smaller in practice


def _read_json(path: Path) -> Any:
    """A small JSON file of the model folder; ValueError (with a reason) when it is not one."""
    if not path.is_file():
        raise ValueError("it is not a file")
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise ValueError(f"it is larger than {_MAX_JSON_BYTES // (1024 * 1024)} MB")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(type(exc).__name__) from None


def safetensors_problem(path: Path, name: str) -> str | None:
    """What is wrong with a .safetensors file, from its header and size alone (nothing is loaded),
    or ``None``. ``name`` is how the message names the file."""
    again = "download the model again"
    try:
        header, length, size = read_header(path)
    except HeaderProblem as problem:
        match problem.kind:
            case "short" if problem.size == 0:
                return f"{name} is empty (0 bytes): {again}"
            case "short" | "damaged":
                return f"{name} is not a safetensors file (its header is damaged or cut short): {again}"
            case "unreadable":
                return f"{name} cannot be read ({problem.os_error.strerror or problem.os_error})"
            case "not-json":
                return f"{name} is not a safetensors file (its header is not readable): {again}"
        return f"{name} is not a safetensors file: {again}"
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            return f"{name} is not a safetensors file (tensor {str(key)[:60]!r} has no valid place): {again}"
        end = max(end, offsets[1])
    data = size - 8 - length
    if end > data:
        return f"{name} is cut short ({end - data} bytes missing): the download did not finish; {again}"
    if end < data:
        return f"{name} has extra bytes after its weights ({data - end}): {again}"
    return None


def _has_safetensors(folder: Path) -> tuple[bool, str | None]:
    """(ok, problem) for a model component folder's weights: every weight file's header and size
    are checked before anything loads (a truncated file used to fail seconds into loading)."""
    index_files = list(folder.glob("*.safetensors.index.json"))
    for index in index_files:
        try:
            data = _read_json(index)
            shards = set(data["weight_map"].values())
            if not all(isinstance(s, str) for s in shards):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False, f"{folder.name}/{index.name} is not a valid shard index"
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            return False, f"{folder.name} is missing weight shard(s): {', '.join(missing[:3])}"
        return _weights_problem(folder, sorted(folder / s for s in shards))
    weights = sorted(folder.glob("*.safetensors"))
    if weights:
        return _weights_problem(folder, weights)
    if list(folder.glob("*.bin")) or list(folder.glob("*.pt")) or list(folder.glob("*.ckpt")):
        return False, (f"{folder.name} has only pickle weights (.bin/.pt); Shotsketch loads .safetensors only "
                       "for safety — download the safetensors version of the model")
    return False, f"{folder.name} has no .safetensors weights"


def _weights_problem(folder: Path, files: list[Path]) -> tuple[bool, str | None]:
    for file in files:
        problem = safetensors_problem(file, f"{folder.name}/{file.name}")
        if problem:
            return False, problem
    return True, None


def check_model_folder(path: str | os.PathLike[str]) -> list[str]:
    """Every problem with a diffusers folder of Wan2.2 TI2V-5B, as sentences; empty when usable."""
    root = Path(path)
    try:
        root.stat()
    except FileNotFoundError:
        return [f"the model folder {root} does not exist"]
    except (OSError, ValueError) as exc:  # a name too long, a NUL, no permission
        return [f"the model folder {str(root)[:200]} cannot be read ({getattr(exc, 'strerror', None) or exc})"]
    if not root.is_dir():
        return [f"{root} is not a folder"]
    index_path = root / "model_index.json"
    if not index_path.is_file():
        return [f"{root} has no model_index.json — choose the folder that contains model_index.json "
                f"(a diffusers download of {HUB_REPO_ID})"]
    try:
        index = _read_json(index_path)
    except (OSError, ValueError) as exc:
        return [f"{index_path} is not valid JSON ({str(exc)[:200]})"]
    if not isinstance(index, dict):
        return [f"{index_path} is not a JSON object"]
    problems: list[str] = []
    pipeline = index.get("_class_name")
    if not isinstance(pipeline, str) or pipeline not in PIPELINE_CLASSES:
        problems.append(f"model_index.json describes a {str(pipeline)[:80]!r}, not a Wan pipeline")
    if not isinstance(index.get("_diffusers_version", ""), str):
        problems.append("model_index.json's _diffusers_version is not text")
    for name, (libs, classes, kind) in _COMPONENTS.items():
        entry = index.get(name)
        if not (isinstance(entry, list) and len(entry) == 2):
            problems.append(f"model_index.json does not name the {name} component")
            continue
        lib, cls = entry
        if not (isinstance(lib, str) and isinstance(cls, str)) or lib not in libs or cls not in classes:
            problems.append(f"the {name} component is {str(lib)[:80]}.{str(cls)[:80]}, which Shotsketch does not load")
            continue
        folder = root / name
        if not folder.is_dir():
            problems.append(f"the {name} folder is missing")
            continue
        if kind == "model":
            if not (folder / "config.json").is_file():
                problems.append(f"{name}/config.json is missing")
            elif not isinstance(_json_or_none(folder / "config.json"), dict):
                problems.append(f"{name}/config.json is not a JSON object")
            ok, problem = _has_safetensors(folder)
            if not ok and problem:
                problems.append(problem)
        elif kind == "scheduler":
            if not (folder / "scheduler_config.json").is_file():
                problems.append("scheduler/scheduler_config.json is missing")
        elif kind == "tokenizer":
            names = {p.name for p in folder.iterdir()}
            if not names & {"tokenizer.json", "spiece.model"}:
                problems.append("the tokenizer folder has neither tokenizer.json nor spiece.model")
    for name in _OPTIONAL:
        entry = index.get(name)
        if isinstance(entry, list) and entry and entry[0] is not None:
            problems.append(f"model_index.json names a {name}: this is not the TI2V-5B model")
    for key, value in index.items():
        if key.startswith("_") or key in _COMPONENTS or key in _OPTIONAL:
            continue
        if isinstance(value, list) and value and value[0] is not None:
            problems.append(f"model_index.json names an unexpected component {key!r}")
    return problems


def _json_or_none(path: Path) -> Any:
    try:
        return _read_json(path)
    except (OSError, ValueError):
        return None


def quiet_loading_bars() -> None:
    """diffusers' and transformers' own progress bars while a model loads: off (the app reports
    its progress itself, and ``--quiet`` means quiet)."""
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _cache_dir() -> str | None:
    """The hub cache, read at call time (HF_HUB_CACHE, then HF_HOME) so a changed environment is honoured."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def hf_cache_folder(repo_id: str = HUB_REPO_ID, revision: str | None = None) -> Path | None:
    """The snapshot folder of repo_id in the local Hugging Face cache, or None. Never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True, cache_dir=_cache_dir()))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def download_model(
    repo_id: str = HUB_REPO_ID,
    revision: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download (or resume) the safetensors model files into the Hugging Face cache. Only when asked."""
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm as base_tqdm

    files: dict[int, tuple[int, int]] = {}  # one progress bar per file: report the sum over all of them

    class _Progress(base_tqdm):  # type: ignore[misc, valid-type]
        def update(self, n=1):  # noqa: ANN001
            out = super().update(n)
            # Count here: a disabled bar (the hub's choice, by its settings) does not advance self.n.
            self._bytes_done = getattr(self, "_bytes_done", 0) + (n or 0)
            total = getattr(self, "total", None)
            if progress is not None and total and getattr(self, "unit", "B") == "B":
                files[id(self)] = (int(self._bytes_done), int(total))
                progress(sum(d for d, _ in files.values()), sum(t for _, t in files.values()))
            return out

    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=_HUB_PATTERNS, tqdm_class=_Progress,
                                   cache_dir=_cache_dir())
    except Exception as exc:  # the hub client raises many kinds; all mean "could not download"
        raise ModelError(f"could not download {repo_id}: {exc}") from exc
    return Path(folder)


def resolve_folder(source: ModelSource) -> Path:
    """The folder to load from, checked; raises ModelError naming every problem."""
    if source.kind is SourceKind.FOLDER:
        folder = Path(source.location).expanduser()
    elif source.kind is SourceKind.HF_CACHE:
        found = hf_cache_folder(source.location, source.revision)
        if found is None:
            raise ModelError(
                f"{source.location} is not in the Hugging Face cache; download it from the app's model setup "
                f"or choose a local folder"
            )
        folder = found
    else:
        raise ModelError("the demo model has no folder")
    problems = check_model_folder(folder)
    if problems:
        raise ModelError(f"the model at {folder} cannot be used: " + "; ".join(problems))
    return folder


def folder_revision(folder: Path) -> str | None:
    """The hub commit of a cache snapshot folder, else the diffusers version that saved it."""
    if folder.parent.name == "snapshots":
        return folder.name
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        return f"diffusers-{index.get('_diffusers_version', 'unknown')}"
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- step-distilled checkpoints
MAX_DISTILLED_STEPS = 8


def distilled_schedule(folder: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """The timesteps of a step-distilled checkpoint where its folder says it is one, else None.

    FastVideo's DMD checkpoints (FastWan2.2-TI2V-5B-FullAttn-Diffusers) name their pipeline
    `WanDMDPipeline` in model_index.json, may list `dmd_denoising_steps` there or in the scheduler's
    config, and say so in their model card (README.md); their scheduler folder holds the base
    model's UniPC, which is not how they sample (engine/schedulers.py DistilledSteps)."""
    from shotsketch.engine.schedulers import DMD_TIMESTEPS

    root = Path(folder)
    index = _json_or_none(root / "model_index.json")
    scheduler = _json_or_none(root / "scheduler" / "scheduler_config.json")
    for config in (index, scheduler):
        steps = config.get("dmd_denoising_steps") if isinstance(config, dict) else None
        if (isinstance(steps, list) and 0 < len(steps) <= MAX_DISTILLED_STEPS
                and all(isinstance(t, int) and not isinstance(t, bool) and 0 < t <= 1000 for t in steps)):
            return tuple(steps)
    if isinstance(index, dict) and index.get("_class_name") == "WanDMDPipeline":
        return DMD_TIMESTEPS
    card = root / "README.md"
    try:
        text = card.read_text(encoding="utf-8", errors="replace")[:200_000].lower() if card.is_file() else ""
    except OSError:
        text = ""
    if "fastwan2.2-ti2v-5b" in text and "dmd" in text:
        return DMD_TIMESTEPS
    return None
