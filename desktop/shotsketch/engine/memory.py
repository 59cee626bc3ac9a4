"""Device, dtype and memory plans.

A plan says which parts live on the GPU. Plans are ordered from fastest (most VRAM) to
leanest. The planner predicts each plan's peak for a job (card, size, frames, compile, guidance,
decode: `predict_peak`) and picks the fastest that fits what is free with a margin
(`choose_plan`); on out-of-memory the engine still falls back to the next plan, and logs the miss.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

GiB = 1024**3


class MemoryPlan(enum.Enum):
    ALL_ON_GPU = "gpu"
    TEXT_ENCODER_OFFLOAD = "text-encoder-offload"  # text encoder on the CPU once prompts are encoded
    MODEL_OFFLOAD = "model-offload"  # diffusers model CPU offload: one model on the GPU at a time
    GROUP_OFFLOAD = "group-offload"  # transformer blocks streamed to the GPU as they run
    CPU = "cpu"  # no GPU

    @property
    def label(self) -> str:
        return {
            MemoryPlan.ALL_ON_GPU: "everything on the GPU (fastest, most VRAM)",
            MemoryPlan.TEXT_ENCODER_OFFLOAD: "text encoder streamed from system RAM while it encodes",
            MemoryPlan.MODEL_OFFLOAD: "one model on the GPU at a time, VAE tiling",
            MemoryPlan.GROUP_OFFLOAD: "transformer blocks streamed from system RAM, VAE tiling (leanest)",
            MemoryPlan.CPU: "CPU only",
        }[self]

    @property
    def vae_tiling(self) -> bool:
        # With the text encoder off the GPU, a 720p clip decodes untiled in ~6 GiB (engine/vae_decode.py);
        # where the planner predicts that it does not fit beside the transformer, that job's decode runs
        # in tiles (PeakPrediction.tiled_decode), and should it run out anyway it falls back to tiles
        # (Generator.decode).
        return self in (MemoryPlan.MODEL_OFFLOAD, MemoryPlan.GROUP_OFFLOAD)

    @property
    def streams_blocks(self) -> bool:
        """diffusers' group-offloading hooks sit on the transformer's blocks and copy each one in as it
        runs. The hook's copy is `torch.compiler.disable`d, which breaks the blocks' full graph
        (bench/RESULTS.md session 7: every such job's compile failed), so there the blocks compile with
        graph breaks allowed (engine/speed.py streamed_compile) or run uncompiled. One model at a time
        hooks the whole transformer, outside the compiled blocks, and compiles as before."""
        return self is MemoryPlan.GROUP_OFFLOAD

    @property
    def streams_text_encoder(self) -> bool:
        """The UMT5 encoder (11 GiB) stays in system RAM and its blocks stream to the GPU as it
        encodes a new prompt: two blocks on the GPU instead of the whole encoder."""
        return self in (MemoryPlan.TEXT_ENCODER_OFFLOAD, MemoryPlan.MODEL_OFFLOAD, MemoryPlan.GROUP_OFFLOAD)

    def leaner(self) -> "MemoryPlan | None":
        """The plan an out-of-memory job steps down to (PLAN_ORDER; one model at a time, a plan only
        chosen by hand, steps down to streaming the blocks)."""
        if self is MemoryPlan.MODEL_OFFLOAD:
            return MemoryPlan.GROUP_OFFLOAD
        if self not in PLAN_ORDER or self is PLAN_ORDER[-1]:
            return None
        return PLAN_ORDER[PLAN_ORDER.index(self) + 1]


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype
    name: str
    total_bytes: int | None = None
    free_bytes: int | None = None


def gpu_memory_budget() -> int | None:
    """SHOTSKETCH_GPU_MEMORY_GIB caps the VRAM Shotsketch plans for (and, on CUDA, may use)."""
    text = os.environ.get("SHOTSKETCH_GPU_MEMORY_GIB", "").strip()
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return int(value * GiB) if value and value > 0 else None


def pick_device(prefer: str | None = None) -> DeviceChoice:
    """CUDA in bfloat16 where present, then MPS, else CPU in float32; `prefer` overrides."""
    if prefer in (None, "cuda") and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        budget = gpu_memory_budget()
        if budget is not None:  # "use at most N GiB": another app needs the rest, or a smaller card is emulated
            # what this process already holds counts against the budget (a display's share, emulated)
            free, total = min(free, max(0, budget - torch.cuda.memory_reserved())), min(total, budget)
        return DeviceChoice("cuda", torch.bfloat16, torch.cuda.get_device_name(), total, free)
    mps = getattr(torch.backends, "mps", None)
    if prefer in (None, "mps") and mps is not None and mps.is_available():
        return DeviceChoice("mps", torch.bfloat16, "Apple GPU (MPS)")
    return DeviceChoice("cpu", torch.float32, "CPU")


# ----------------------------------------------------------------------------- the planner
# The plans the planner chooses from, fastest first. One model at a time (diffusers' model CPU offload)
# is left out: on an emulated 12 GiB card (bench/RESULTS.md, session 7) its preview and 480x832x81
# jobs took 68 s and 62 s where streaming the blocks took 10 s and 9 s on an 8 GiB card; it stays a
# plan a person can choose (--memory-plan, Settings).
PLAN_ORDER = (MemoryPlan.ALL_ON_GPU, MemoryPlan.TEXT_ENCODER_OFFLOAD, MemoryPlan.GROUP_OFFLOAD)
MARGIN_BYTES = GiB // 2  # allocator fragmentation and what the prediction leaves out, on top of...
MARGIN_FRACTION = 0.04  # ...this share of the predicted peak
TEXT_TOKENS = 512  # the prompt embeddings' length
TEXT_KV_MAX_TOKENS = 8192  # engine/text_kv.py keeps the text keys and values for jobs up to this many video tokens
ENCODE_ACTIVATION_BYTES = 3 * GiB // 10  # the text encoder over one prompt's tokens (at most 512)
# The fast decode (engine/vae_decode.py) holds about this much per output pixel of a frame while it
# streams through the clip (a 704x1280 clip: 6.8 GiB measured, bench/RESULTS.md decode case), and its
# output plus the float conversion to uint8 this much per pixel of the whole clip.
DECODE_BYTES_PER_FRAME_PIXEL = 7550
# The decoded clip in the VAE's dtype (bf16: 3 channels x 2 bytes) while it is turned into 8-bit
# frames a few at a time (Generator.decode), with room for one chunk's float32 copy.
DECODE_BYTES_PER_CLIP_PIXEL = 8
# Streaming the blocks holds more than two blocks and the eager activations count: the copies in
# flight on the offloading stream and the uncompiled block's temporaries. Measured on the 5B (bench/
# RESULTS.md session 7, 1280x704x121 on 8 and 12 GiB cards): peaks of 4.63-5.17 GiB where the count
# without this gave 4.48-4.57.
STREAMED_BLOCKS_EXTRA_BYTES = 7 * GiB // 10
TILED_DECODE_BYTES = GiB // 2  # diffusers' tiled decode: one 256x256 tile's working set...
TILED_DECODE_BYTES_PER_CLIP_PIXEL = 20  # ...the decoded tiles of a row, the blended rows and their concatenation


@dataclass(frozen=True)
class ModelFootprint:
    """What the models take on the GPU in the dtypes they run in."""

    transformer: int  # bytes
    text_encoder: int
    vae: int
    transformer_streamed: int  # on the GPU while its blocks stream (group offload): non-block weights + 2 blocks
    text_encoder_streamed: int
    token_bytes_compiled: int  # denoising activations per video token and batch row
    token_bytes_eager: int
    fp8_copy: int  # FP8 copies of the block weights (fast mode)
    text_kv_per_row: int = 0  # the text's cross-attention keys and values of every block, per batch row (engine/text_kv.py)

    @classmethod
    def from_parts(cls, transformer: int, text_encoder: int, vae: int, *, transformer_block: int,
                   transformer_blocks: int, text_encoder_block: int, text_encoder_blocks: int, dim: int,
                   ffn_dim: int, dtype_bytes: int = 2) -> "ModelFootprint":
        # activations of one block per token, calibrated on the 5B (bench/RESULTS.md, step case): the
        # feed-forward's hidden layer and a few model-width tensors; eager keeps the GELU's input too
        return cls(
            transformer=transformer, text_encoder=text_encoder, vae=vae,
            transformer_streamed=transformer - transformer_blocks * transformer_block + 2 * transformer_block,
            text_encoder_streamed=text_encoder - text_encoder_blocks * text_encoder_block + 2 * text_encoder_block,
            token_bytes_compiled=dtype_bytes * (ffn_dim + 6 * dim),
            token_bytes_eager=dtype_bytes * (2 * ffn_dim + 6 * dim),
            fp8_copy=transformer_blocks * transformer_block // dtype_bytes,
            text_kv_per_row=transformer_blocks * 2 * TEXT_TOKENS * dim * dtype_bytes,
        )

    @classmethod
    def wan_ti2v_5b(cls, vae_bytes_per_param: int = 2) -> "ModelFootprint":
        """The published Wan2.2 TI2V-5B (parameter counts of its diffusers classes), bf16."""
        return cls.from_parts(
            4_999_787_712 * 2, 5_680_910_336 * 2, 704_688_668 * vae_bytes_per_param,
            transformer_block=163_656_704 * 2, transformer_blocks=30, text_encoder_block=193_000_000 * 2,
            text_encoder_blocks=24, dim=3072, ffn_dim=14336,
        )

    @classmethod
    def from_modules(cls, transformer: torch.nn.Module, text_encoder: torch.nn.Module, vae: torch.nn.Module,
                     *, vae_bytes_per_param: int, dtype_bytes: int = 2) -> "ModelFootprint":
        def count(module: torch.nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        blocks = list(getattr(transformer, "blocks", []))
        stack = getattr(text_encoder, "encoder", text_encoder)
        te_blocks = list(getattr(stack, "block", []))
        config = transformer.config
        return cls.from_parts(
            count(transformer) * dtype_bytes, count(text_encoder) * dtype_bytes, count(vae) * vae_bytes_per_param,
            transformer_block=max((count(b) for b in blocks), default=0) * dtype_bytes, transformer_blocks=len(blocks),
            text_encoder_block=max((count(b) for b in te_blocks), default=0) * dtype_bytes,
            text_encoder_blocks=len(te_blocks), dim=config.num_attention_heads * config.attention_head_dim,
            ffn_dim=config.ffn_dim, dtype_bytes=dtype_bytes,
        )

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], *, vae_bytes_per_param: int = 2,
                    dtype_bytes: int = 2) -> "ModelFootprint | None":
        """From a diffusers folder's safetensors headers and the transformer's config (no weights
        read); None when they cannot be read."""
        root = Path(folder)
        try:
            config = json.loads((root / "transformer" / "config.json").read_text(encoding="utf-8"))
            dim = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
            ffn_dim = int(config["ffn_dim"])
            t = _tensor_counts(root / "transformer")
            e = _tensor_counts(root / "text_encoder")
            v = _tensor_counts(root / "vae")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not (t and e and v):
            return None
        t_blocks = _grouped(t, "blocks.")
        e_blocks = _grouped(e, "encoder.block.")
        e_total = sum(n for name, n in e.items() if not name.startswith("shared.") or "encoder.embed_tokens.weight" not in e)
        return cls.from_parts(
            sum(t.values()) * dtype_bytes, e_total * dtype_bytes, sum(v.values()) * vae_bytes_per_param,
            transformer_block=max(t_blocks.values(), default=0) * dtype_bytes, transformer_blocks=len(t_blocks),
            text_encoder_block=max(e_blocks.values(), default=0) * dtype_bytes, text_encoder_blocks=len(e_blocks),
            dim=dim, ffn_dim=ffn_dim, dtype_bytes=dtype_bytes,
        )


def _tensor_counts(folder: Path) -> dict[str, int]:
    """Element count of every tensor in a folder's .safetensors files, from their headers
    (HeaderProblem, a ValueError, for a file whose header cannot be read)."""
    from shotsketch.core.safetensors_header import read_header

    counts: dict[str, int] = {}
    for path in sorted(folder.glob("*.safetensors")):
        header = read_header(path)[0]
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = 1
            for d in info["shape"]:
                n *= int(d)
            counts[name] = n
    return counts


def _grouped(counts: dict[str, int], prefix: str) -> dict[str, int]:
    """Element counts per numbered block under `prefix` ("blocks." -> {"0": n, "1": m, ...})."""
    out: dict[str, int] = {}
    for name, n in counts.items():
        if name.startswith(prefix):
            index = name[len(prefix):].split(".", 1)[0]
            if index.isdigit():
                out[index] = out.get(index, 0) + n
    return out


@dataclass(frozen=True)
class JobShape:
    """What a job asks of memory."""

    width: int = 1280
    height: int = 704
    frames: int = 121
    compiled: bool = True
    batched_cfg: bool = False  # CFG as one batch-2 forward
    guided: bool = False  # layout guidance: its bias and attention maps
    fp8: bool = False  # fast mode's FP8 copies of the weights (all-on-GPU plan only)
    decode: bool = True
    text_kv: bool = False  # the text's cross-attention keys and values kept for the job (engine/text_kv.py)

    @property
    def tokens(self) -> int:
        latent_frames = (self.frames - 1) // 4 + 1
        return latent_frames * (self.height // 32) * (self.width // 32)


@dataclass(frozen=True)
class PeakPrediction:
    plan: MemoryPlan
    phases: dict[str, int] = field(default_factory=dict)  # encode / denoise / decode -> bytes on the GPU
    tiled_decode: bool = False  # this job's decode runs in tiles (planned: the untiled one would not fit)

    @property
    def peak(self) -> int:
        return max(self.phases.values(), default=0)

    @property
    def needed(self) -> int:
        """The peak with the margin: what must be free for the plan to be chosen."""
        return int(self.peak * (1 + MARGIN_FRACTION)) + MARGIN_BYTES

    @property
    def phase(self) -> str:
        return max(self.phases, key=self.phases.get) if self.phases else ""


def predict_peak(plan: MemoryPlan, job: JobShape, model: ModelFootprint, *, tiled_decode: bool | None = None) -> PeakPrediction:
    """Bytes on the GPU at the peak of each phase of a job (a new prompt, the steps, the decode).
    `tiled_decode`: None = as the plan decodes by default (untiled where the VAE shares the GPU with
    the transformer, tiled for the offloading plans)."""
    t, e, v = model.transformer, model.text_encoder, model.vae
    rows = 2 if job.batched_cfg else 1
    # streamed blocks (MemoryPlan.streams_blocks): activations at the eager size, compiled or not (a
    # 12 GiB card's 720p job peaked at 4.30 GiB either way, bench/RESULTS.md session 9)
    per_token = model.token_bytes_compiled if job.compiled and not plan.streams_blocks else model.token_bytes_eager
    steps = job.tokens * rows * per_token
    if job.guided:  # the bias for both rows and the recorded maps (engine/guidance.py)
        steps += job.tokens * 512 * 2 * 3 + job.tokens * 128 * 4
    if job.text_kv and plan in (MemoryPlan.ALL_ON_GPU, MemoryPlan.TEXT_ENCODER_OFFLOAD) and job.tokens <= TEXT_KV_MAX_TOKENS:
        steps += model.text_kv_per_row * rows  # the text keys and values kept for the job's steps
    tiled = plan.vae_tiling if tiled_decode is None else tiled_decode
    pixels = job.width * job.height
    clip = pixels * job.frames
    if not job.decode:
        decode = 0
    elif tiled:
        decode = TILED_DECODE_BYTES + TILED_DECODE_BYTES_PER_CLIP_PIXEL * clip
    else:
        decode = DECODE_BYTES_PER_FRAME_PIXEL * pixels + DECODE_BYTES_PER_CLIP_PIXEL * clip
    fp8 = model.fp8_copy if job.fp8 and plan is MemoryPlan.ALL_ON_GPU else 0
    enc = ENCODE_ACTIVATION_BYTES
    streamed = model.text_encoder_streamed + enc  # the encoder's blocks streaming through the GPU
    if plan is MemoryPlan.ALL_ON_GPU:
        resident = t + e + v + fp8
        phases = {"encode": resident + enc, "denoise": resident + steps, "decode": resident + decode}
    elif plan is MemoryPlan.TEXT_ENCODER_OFFLOAD:  # transformer and VAE stay; the encoder streams
        phases = {"encode": t + v + streamed, "denoise": t + v + steps, "decode": t + v + decode}
    elif plan is MemoryPlan.MODEL_OFFLOAD:  # one model at a time
        phases = {"encode": streamed, "denoise": t + steps, "decode": v + decode}
    elif plan is MemoryPlan.GROUP_OFFLOAD:  # blocks stream; the VAE stays
        denoise = v + model.transformer_streamed + STREAMED_BLOCKS_EXTRA_BYTES + steps
        phases = {"encode": v + streamed, "denoise": denoise, "decode": v + decode}
    else:
        phases = {}
    return PeakPrediction(plan, phases, tiled)


def plan_variants(plans: tuple[MemoryPlan, ...] = PLAN_ORDER) -> list[tuple[MemoryPlan, bool]]:
    """(plan, tiled decode) from the fastest to the leanest: the transformer kept on the GPU with a
    tiled decode is faster than moving it off the GPU for an untiled one."""
    out = []
    for plan in plans:
        out.append((plan, plan.vae_tiling))
        if plan is MemoryPlan.TEXT_ENCODER_OFFLOAD:
            out.append((plan, True))
    return out


def best_fit(free: int, job: JobShape, model: ModelFootprint,
             plans: tuple[MemoryPlan, ...] = PLAN_ORDER) -> PeakPrediction:
    """The fastest (plan, decode) whose predicted peak, with the margin, fits in `free` (else the leanest)."""
    variants = plan_variants(plans)
    for plan, tiled in variants:
        prediction = predict_peak(plan, job, model, tiled_decode=tiled)
        if prediction.needed <= free:
            return prediction
    plan, tiled = variants[-1]
    return predict_peak(plan, job, model, tiled_decode=tiled)


def plan_that_fits(free: int, job: JobShape, model: ModelFootprint,
                   plans: tuple[MemoryPlan, ...] = PLAN_ORDER) -> MemoryPlan:
    """The fastest of `plans` whose predicted peak, with the margin, fits in `free` (else the leanest)."""
    return best_fit(free, job, model, plans).plan


def choose_plan(device: DeviceChoice, *, demo: bool = False, model: ModelFootprint | None = None,
                job: JobShape | None = None) -> MemoryPlan:
    """The fastest plan that fits the free VRAM for `job` (by default the official 704x1280x121 clip,
    compiled, guided, decoded) with the model's footprint (by default the real TI2V-5B in bf16)."""
    if device.device == "cpu":
        return MemoryPlan.CPU
    if demo or device.free_bytes is None:
        return MemoryPlan.ALL_ON_GPU
    return plan_that_fits(device.free_bytes, job or JobShape(guided=True), model or ModelFootprint.wan_ti2v_5b())
