"""LoRA files for the Wan2.2 TI2V-5B transformer, fused into its weights.

A request names LoRA files with a strength each (`GenerationRequest.loras`, the CLI's
`--lora FILE[:STRENGTH]`). Files are read as safetensors only (never pickle) in any of the key
layouts in use, which diffusers' `WanPipeline.lora_state_dict` turns into its own:

- diffusers / PEFT: `transformer.blocks.0.attn1.to_q.lora_A.weight` (or without `transformer.`)
- kohya-style names, as musubi-tuner and kohya's scripts write them:
  `lora_unet_blocks_0_self_attn_q.lora_down.weight` with `.alpha`
- the original Wan / ComfyUI names (musubi-tuner's converted output, most trainers' exports):
  `diffusion_model.blocks.0.self_attn.q.lora_A.weight` (or `lora_down`/`lora_up` with `.alpha`)

Each LoRA's product (up @ down, times its strength) is added into the transformer's own weights,
so the model keeps its plain modules: the compiled blocks, the fused kernels and FP8 (engine/fused.py,
engine/fp8.py) apply as without a LoRA, and nothing recompiles. The weights a LoRA changed are kept
on the CPU the first time and put back exactly on a switch (no drift from subtracting a fused LoRA
in bf16). Fusing this way, rather than through PEFT's LoRA layers, is what keeps a switch short: the
PEFT round trip (load_lora_weights, set_adapters, fuse_lora, unload) took 5-8 s on an H200 with
rank-32 LoRAs over all 300 layers (bench/RESULTS.md, session 4).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch

from shotsketch.engine.requests import MAX_LORA_STRENGTH, LoraChoice, LoraError, lora_choices

log = logging.getLogger(__name__)

MAX_STRENGTH = MAX_LORA_STRENGTH  # the request-facing part (LoraChoice, its checks) is in engine/requests.py


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
    """The LoRAs fused into a transformer now, and how to change them.

    Each LoRA's products are added straight into the weights they change (float32 sums, one rounding
    to the weights' dtype), so the model keeps its plain modules. The first time a layer is changed
    its original weights are kept on the CPU (pinned, for fast copies); a switch copies them back and
    adds the new LoRAs' products: exact, and no slower the tenth time than the first."""

    def __init__(self) -> None:
        self.active: tuple[tuple[str, float], ...] = ()  # (sha256, strength) of each fused LoRA
        self.entries: list[dict] = []  # for the recipe
        self._originals: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}  # layer -> weight, bias (CPU)
        self._changed: set[str] = set()  # layers that hold LoRA products now

    def apply(self, pipe, choices: list[LoraChoice]) -> list[dict]:  # noqa: ANN001 - a WanPipeline
        """Make exactly `choices` fused into `pipe.transformer`; returns the recipe entries.
        Nothing happens when they are fused already (same files by content, same strengths)."""
        for choice in choices:
            choice.check()
        wanted = tuple((file_digest(c.path), float(c.strength)) for c in choices)
        if wanted == self.active:
            return self.entries
        transformer = pipe.transformer
        products: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]]] = {}
        entries = []
        for choice, (digest, strength) in zip(choices, wanted):  # every file read and checked before any weight changes
            state, layout = read_lora(choice)
            check_fits(state, transformer, Path(choice.path).name)
            scale = strength * alpha_scale(choice.path)
            for key, down in state.items():
                if key.endswith(".lora_A.weight"):
                    target = key.removeprefix("transformer.").removesuffix(".lora_A.weight")
                    up = state.get(f"transformer.{target}.lora_B.weight")
                    if up is None:
                        raise LoraError(f"{Path(choice.path).name} has no up-projection for {target}")
                    products.setdefault(target, []).append((down, up, state.get(f"transformer.{target}.lora_B.bias"), scale))
            entries.append({"file": Path(choice.path).name, "sha256": digest, "strength": strength, "layout": layout})
        modules = dict(transformer.named_modules())
        with torch.no_grad():
            targets = sorted(self._changed | set(products))
            self._keep_originals([(t, modules[t]) for t in targets])
            for target in targets:
                self._set(modules[target], target, products.get(target, []))
        self._changed = set(products)
        self.active, self.entries = wanted, entries
        if entries:
            log.info("fused %d LoRA(s): %s", len(entries), ", ".join(f"{e['file']} x{e['strength']:g}" for e in entries))
        return entries

    def _keep_originals(self, layers: list[tuple[str, torch.nn.Linear]]) -> None:
        """The original weights and biases of the layers not kept yet, copied straight into CPU
        buffers of `SLAB_BYTES` (pinned where the weights are on the GPU, so a switch copies them
        back at full speed). One buffer per layer, as before, copied each weight twice (to pageable
        memory, then pinned) and pinned each in a block rounded up to a power of two (PyTorch's
        pinned-memory allocator): ~15 GiB pinned for the 5B's 9.8 GB of linear weights."""
        todo = [(name, t) for name, layer in layers if name not in self._originals
                for t in (layer.weight, layer.bias) if t is not None]
        if not todo:
            return
        pin = any(t.device.type == "cuda" for _, t in todo)
        sizes = [-(-t.numel() * t.element_size() // SLAB_ALIGN) * SLAB_ALIGN for _, t in todo]
        left = sum(sizes)
        kept: dict[int, torch.Tensor] = {}
        slab, used = None, 0
        for (_, t), size in zip(todo, sizes):
            if slab is None or used + size > slab.numel():
                slab, used = torch.empty(max(min(SLAB_BYTES, left), size), dtype=torch.uint8, pin_memory=pin), 0
            left -= size
            view = slab[used:used + t.numel() * t.element_size()].view(t.dtype).view(t.shape)
            view.copy_(t.detach(), non_blocking=pin)
            kept[id(t)] = view
            used += size
        if pin:
            torch.cuda.synchronize()  # the copies above ran on the stream: done before any weight changes
        for name, layer in layers:
            if name not in self._originals:
                self._originals[name] = (kept[id(layer.weight)], None if layer.bias is None else kept[id(layer.bias)])

    def _set(self, layer: torch.nn.Linear, name: str, products: list) -> None:
        """The layer's original weights plus the given products, in place (the same parameters)."""
        if name not in self._originals:
            self._keep_originals([(name, layer)])
        weight, bias = self._originals[name]
        device = layer.weight.device
        if not products:
            layer.weight.copy_(weight, non_blocking=True)
            if bias is not None:
                layer.bias.copy_(bias, non_blocking=True)
            return
        total = weight.to(device, torch.float32, non_blocking=True, copy=True)  # never the kept original itself
        extra_bias = None
        for down, up, up_bias, scale in products:
            total.addmm_(up.to(device, torch.float32), down.to(device, torch.float32), alpha=scale)
            if up_bias is not None:
                extra_bias = (0 if extra_bias is None else extra_bias) + scale * up_bias.to(device, torch.float32)
        layer.weight.copy_(total)
        if bias is not None:
            layer.bias.copy_(bias.to(device, non_blocking=True).float() + (0 if extra_bias is None else extra_bias))

    def restore(self, transformer: torch.nn.Module) -> None:
        """Put back the weights as they were before any LoRA (in place: the same parameters)."""
        modules = dict(transformer.named_modules())
        with torch.no_grad():
            for target in self._changed:
                self._set(modules[target], target, [])
        self._changed = set()
        self.active, self.entries = (), []


SLAB_BYTES = 256 * 2**20  # the originals' CPU buffers (a power of two: no rounding waste when pinned)
SLAB_ALIGN = 64


def alpha_scale(path: str) -> float:
    """lora_alpha / r from a PEFT-saved file's metadata (diffusers' layout); 1 where the file does not
    say (the other layouts' alphas are folded into the weights when they are read)."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as fh:
            meta = (fh.metadata() or {}).get("lora_adapter_metadata")
        config = json.loads(meta) if meta else {}
        config = config.get("transformer", config) if isinstance(config, dict) else {}
        alpha, rank = config.get("lora_alpha"), config.get("r")
        return float(alpha) / float(rank) if alpha and rank else 1.0
    except (OSError, ValueError, TypeError, AttributeError):
        return 1.0


def loras_of(request) -> list[LoraChoice]:  # noqa: ANN001 - a GenerationRequest
    """The LoRAs a request asks for: its typed `loras` field; for requests and recipes from before
    that field, `extra["loras"]`, each as "FILE[:STRENGTH]", [FILE, STRENGTH] or
    {"path": FILE, "strength": STRENGTH}."""
    typed = getattr(request, "loras", None)
    if typed:
        return list(lora_choices(typed))
    return list(lora_choices(dict(getattr(request, "extra", ()) or ()).get("loras") or ()))


__all__ = ["FusedLoras", "LoraChoice", "LoraError", "MAX_STRENGTH", "alpha_scale", "check_fits", "file_digest",
           "key_layout", "loras_of", "read_lora"]
