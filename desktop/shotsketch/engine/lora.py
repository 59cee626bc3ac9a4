"""LoRA files for the Wan2.2 TI2V-5B transformer, fused into its weights.

A request names LoRA files with a strength each (`GenerationRequest.loras`, the CLI's
`--lora FILE[:STRENGTH]`). Files are read as safetensors only (never pickle) in any of the key
layouts in use, which diffusers' `WanPipeline.lora_state_dict` turns into its own:

- diffusers / PEFT: `transformer.blocks.0.attn1.to_q.lora_A.weight` (or without `transformer.`)
- kohya-style names, as musubi-tuner and kohya's scripts write them:
  `lora_unet_blocks_0_self_attn_q.lora_down.weight` with `.alpha`
- the original Wan / ComfyUI names (musubi-tuner's converted output, most trainers' exports):
  `diffusion_model.blocks.0.self_attn.q.lora_A.weight` (or `lora_down`/`lora_up` with `.alpha`)

They are loaded through diffusers' `load_lora_weights` (PEFT), weighted with `set_adapters`, fused
into the transformer's own weights and the LoRA layers removed again, so the model keeps its plain
modules: the compiled blocks, the fused kernels and FP8 (engine/fused.py, engine/fp8.py) apply as
without a LoRA, and nothing recompiles. The weights a LoRA changed are kept on the CPU and put back
exactly on a switch (no drift from subtracting a fused LoRA in bf16).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from shotsketch.engine.requests import RequestError

log = logging.getLogger(__name__)

MAX_STRENGTH = 4.0


class LoraError(RequestError):
    """A LoRA that cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class LoraChoice:
    path: str
    strength: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "LoraChoice":
        """`FILE` or `FILE:STRENGTH` (a drive letter's colon is part of the file)."""
        head, sep, tail = text.rpartition(":")
        if sep and head and not tail.startswith(("\\", "/")):
            try:
                return cls(head, float(tail))
            except ValueError:
                pass
        return cls(text, 1.0)

    def check(self) -> None:
        path = Path(self.path)
        if not (math.isfinite(self.strength) and -MAX_STRENGTH <= self.strength <= MAX_STRENGTH):
            raise LoraError(f"the LoRA strength {self.strength:g} for {path.name} must be between "
                            f"{-MAX_STRENGTH:g} and {MAX_STRENGTH:g}")
        if not path.is_file():
            raise LoraError(f"the LoRA file {path} does not exist")
        if path.suffix.lower() != ".safetensors":
            raise LoraError(f"the LoRA file {path.name} is not a .safetensors file; Shotsketch reads LoRAs "
                            "as safetensors only (for safety): use the .safetensors version")


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str) -> str:
    """SHA-256 of a file, remembered per (path, size, modification time)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        with open(path, "rb") as fh:
            _DIGESTS[key] = hashlib.file_digest(fh, "sha256").hexdigest()
    return _DIGESTS[key]


def key_layout(keys: list[str]) -> str:
    """Which layout a LoRA file's keys are in: "diffusers", "kohya" or "wan" (the original names)."""
    if any(k.startswith("diffusion_model.") for k in keys):
        return "wan"
    if any(k.startswith("lora_unet_") for k in keys):
        return "kohya"
    return "diffusers"


def read_lora(choice: LoraChoice) -> tuple[dict[str, torch.Tensor], str]:
    """The file's tensors in diffusers' layout (keys under `transformer.`), and the layout it was in."""
    choice.check()
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    name = Path(choice.path).name
    try:
        raw = load_file(choice.path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoraError(f"the LoRA file {name} could not be read ({exc})") from exc
    if not raw:
        raise LoraError(f"the LoRA file {name} holds no weights")
    layout = key_layout(list(raw))
    from diffusers import WanPipeline

    try:
        converted = WanPipeline.lora_state_dict(raw)
    except (KeyError, ValueError, IndexError, RuntimeError) as exc:
        raise LoraError(f"{name} is not a LoRA for Wan2.2 TI2V-5B (its {layout} keys do not match: {exc})") from exc
    converted = {k if k.startswith("transformer.") else f"transformer.{k}": v for k, v in converted.items()}
    if not any(".lora_A." in k or ".lora_B." in k or ".lora_down." in k for k in converted):
        raise LoraError(f"{name} has no LoRA weights for the transformer")
    return converted, layout


def check_fits(state: dict[str, torch.Tensor], transformer: torch.nn.Module, name: str) -> None:
    """Every LoRA pair targets a linear layer of this transformer with matching sizes (a LoRA made
    for another model, the 14B say, is refused before it touches the weights)."""
    modules = dict(transformer.named_modules())
    for key, tensor in state.items():
        for part, dim in ((".lora_A.weight", 1), (".lora_B.weight", 0)):
            if key.endswith(part):
                target = key.removeprefix("transformer.").removesuffix(part)
                layer = modules.get(target)
                if not isinstance(layer, torch.nn.Linear):
                    raise LoraError(f"{name} changes a layer this model does not have ({target}): "
                                    "it was made for another model")
                size = layer.in_features if dim == 1 else layer.out_features
                if tensor.shape[dim] != size:
                    raise LoraError(f"{name} does not fit this model ({target}: {tensor.shape[dim]} against "
                                    f"{size}): it was made for another model")


class FusedLoras:
    """The LoRAs fused into a pipeline's transformer now, and how to change them."""

    def __init__(self) -> None:
        self.active: tuple[tuple[str, float], ...] = ()  # (sha256, strength) of each fused LoRA
        self.entries: list[dict] = []  # for the recipe
        self._originals: dict[str, torch.Tensor] = {}  # parameter name -> its weights before fusing (CPU)

    def apply(self, pipe, choices: list[LoraChoice]) -> list[dict]:  # noqa: ANN001 - a WanPipeline
        """Make exactly `choices` fused into `pipe.transformer`; returns the recipe entries.
        Nothing happens when they are fused already (same files by content, same strengths)."""
        for choice in choices:
            choice.check()
        wanted = tuple((file_digest(c.path), float(c.strength)) for c in choices)
        if wanted == self.active:
            return self.entries
        self.restore(pipe.transformer)
        if not choices:
            return []
        transformer = pipe.transformer
        states, entries = [], []
        for choice, (digest, strength) in zip(choices, wanted):  # every file read and checked before any is loaded
            state, layout = read_lora(choice)
            check_fits(state, transformer, Path(choice.path).name)
            states.append(state)
            entries.append({"file": Path(choice.path).name, "sha256": digest, "strength": strength, "layout": layout})
        names: list[str] = []
        try:
            for i, state in enumerate(states):
                pipe.load_lora_weights(state, adapter_name=f"lora{i}")
                names.append(f"lora{i}")
            pipe.set_adapters(names, adapter_weights=[s for _, s in wanted])
            self._keep_originals(transformer)
            pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=names)
        except Exception:
            if names:
                pipe.unload_lora_weights()
            self.restore(transformer)
            raise
        pipe.unload_lora_weights()  # the LoRA layers go; their effect stays in the weights
        self.active, self.entries = wanted, entries
        log.info("fused %d LoRA(s): %s", len(entries), ", ".join(f"{e['file']} x{e['strength']:g}" for e in entries))
        return entries

    def _keep_originals(self, transformer: torch.nn.Module) -> None:
        """A CPU copy of every weight a loaded LoRA wraps (PEFT's `base_layer`), before it is fused."""
        for name, module in transformer.named_modules():
            base = getattr(module, "base_layer", None)
            if base is None:
                continue
            for pname, param in base.named_parameters(recurse=False):
                key = f"{name}.{pname}"
                if key not in self._originals:
                    self._originals[key] = param.detach().to("cpu", copy=True)

    def restore(self, transformer: torch.nn.Module) -> None:
        """Put back the weights as they were before any LoRA (in place: the same parameters)."""
        if self._originals:
            params = {}
            for name, module in transformer.named_modules():
                for pname, param in module.named_parameters(recurse=False):
                    params[f"{name.replace('.base_layer', '')}.{pname}"] = param
            with torch.no_grad():
                for key, saved in self._originals.items():
                    params[key].copy_(saved.to(params[key].device, params[key].dtype))
        self._originals.clear()
        self.active, self.entries = (), []


def loras_of(request) -> list[LoraChoice]:  # noqa: ANN001 - a GenerationRequest
    """The LoRAs a request asks for: its `loras` field where it has one, else `extra["loras"]`; each
    as "FILE[:STRENGTH]", [FILE, STRENGTH] or {"path": FILE, "strength": STRENGTH}."""
    items = getattr(request, "loras", None) or dict(request.extra).get("loras", ()) or ()
    if isinstance(items, (str, dict)):
        items = [items]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(LoraChoice.parse(item))
        elif isinstance(item, dict) and isinstance(item.get("path"), str):
            out.append(LoraChoice(item["path"], _strength(item.get("strength", 1.0))))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            out.append(LoraChoice(item[0], _strength(item[1])))
        else:
            raise LoraError(f"a LoRA must be given as FILE[:STRENGTH], not {item!r}")
    return out


def _strength(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LoraError(f"a LoRA strength must be a number, not {value!r}")
    return float(value)
