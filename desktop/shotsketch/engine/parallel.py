"""One clip on several GPUs of one machine: what every rank runs (torchrun starts one process a GPU).

- `Ranks`: torch.distributed with a timeout on every collective ("cpu:gloo,cuda:nccl"; gloo alone on
  the CPU), plus a gloo group for the control messages and the cancel decision.
- Sequence parallel (Ulysses; the mode for an odd GPU count): diffusers' context-parallel plan for
  `WanTransformer3DModel` splits the rotary embedding, the tokens entering block 0 and the per-token
  timestep, and gathers the tokens at `proj_out` (`shard_transformer` applies it with a mesh of our
  own, which also works on the CPU and inside a CFG split). Shotsketch's fused self-attention
  processor (engine/attention.py) is made parallel-aware, not set aside: it gets an attention
  function (`UlyssesAttention`) that trades tokens for heads (all-to-all) around the kernel, so the
  fused norm + rotary pass runs on the rank's own tokens and the kernel (PyTorch's or
  FlashAttention-4) on every token for 1/N of the heads. Cross-attention needs nothing: each rank's
  tokens attend to the whole text. The all-to-alls are functional collectives, so the compiled
  blocks keep them in their graph.
- CFG on separate GPUs (`split_cfg`; the default for an even count, measured faster than the
  sequence split on 2 H200s): the prompt's forward on one half of the GPUs, the negative's
  on the other, the two noise predictions exchanged once a step; each half splits the sequence
  (Ulysses) when it has more than one GPU.
- `CollectiveCancel`: every rank takes the cancel decision at the same step (an all-reduce of the
  flag), otherwise the ranks that stop leave the others waiting in the next collective.
- Layout guidance: each rank biases its own tokens' rows, and the attention maps are summed over
  the ranks before the heatmaps are made (`ShardedGuidance`).
- The decode: each rank decodes a band of frame columns, gathered on rank 0 (engine/parallel_decode.py).

The hand-over to the app is engine/parallel_worker.py (rank 0 talks to the app over a local socket).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from shotsketch.engine.events import CancelToken, FinalEvent, JobEvent, JobStep
from shotsketch.engine.generator import Generator
from shotsketch.engine.memory import MemoryPlan
from shotsketch.engine.parallel_wire import WORKERS_LOST
from shotsketch.engine.requests import GenerationRequest
from shotsketch.engine.sources import ModelError, ModelSource
from shotsketch.engine.speed import wrapping_forward

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0  # the longest any collective may wait (a first compile at 720p is far shorter)
ULYSSES = "ulysses"
CFG_SPLIT = "cfg"  # the CFG branches on separate halves of the GPUs (each half Ulysses when > 1 GPU)


class WorkersLost(ModelError):
    """A collective failed or timed out: a rank stopped or hangs. The job cannot finish on these GPUs."""


def collective_timeout_s() -> float:
    text = os.environ.get("SHOTSKETCH_COLLECTIVE_TIMEOUT_S", "").strip()
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


@dataclass
class Ranks:
    """This process's place among the ranks, and the groups it talks through."""

    rank: int
    world: int
    local_rank: int
    device: str  # "cuda" or "cpu" (the current CUDA device is set to local_rank)
    control: Any  # gloo process group: control messages, cancel decisions
    timeout_s: float

    @property
    def is_first(self) -> bool:
        return self.rank == 0

    def torch_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.device == "cuda" else torch.device("cpu")

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's object on every rank (small Python objects: a job, a command, None)."""
        box = [obj if self.is_first else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any (one all-reduce over gloo)."""
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return bool(t.item())

    def gather_objects(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self.control)
        return out


def init_ranks(device: str | None = None, timeout_s: float | None = None) -> Ranks:
    """Join the ranks torchrun started (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in the environment)."""
    timeout_s = timeout_s or collective_timeout_s()
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    use_cuda = (device in (None, "cuda")) and torch.cuda.is_available()
    if device == "cuda" and not use_cuda:
        raise ModelError("no CUDA GPU is visible to the GPU workers")
    timeout = datetime.timedelta(seconds=timeout_s)
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ModelError(f"GPU worker {local_rank} has no GPU: only {torch.cuda.device_count()} are visible")
        torch.cuda.set_device(local_rank)
        dist.init_process_group("cpu:gloo,cuda:nccl", timeout=timeout, device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group("gloo", timeout=timeout)
    control = dist.new_group(backend="gloo", timeout=timeout)
    return Ranks(rank, world, local_rank, "cuda" if use_cuda else "cpu", control, timeout_s)


def is_collective_failure(exc: BaseException) -> bool:
    """An error of torch.distributed (a peer gone, a timeout), seen anywhere in the exception's chain."""
    from shotsketch.engine.speed import exception_chain

    for e in exception_chain(exc):
        if isinstance(e, (WorkersLost, getattr(dist, "DistError", ()), TimeoutError)):
            return True
        text = str(e)[:2000].lower()
        if any(w in text for w in ("gloo", "nccl", "connection closed by peer", "connection reset", "watchdog",
                                   "timed out", "c10d")):
            return True
    return False


# ----------------------------------------------------------------------------- the split
def shard_sizes(tokens: int, parts: int) -> list[int]:
    """Tokens per rank, as `torch.tensor_split` (and diffusers' sharders) cut them: the first
    `tokens % parts` ranks hold one more."""
    base, extra = divmod(tokens, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def shard_rows(tokens: int, parts: int, index: int) -> tuple[int, int]:
    sizes = shard_sizes(tokens, parts)
    start = sum(sizes[:index])
    return start, start + sizes[index]


def token_count(transformer: torch.nn.Module, latent_shape: tuple[int, ...]) -> int:
    """Video tokens of latents [B, C, F, H, W] after the transformer's patching."""
    pt, ph, pw = transformer.config.patch_size
    _, _, f, h, w = latent_shape
    return (f // pt) * (h // ph) * (w // pw)


@dataclass
class SequenceLayout:
    """The current forward's total token count, shared by every block's attention (set by a forward
    pre-hook on the transformer): the ranks' shard sizes follow from it."""

    parts: int
    tokens: int = 0
    sizes: tuple[int, ...] = ()

    def set_tokens(self, tokens: int) -> None:
        if tokens != self.tokens:
            self.tokens = tokens
            self.sizes = tuple(shard_sizes(tokens, self.parts))


def _wait(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed import _functional_collectives as funcol

    return t.wait() if isinstance(t, funcol.AsyncCollectiveTensor) else t


def _all_to_all(x: torch.Tensor, out_sizes: list[int] | None, in_sizes: list[int] | None, group: Any) -> torch.Tensor:
    from torch.distributed import _functional_collectives as funcol

    return _wait(funcol.all_to_all_single(x.contiguous(), out_sizes, in_sizes, group))


class UlyssesAttention:
    """Attention over every token for this rank's share of the heads, taking and giving back the
    rank's own tokens with all heads ([batch, tokens, heads, head_dim], as engine/attention.py's
    functions). Uneven shards (a token count the GPUs do not divide) are exchanged with split sizes."""

    def __init__(self, inner: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], group: Any,
                 layout: SequenceLayout) -> None:
        self.inner = inner
        self.group = group
        self.layout = layout

    def __call__(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        parts = self.layout.parts
        sizes = list(self.layout.sizes)
        even = len(set(sizes)) <= 1
        q, k, v = (self._to_heads(t, parts, sizes, even) for t in (query, key, value))
        out = self.inner(q, k, v)
        return self._to_tokens(out, parts, sizes, even, query.shape[1])

    def _to_heads(self, x: torch.Tensor, parts: int, sizes: list[int], even: bool) -> torch.Tensor:
        b, s_local, h, d = x.shape
        # [B, S_local, P, H/P, D] -> [P, S_local, B, H/P, D]: block j goes to rank j
        blocks = x.reshape(b, s_local, parts, h // parts, d).permute(2, 1, 0, 3, 4).reshape(parts * s_local, b, h // parts, d)
        got = _all_to_all(blocks, None if even else sizes, None if even else [s_local] * parts, self.group)
        return got.permute(1, 0, 2, 3)  # [B, S, H/P, D], tokens in rank order = sequence order

    def _to_tokens(self, out: torch.Tensor, parts: int, sizes: list[int], even: bool, s_local: int) -> torch.Tensor:
        b, s, h_local, d = out.shape
        flat = out.permute(1, 0, 2, 3)  # [S, B, H/P, D]: rank j's tokens go back to rank j
        got = _all_to_all(flat, None if even else [s_local] * parts, None if even else sizes, self.group)
        return got.reshape(parts, s_local, b, h_local, d).permute(2, 1, 0, 3, 4).reshape(b, s_local, parts * h_local, d)


@dataclass
class Sharding:
    """How this rank's transformer is split, once `shard_transformer` has run."""

    mode: str  # ULYSSES or CFG_SPLIT
    world: int
    branch: int  # CFG_SPLIT: 0 computes the prompt's branch, 1 the negative's; ULYSSES: 0
    seq_parts: int  # ranks that split the sequence (1: this rank holds every token)
    seq_index: int  # this rank's place among them
    seq_group: Any  # their process group (None when seq_parts == 1)
    cfg_group: Any  # CFG_SPLIT: the pair (one rank of each branch) that swaps noise predictions
    layout: SequenceLayout
    cp_config: Any = None  # diffusers' ContextParallelConfig when the sequence is split

    def prepare(self, tokens: int) -> None:
        """Before a request: uneven shards need diffusers' 'anything' sharder (same cut as tensor_split)."""
        self.layout.set_tokens(tokens)
        if self.cp_config is not None:
            self.cp_config.ulysses_anything = tokens % self.seq_parts != 0

    def rows(self, tokens: int) -> tuple[int, int]:
        return shard_rows(tokens, self.seq_parts, self.seq_index)


def choose_mode(option: str | None, world: int) -> str:
    """CFG on separate GPUs for an even count (2 H200s: a 720p clip 1.91x, denoising 1.99x, against
    Ulysses' 1.79x / 1.85x; bench/multi_gpu.py), the sequence split alone for an odd one;
    SHOTSKETCH_PARALLEL=ulysses|cfg or `option` chooses."""
    want = (os.environ.get("SHOTSKETCH_PARALLEL", "").strip().lower() or option
            or (CFG_SPLIT if world % 2 == 0 else ULYSSES))
    if want not in (ULYSSES, CFG_SPLIT):
        log.warning("unknown parallel mode %r; using %s", want, ULYSSES)
        want = ULYSSES
    if want == CFG_SPLIT and world % 2:
        log.warning("CFG on separate GPUs needs an even number of GPUs; using %s", ULYSSES)
        want = ULYSSES
    return want


def check_heads(transformer: torch.nn.Module, parts: int) -> None:
    heads = transformer.config.num_attention_heads
    if parts > 1 and heads % parts:
        fits = [n for n in range(2, heads + 1) if heads % n == 0 and n <= 8]
        raise ModelError(f"{parts} GPUs cannot share the model's {heads} attention heads evenly; "
                         f"use {', '.join(map(str, fits))} GPUs")


def shard_transformer(transformer: torch.nn.Module, ranks: Ranks, mode: str) -> Sharding:
    """Apply diffusers' context-parallel plan with a device mesh of our own (cfg x ring x ulysses),
    and record the groups; a transformer forward pre-hook keeps `layout` at the current token count."""
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    world = ranks.world
    halves = 2 if mode == CFG_SPLIT else 1
    seq_parts = world // halves
    check_heads(transformer, seq_parts)
    device_type = "cuda" if ranks.device == "cuda" else "cpu"
    mesh = init_device_mesh(device_type, (halves, 1, seq_parts), mesh_dim_names=("cfg", "ring", "ulysses"))
    branch = mesh.get_local_rank("cfg")
    seq_index = mesh.get_local_rank("ulysses")
    layout = SequenceLayout(seq_parts)
    sharding = Sharding(mode, world, branch, seq_parts, seq_index, None,
                        mesh.get_group("cfg") if halves == 2 else None, layout)
    if seq_parts > 1:
        cp = ContextParallelConfig(ulysses_degree=seq_parts, mesh=mesh)
        config = ParallelConfig(context_parallel_config=cp)
        config.setup(ranks.rank, world, ranks.torch_device(), mesh=mesh)
        for module in transformer.modules():  # what enable_parallelism does for diffusers' own processors
            processor = getattr(module, "processor", None)
            if processor is not None and hasattr(processor, "_parallel_config"):
                processor._parallel_config = config
        transformer._parallel_config = config
        # diffusers' plan but for two places. The split of the tokens entering block 0: its hook reads
        # the block's signature with `inspect`, which torch.compile cannot trace (fullgraph), so a plain
        # pre-hook of ours cuts them there instead, the same way (`tensor_split`), inside the compiled
        # block. The gather after proj_out: for uneven shards its all_gather of unequal sizes is
        # NCCL-only; ours pads to the largest shard, so gloo (the CPU) gathers them too.
        plan = {name: part for name, part in transformer._cp_plan.items() if name not in ("blocks.0", "proj_out")}
        apply_context_parallel(transformer, cp, plan)
        transformer.blocks[0].register_forward_pre_hook(_split_tokens(seq_parts, seq_index), with_kwargs=True)
        transformer.proj_out.register_forward_hook(_gather_tokens(mesh.get_group("ulysses"), layout))
        sharding.cp_config = cp
        sharding.seq_group = mesh.get_group("ulysses")

    def pre_hook(module, args, kwargs):  # noqa: ANN001, ANN202
        hs = kwargs.get("hidden_states", args[0] if args else None)
        if isinstance(hs, torch.Tensor) and hs.ndim == 5:
            sharding.prepare(token_count(module, tuple(hs.shape)))

    transformer.register_forward_pre_hook(pre_hook, with_kwargs=True, prepend=True)
    return sharding


def _split_tokens(parts: int, index: int) -> Callable:
    """A forward pre-hook keeping this rank's share of the tokens ([B, tokens, dim], dim 1)."""

    def pre_hook(_module, args, kwargs):  # noqa: ANN001, ANN202
        if args and isinstance(args[0], torch.Tensor) and args[0].ndim == 3:
            return (args[0].tensor_split(parts, dim=1)[index], *args[1:]), kwargs
        hs = kwargs.get("hidden_states")
        if isinstance(hs, torch.Tensor) and hs.ndim == 3:
            return args, dict(kwargs, hidden_states=hs.tensor_split(parts, dim=1)[index])
        return None

    return pre_hook


def _gather_tokens(group: Any, layout: SequenceLayout) -> Callable:
    """A forward hook giving every rank all the tokens of an output [B, tokens, dim] sharded on dim 1."""
    from torch.distributed import _functional_collectives as funcol

    def hook(_module, _args, out):  # noqa: ANN001, ANN202
        sizes = layout.sizes
        most = max(sizes)
        padded = out if out.shape[1] == most else torch.nn.functional.pad(out, (0, 0, 0, most - out.shape[1]))
        got = _wait(funcol.all_gather_tensor(padded.contiguous(), 1, group))
        if len(set(sizes)) <= 1:
            return got
        return torch.cat([got[:, i * most:i * most + n] for i, n in enumerate(sizes)], dim=1)

    return hook


def parallel_attention(transformer: torch.nn.Module, sharding: Sharding, kernel: Callable | None = None) -> int:
    """Our fused self-attention processor on every block, its kernel wrapped in the Ulysses exchange
    when the sequence is split. Keeps FlashAttention-4 where `_apply_speed_options` chose it."""
    from shotsketch.engine.attention import FusedSelfAttnProcessor, install, sdpa_bshd

    if kernel is None:
        kernel = sdpa_bshd
        for block in getattr(transformer, "blocks", []):
            proc = getattr(getattr(block, "attn1", None), "processor", None)
            if isinstance(proc, FusedSelfAttnProcessor):
                kernel = proc.attention
                break
    if isinstance(kernel, UlyssesAttention):
        kernel = kernel.inner
    if sharding.seq_parts > 1:
        kernel = UlyssesAttention(kernel, sharding.seq_group, sharding.layout)
    return install(transformer, kernel)


# ----------------------------------------------------------------------------- CFG on separate GPUs
@contextlib.contextmanager
def split_cfg(transformer: torch.nn.Module, cond: torch.Tensor, uncond: torch.Tensor, sharding: Sharding) -> Iterator[dict]:
    """The pipeline's two CFG forwards as one forward per half of the GPUs.

    WanPipeline calls the transformer with the prompt's embeddings and then, on the same latents,
    with the negative's. While this is active the first call runs this rank's branch (the prompt's
    on branch 0, the negative's on branch 1) and swaps the result with the other half; the second
    call returns the stored negative prediction. Yields counters {"batched": 0, "split": n}."""
    pending: dict = {}
    stats = {"batched": 0, "split": 0}

    def key(hs: torch.Tensor, ts: torch.Tensor | None) -> tuple:
        return (hs.data_ptr(), tuple(hs.shape), None if ts is None else tuple(ts.shape))

    def forward(original, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - diffusers' context-parallel hook may be under it
        hs, ts, ehs = (kwargs.get(n) for n in ("hidden_states", "timestep", "encoder_hidden_states"))
        if args or hs is None or ehs is None:
            return original(*args, **kwargs)
        return_dict = kwargs.get("return_dict", True)
        if ehs.data_ptr() == uncond.data_ptr() and pending.get("key") == key(hs, ts):
            out = pending.pop("out")
            pending.clear()
        elif ehs.data_ptr() == cond.data_ptr() and ehs.shape == cond.shape:
            mine = cond if sharding.branch == 0 else uncond.to(ehs.dtype)
            own_out = original(**dict(kwargs, encoder_hidden_states=mine, return_dict=False))[0]
            from torch.distributed import _functional_collectives as funcol

            both = _wait(funcol.all_gather_tensor(own_out.contiguous(), 0, sharding.cfg_group))
            b = own_out.shape[0]
            out, pending["out"] = both[:b], both[b:]
            pending["key"] = key(hs, ts)
            stats["split"] += 1
        else:
            return original(*args, **kwargs)
        if return_dict:
            from diffusers.models.modeling_outputs import Transformer2DModelOutput

            return Transformer2DModelOutput(sample=out)
        return (out,)

    with wrapping_forward(transformer, forward):
        yield stats


# ----------------------------------------------------------------------------- cancel
class CollectiveCancel(CancelToken):
    """A cancel every rank decides at the same point: `decide()` (called by every rank at the end of
    each step) all-reduces the local flags (rank 0's is set by the app), and `cancelled` answers the
    last decision without any collective. So every read between two decisions (before each
    transformer block, in the decode that only rank 0 runs, in error handling) gives the same answer
    on every rank, and all ranks stop at the same step. Once decided, it stays decided."""

    def __init__(self, ranks: Ranks, local: CancelToken | None = None) -> None:
        super().__init__()
        self.ranks = ranks
        self.local = local or CancelToken()
        self._decided = False

    def cancel(self) -> None:
        self.local.cancel()

    def decide(self) -> bool:
        if not self._decided:
            self._decided = self.ranks.any(self.local.cancelled)
        return self._decided

    @property
    def cancelled(self) -> bool:
        return self._decided


# ----------------------------------------------------------------------------- layout guidance
class ShardedGuidance:
    """Wraps the Generator's LayoutGuidance hook for sharded ranks: each rank biases and records its
    own token rows (`GuidanceState.rows`), the ranks of the negative branch (CFG split) neither bias
    nor record, and the recorded sums are added up over all ranks (each placing its rows) before
    the guidance turns them into heatmaps."""

    def __init__(self, inner: Any, sharding_of: Callable[[], Sharding | None], ranks: Ranks) -> None:
        self.inner = inner
        self._sharding_of = sharding_of
        self.ranks = ranks

    @contextlib.contextmanager
    def __call__(self, generator: Any, request: GenerationRequest, extras: dict[str, Any]) -> Iterator[None]:
        self.inner.last_state = None
        with self.inner(generator, request, extras):
            state = self.inner.last_state
            sharding = self._sharding_of()
            if state is None or sharding is None:
                yield
                return
            from shotsketch.engine.guidance import TOKEN_STRIDE, latent_frame_count

            tokens = latent_frame_count(request.frames) * (request.height // TOKEN_STRIDE) * (request.width // TOKEN_STRIDE)
            state.rows = sharding.rows(tokens)
            if sharding.branch != 0:  # this half computes the negative branch: stock cross-attention
                state.scale = 0.0
                state.settings = dataclasses.replace(state.settings, record=False)
            yield
            self._add_up(state, tokens)  # before the guidance collects the maps

    def _add_up(self, state: Any, tokens: int) -> None:
        names = list(state.tokens)
        if not names:
            return
        start, stop = state.rows
        device = self.ranks.torch_device()
        full = torch.zeros(len(names), tokens, dtype=torch.float32, device=device)
        if state.map_sums is not None:
            full[:, start:stop] = state.map_sums[:len(names)].to(device=device, dtype=torch.float32)
        counts = torch.tensor([float(state.map_counts)], device=device)
        dist.all_reduce(full)
        dist.all_reduce(counts, op=dist.ReduceOp.MAX)
        state.map_sums = full
        state.map_counts = int(counts.item())


# ----------------------------------------------------------------------------- the rank's generator
class RankGenerator(Generator):
    """A Generator on one rank: the transformer sharded, the cancel collective, events from rank 0
    only, the decode on rank 0 (or split over the ranks), and the recipe naming the GPUs used."""

    def __init__(self, source: ModelSource, ranks: Ranks, *, mode: str | None = None,
                 memory_plan: MemoryPlan | None = None, **kwargs: Any) -> None:
        super().__init__(source, device=ranks.device, memory_plan=memory_plan, **kwargs)
        self.ranks = ranks
        self.mode = choose_mode(mode, ranks.world)
        self.sharding: Sharding | None = None
        self.lost = False  # a collective failed: these ranks cannot run another job together
        self.auto_fallback = False  # a leaner plan would move modules under the parallel hooks
        if self.memory_plan in (MemoryPlan.MODEL_OFFLOAD, MemoryPlan.GROUP_OFFLOAD):
            raise ModelError(f"rendering on several GPUs needs the model on each GPU (memory plan "
                             f"'{MemoryPlan.TEXT_ENCODER_OFFLOAD.value}' or faster); these GPUs have too little free "
                             "memory, so use one GPU")
        self.attention_hooks = [ShardedGuidance(self.layout_guidance, lambda: self.sharding, ranks)]

    def _apply_speed_options(self) -> None:
        transformer = self._pipe.transformer
        # diffusers' processors must carry the parallel config before ours wrap them as fallback
        self.sharding = shard_transformer(transformer, self.ranks, self.mode)
        super()._apply_speed_options()
        parallel_attention(transformer, self.sharding)  # on the CPU too: the tests run the GPUs' code path

    def _generate(self, request: GenerationRequest, emit: Callable[[JobEvent], None], cancel: CancelToken,
                  job_id: str) -> FinalEvent:
        from shotsketch.engine.guidance import TOKEN_STRIDE, latent_frame_count

        if self.sharding is not None:
            self.load()
            self.sharding.prepare(latent_frame_count(request.frames) * (request.height // TOKEN_STRIDE)
                                  * (request.width // TOKEN_STRIDE))
        return super()._generate(request, emit, cancel, job_id)

    def _generate_with_fallback(self, request: GenerationRequest, emit: Callable[[JobEvent], None], cancel: CancelToken,
                                job_id: str) -> FinalEvent:
        try:
            return super()._generate_with_fallback(request, emit, cancel, job_id)
        except Exception as exc:
            if is_collective_failure(exc):
                self.lost = True
                log.error("rank %d: a collective failed in job %s", self.ranks.rank, job_id, exc_info=True)
                raise WorkersLost(WORKERS_LOST) from exc
            raise

    def generate(self, request: GenerationRequest, on_event: Callable[[JobEvent], None] | None = None,
                 cancel: CancelToken | None = None, job_id: str | None = None) -> FinalEvent:
        local = cancel if cancel is not None else CancelToken()
        together = local if isinstance(local, CollectiveCancel) else CollectiveCancel(self.ranks, local)
        forward = on_event if self.ranks.is_first else None

        def emit(event: JobEvent) -> None:
            if isinstance(event, JobStep):  # every rank ends each step here: the cancel decision point
                together.decide()
            if forward is not None:
                forward(event)

        return super().generate(request, on_event=emit, cancel=together, job_id=job_id)

    def batches_cfg(self, request: GenerationRequest) -> bool:
        return False if self.mode == CFG_SPLIT else super().batches_cfg(request)

    def _batched_cfg(self, request: GenerationRequest, cond: torch.Tensor, uncond: torch.Tensor):  # noqa: ANN202
        if self.mode == CFG_SPLIT and request.guidance > 1.0 and self.sharding is not None:
            return split_cfg(self._pipe.transformer, cond, uncond, self.sharding)
        return super()._batched_cfg(request, cond, uncond)  # puts back the forward a hook set (speed.batched_cfg)

    def decode(self, latents: torch.Tensor):  # noqa: ANN201 - uint8 frames on rank 0, an empty array elsewhere
        from shotsketch.engine.parallel_decode import decode_on_ranks

        return decode_on_ranks(self, latents)

    def recipe(self, request: GenerationRequest) -> dict[str, Any]:
        recipe = super().recipe(request)
        recipe["device"]["gpus"] = self.ranks.world
        recipe["device"]["parallel"] = self.mode
        return recipe
