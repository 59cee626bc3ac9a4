"""Layout guidance: the sketch steers where the model puts each subject, frame by frame.

Training-free, in the spirit of Peekaboo's masked attention, TrailBlazer and LLM-grounded Video
Diffusion: a cross-attention processor for `WanTransformer3DModel` (installed with
`transformer.set_attn_processor`, no patching of library code) adds a bias to the attention
logits so that the video tokens inside a subject's box, at that latent frame, attend to the
subject's prompt tokens, and the tokens outside attend to them less.

The same processor records "where it landed": each subject's tokens' share of the attention at
every video token, averaged over heads, layers and steps, and an adherence score per subject (the
share of that map inside the subject's box).

Both in one attention call without a mask (the "folded" path, the default): the bias is low rank,
bias[n, j] = sum_s column_s[n] * [j in tokens_s], so it rides in a few extra head dims of the query
(the columns) and key (the subjects' token indicators), and the recording in the same extra dims of
the values; a maskless call keeps PyTorch's fast attention kernels, but at head size 128 + 16.
The "lse" path keeps the unguided call (head size 128) and asks it for its log-sum-exp, then
corrects the prompt's row exactly from the few subject tokens alone (`lse_attention`). The earlier
"mask" path (an additive [batch, 1, N, L] mask and a second attention call for the recording)
stays selectable and takes sketches with more subjects (folded) or subject tokens (lse) than the
other paths' fixed slots hold. The path: `GuidanceSettings.path`, SHOTSKETCH_GUIDANCE_PATH=
mask|folded|lse. All three compute the same thing, and on each a guided, a strength-0 (recorded
only) and a partly guided job run one compiled graph of the blocks.

Geometry (the real TI2V-5B mapping, which the demo model keeps): latent frame 0 is pixel frame 0;
latent frame f>0 covers pixel frames 4f-3..4f; the token grid is height/32 x width/32 (16x VAE
times 2x2 patches); tokens are ordered frame, row, column.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import WanAttnProcessor, _get_qkv_projections

from shotsketch.core.layout import Box, Layout
from shotsketch.core.phrasing import find_subject_spans

log = logging.getLogger(__name__)

TOKEN_STRIDE = 32  # pixels per token side: 16x VAE x 2x2 patch
TEMPORAL_STRIDE = 4
FOLDED, MASK, LSE = "folded", "mask", "lse"
PATHS = (FOLDED, MASK, LSE)
PATH_ENV = "SHOTSKETCH_GUIDANCE_PATH"
# The folded path computes what the mask path does (tests/engine/test_guidance_folded.py) and is the
# fastest of the three on a GPU (bench/RESULTS.md sessions 7 and 8, H100: the guided cross-attention
# call 169 us, against 280-1,329 us masked and 323 us lse; a first guided preview 1.006-1.04x the
# first unguided one (sessions 8-11); a guided 720p step 1.001x the unguided one). The lse path computes the same
# (tests/engine/test_guidance_lse.py, to rounding): its float32 correction costs more than 16 extra dims.
DEFAULT_PATH = "folded"


@dataclass(frozen=True)
class GuidanceSettings:
    # Defaults from the sweep in bench/RESULTS.md (demo model, the five example shots): a logit
    # bias of 4 inside / -2 outside over every step is the weakest setting that reaches a mean
    # adherence of 0.8; half the bias or half the steps stay near 0.4-0.5.
    strength: float = 4.0  # logit bias at full strength (request.guidance_strength scales it)
    outside: float = 0.5  # weight of the negative bias outside the box
    start: float = 0.0  # first step it acts on, as a fraction of the steps
    end: float = 1.0  # steps from `end` on run unbiased
    record: bool = True  # record attention maps and adherence
    # How the bias reaches the attention: "folded" (one maskless attention call, the bias and the
    # recording folded into extra head dims: `folded_attention`), "lse" (the unguided call and its
    # log-sum-exp, the prompt's row corrected from the subject tokens: `lse_attention`), "mask" (an
    # additive mask and a second attention call for the recording: the earlier path). None:
    # SHOTSKETCH_GUIDANCE_PATH, else DEFAULT_PATH. A sketch with more subjects than `fold_slots`
    # (folded) or more distinct subject tokens than `lse_slots` (lse) takes the mask path.
    path: str | None = None
    fold_slots: int = 16  # extra head dims of the folded path (a fixed multiple of 8: shapes never change)
    lse_slots: int = 64  # subject tokens the lse path corrects for (fixed: shapes never change)
    # folded path, CFG batch: the negative's row (never biased or recorded) in a plain call of head
    # size d instead of the widened one (bench/cases_guided.py measures both; off: on an H100 1.02x
    # against 1.04x the unguided preview, inside the spread, bench/RESULTS.md session 11)
    fold_negative_plain: bool = False

    def resolved_path(self) -> str:
        want = (self.path or os.environ.get(PATH_ENV, "").strip().lower() or DEFAULT_PATH)
        if want not in PATHS:
            log.warning("unknown guidance path %r; using %r", want, DEFAULT_PATH)
            want = DEFAULT_PATH
        return want

    def active_steps(self, total: int) -> range:
        return range(int(round(self.start * total)), int(round(self.end * total)))


# ----------------------------------------------------------------------------- geometry
def latent_frame_count(frames: int) -> int:
    return (frames - 1) // TEMPORAL_STRIDE + 1


def latent_frame_times(frames: int) -> list[float]:
    """Clip time t in [0,1] of each latent frame: frame 0 is pixel frame 0; frame f>0 the middle
    of pixel frames 4f-3..4f."""
    if frames <= 1:
        return [0.0]
    times = [0.0]
    for f in range(1, latent_frame_count(frames)):
        times.append(min(1.0, (TEMPORAL_STRIDE * f - 1.5) / (frames - 1)))
    return times


def box_coverage(box: Box, grid_h: int, grid_w: int) -> np.ndarray:
    """Fraction of each token cell covered by `box` (normalized coordinates), [grid_h, grid_w].
    A box smaller than a cell still covers the cell holding its centre a little."""
    xs = np.arange(grid_w + 1) / grid_w
    ys = np.arange(grid_h + 1) / grid_h
    cover_x = np.clip(np.minimum(xs[1:], box.right) - np.maximum(xs[:-1], box.left), 0, None) * grid_w
    cover_y = np.clip(np.minimum(ys[1:], box.bottom) - np.maximum(ys[:-1], box.top), 0, None) * grid_h
    cov = np.outer(cover_y, cover_x)
    if cov.max() <= 0:
        cx, cy = box.center
        cov[min(grid_h - 1, int(cy * grid_h)), min(grid_w - 1, int(cx * grid_w))] = 1.0
    return cov.astype(np.float32)


def subject_masks(layout: Layout, frames: int, height: int, width: int) -> dict[str, np.ndarray]:
    """Per subject, the box coverage of each token at each latent frame: [latent_frames, h/32, w/32].
    A group's mask is the union of its boxes (their coverage added, at most 1 per token)."""
    gh, gw = height // TOKEN_STRIDE, width // TOKEN_STRIDE
    times = latent_frame_times(frames)
    frames_boxes = [layout.guided_boxes_at(t) for t in times]
    return {
        name: np.stack([np.minimum(1.0, sum(box_coverage(b, gh, gw) for b in boxes[name])) for boxes in frames_boxes])
        for name in layout.guided_names
    }


# ----------------------------------------------------------------------------- tokens
def clean_prompt(text: str) -> str:
    """The text exactly as the pipeline tokenizes it (ftfy + whitespace clean-up)."""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    return prompt_clean(text)


def subject_tokens(tokenizer, prompt: str, names: list[str], max_length: int = 512) -> tuple[dict[str, list[int]], list[str]]:  # noqa: ANN001
    """Token positions of each subject's words in the tokenized prompt (through the tokenizer's
    offsets, so it works for the real UMT5 tokenizer and the demo one), and the names not found."""
    text = clean_prompt(prompt)
    enc = tokenizer(text, max_length=max_length, truncation=True, add_special_tokens=True, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    found: dict[str, list[int]] = {}
    missing: list[str] = []
    for name in names:
        spans = find_subject_spans(text, name)
        idx = [i for i, (a, b) in enumerate(offsets) if b > a and any(a < e and b > s for s, e in spans)]
        if idx:
            found[name] = idx
        else:
            missing.append(name)
    return found, missing


# ----------------------------------------------------------------------------- state + processor
@dataclass
class GuidanceState:
    """One job's guidance. Everything the compiled transformer blocks read is prepared here, outside
    them (`prepare`, from the transformer's pre-hook): plain bools and tensors of fixed shapes, which
    the blocks read and add to in place. Nothing inside a block mutates Python state, so a compiled
    block sees the same guards in every job and compiles once (engine/speed.py, regional compile)."""

    settings: GuidanceSettings
    total_steps: int
    tokens: dict[str, list[int]]
    masks: dict[str, np.ndarray]  # name -> [F, gh, gw] coverage
    scale: float  # request strength multiplier
    cond_embeds: torch.Tensor | None = None
    step: int = -1
    is_cond: bool = False
    bias_base: torch.Tensor | None = None  # [N, L] float32 on CPU (mask path); moved to the device by `prepare`
    columns: torch.Tensor | None = None  # [N, subjects] float32 on CPU: the bias column of each subject (`bias_columns`)
    rows: tuple[int, int] | None = None  # sequence parallel (engine/parallel.py): this rank's video tokens
    maps: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [N] float32 sums (after the call)
    map_counts: int = 0  # conditional forwards recorded
    bias_log: list[tuple[int, float]] = field(default_factory=list)  # (step, max |bias|) per conditional forward
    log_bias: bool = False
    # This job's path (set by the hook, fixed for the job, at most one True): `folded` =
    # `folded_attention`, `lse` = `lse_attention`, neither = the additive mask and `record_shares`.
    folded: bool = False
    lse: bool = False
    lse_cudnn: bool = True  # the lse path's call on CUDA: cuDNN, else flash (`prepare` tries cuDNN)

    # Set once per transformer forward by the pre-hook, read by the processor in every block: plain
    # bools, so a compiled block sees at most a few distinct values (no recompiles per step). The
    # processor reads only `active` (and the path's bools): a guided forward, a recorded-only one (strength 0,
    # or a step outside the guided window) and a guided unrecorded one run the same graph, on
    # different tensors (`_select`).
    guiding: bool = False
    recording: bool = False
    active: bool = False  # guiding or recording
    # Device tensors the blocks read, made by `prepare`. A batch of one is the prompt's forward; a
    # batch of two is CFG as one forward (the prompt's row first), so every per-batch tensor has two
    # rows, the second (the negative's) never biased, and the processor takes its first `batch` rows.
    # Mask path: `mask` [2, 1, N, L] is `bias` (guided) or `zero_mask`; `record_values` [1, H, L, slots]
    # (column s is 1 at subject s's tokens; `slots` a whole multiple of the head size).
    # Folded path: `q_extra` [2, N, 1, P] is `fold_q` (each subject's bias column times the strength,
    # prompt's row only) or `fold_q_zero`; `fold_k` [1, L, 1, P] is sqrt(head_dim) and `fold_v` 1 at
    # subject s's tokens in column s; P = settings.fold_slots.
    # Lse path: `lse_index` [T] the distinct subject tokens (pad slots: token 0), `lse_ind` [T, T]
    # 1 where slot t's token belongs to subject s; `lse_bias` [N, T] is `lse_c` (the prompt row's bias
    # of each slot: the sum of its subjects' columns times the strength; 0 at pad slots) or
    # `lse_c_zero`; T = settings.lse_slots.
    # All: `record_sums` is `map_sums` ([slots, N] float32, the per-subject sums of attention share)
    # when recording, else `scratch_sums` (same shape, never read).
    bias: torch.Tensor | None = None
    zero_mask: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    record_values: torch.Tensor | None = None
    fold_q: torch.Tensor | None = None
    fold_q_zero: torch.Tensor | None = None
    q_extra: torch.Tensor | None = None
    fold_k: torch.Tensor | None = None
    fold_v: torch.Tensor | None = None
    lse_index: torch.Tensor | None = None
    lse_ind: torch.Tensor | None = None
    lse_c: torch.Tensor | None = None
    lse_c_zero: torch.Tensor | None = None
    lse_bias: torch.Tensor | None = None
    map_sums: torch.Tensor | None = None
    scratch_sums: torch.Tensor | None = None
    record_sums: torch.Tensor | None = None
    bias_peak: float = 0.0  # max |bias| of a guided forward on this rank's rows
    _prepared_for: tuple | None = None

    def update(self, is_cond: bool) -> None:
        self.is_cond = is_cond
        if is_cond:
            self.step += 1
        self.guiding = bool(is_cond and self.scale > 0 and self.tokens
                            and self.step in self.settings.active_steps(self.total_steps))
        self.recording = bool(is_cond and self.settings.record and self.tokens)
        self.active = self.guiding or self.recording
        if is_cond and self.recording:
            self.map_counts += 1
        if is_cond and self.log_bias:
            self.bias_log.append((self.step, self.bias_peak if self.guiding else 0.0))
        if self.active:
            self._select()

    @property
    def path(self) -> str:
        return FOLDED if self.folded else LSE if self.lse else MASK

    def _select(self) -> None:
        """The tensors this forward's blocks read: biased or not, recorded or not."""
        if self.folded:
            self.q_extra = self.fold_q if self.guiding else self.fold_q_zero
        elif self.lse:
            self.lse_bias = self.lse_c if self.guiding else self.lse_c_zero
        else:
            self.mask = self.bias if self.guiding else self.zero_mask
        self.record_sums = self.map_sums if self.recording else self.scratch_sums

    def prepare(self, device: torch.device, dtype: torch.dtype, seq_len: int, heads: int, head_dim: int) -> None:
        """Build (once per device) the tensors the processor reads; outside the compiled blocks."""
        key = (device, dtype, seq_len, heads, head_dim)
        if self._prepared_for == key or not self.tokens:
            return
        previous = self.map_sums
        names = list(self.tokens)
        strength = self.settings.strength * self.scale
        indicator = torch.zeros(seq_len, len(names), dtype=torch.float32)  # [L, S]: 1 at subject s's tokens
        for s, name in enumerate(names):
            for j in self.tokens[name]:
                if j < seq_len:
                    indicator[j, s] = 1.0
        n = next(iter(self.masks.values())).size if self.rows is None else self.rows[1] - self.rows[0]
        if self.folded:
            slots = self.settings.fold_slots
            columns = self.columns if self.rows is None else self.columns[self.rows[0]:self.rows[1]]
            used = indicator.sum(1) > 0
            self.bias_peak = float((columns @ indicator[used].T).abs().max()) * strength if used.any() else 0.0
            q = torch.zeros(2, n, 1, slots, dtype=torch.float32)
            q[0, :, 0, :len(names)] = columns * strength
            self.fold_q = q.to(device=device, dtype=dtype)
            self.fold_q_zero = torch.zeros_like(self.fold_q)
            ind = torch.nn.functional.pad(indicator, (0, slots - len(names)))[None, :, None, :]
            self.fold_k = (ind * math.sqrt(head_dim)).to(device=device, dtype=dtype)
            self.fold_v = ind.to(device=device, dtype=dtype)
        elif self.lse:
            slots = self.settings.lse_slots
            columns = self.columns if self.rows is None else self.columns[self.rows[0]:self.rows[1]]
            used = torch.nonzero(indicator.sum(1) > 0).flatten()  # the distinct subject tokens
            index = torch.zeros(slots, dtype=torch.long)
            index[:len(used)] = used
            ind = torch.zeros(slots, slots, dtype=torch.float32)
            ind[:len(used), :len(names)] = indicator[used]
            c = columns @ ind[:, :len(names)].T * strength  # [N, T]: zero at pad slots
            self.bias_peak = float(c.abs().max()) if len(used) else 0.0
            self.lse_index, self.lse_ind = index.to(device), ind.to(device)
            self.lse_c = c.to(device)
            self.lse_c_zero = torch.zeros_like(self.lse_c)
            self.lse_cudnn = device.type == "cuda" and cudnn_lse_works(device, dtype, heads, n, seq_len, head_dim)
        else:
            base = self.bias_base if self.rows is None else self.bias_base[self.rows[0]:self.rows[1]]
            if base.shape[1] < seq_len:
                base = torch.nn.functional.pad(base, (0, seq_len - base.shape[1]))
            base = base[:, :seq_len]
            self.bias_peak = float(base.abs().max()) * strength
            one = (base * strength).to(device=device, dtype=dtype)[None, None]
            self.bias = torch.cat([one, torch.zeros_like(one)])  # the negative row stays unbiased
            self.zero_mask = torch.zeros_like(self.bias)
            slots = head_dim * -(-len(names) // head_dim)
            values = torch.nn.functional.pad(indicator, (0, slots - len(names))).to(dtype)
            self.record_values = values.to(device)[None, None].expand(1, heads, seq_len, slots).contiguous()
        self.map_sums = torch.zeros(slots, n, dtype=torch.float32, device=device)
        self.scratch_sums = torch.zeros_like(self.map_sums)
        if previous is not None:
            self.map_sums += previous.to(device)
        self._prepared_for = key
        if self.active:
            self._select()

    def collect_maps(self) -> None:
        """The recorded sums, per subject name (host side, after the call)."""
        if self.map_sums is None:
            return
        self.maps = {name: self.map_sums[s] for s, name in enumerate(self.tokens)}


def bias_columns(tokens: dict[str, list[int]], masks: dict[str, np.ndarray], outside: float) -> torch.Tensor:
    """[N video tokens, subjects]: each subject's bias column, its box coverage inside the box and
    -outside * (1 - coverage) outside. `build_bias` adds column s at every token of subject s."""
    n = next(iter(masks.values())).size
    out = torch.zeros(n, len(tokens), dtype=torch.float32)
    for s, name in enumerate(tokens):
        cov = torch.from_numpy(masks[name].reshape(-1))
        out[:, s] = cov - outside * (1.0 - cov)
    return out


def build_bias(tokens: dict[str, list[int]], masks: dict[str, np.ndarray], outside: float, seq_len: int) -> torch.Tensor:
    """[N video tokens, L text tokens]: +1 inside a subject's box (by coverage) for its tokens,
    -outside where the token cell is outside the box; zero for every other text token."""
    columns = bias_columns(tokens, masks, outside)
    bias = torch.zeros(columns.shape[0], seq_len, dtype=torch.float32)
    for s, idx in enumerate(tokens.values()):
        for j in idx:
            if j < seq_len:
                bias[:, j] += columns[:, s]
    return bias


_CUDNN_LSE: dict[tuple, bool] = {}  # (device, dtype, heads, n, length, head_dim) -> cuDNN takes it


def cudnn_lse_works(device: torch.device, dtype: torch.dtype, heads: int, n: int, length: int, head_dim: int) -> bool:
    """Whether cuDNN's attention returns the log-sum-exp at this shape (a call on zeros, outside the
    compiled blocks; an error there is no error inside them), once per shape."""
    key = (str(device), dtype, heads, n, length, head_dim)
    if key not in _CUDNN_LSE:
        q = torch.zeros(2, n, heads, head_dim, device=device, dtype=dtype).transpose(1, 2)
        kv = torch.zeros(2, length, heads, head_dim, device=device, dtype=dtype).transpose(1, 2)
        try:
            torch.ops.aten._scaled_dot_product_cudnn_attention(q, kv, kv, None, True, 0.0, False, False)
            _CUDNN_LSE[key] = True
        except RuntimeError as exc:
            log.info("cuDNN attention with log-sum-exp unavailable (%s); the lse path uses flash", str(exc)[:120])
            _CUDNN_LSE[key] = False
    return _CUDNN_LSE[key]


def attention_with_lse(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float,
                       cudnn: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain attention and its log-sum-exp: query [B, N, H, D], key and value [B, L, H, D] ->
    (out [B, N, H, D], lse [B, H, N] float32). On CUDA cuDNN's kernel (else flash's), on the CPU
    PyTorch's flash kernel for the CPU; all on the [B, H, S, D] views, no copies."""
    q, k, v = (t.transpose(1, 2) for t in (query, key, value))
    aten = torch.ops.aten
    if q.device.type == "cuda" and cudnn:
        out, lse = aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, False, False, scale=scale)[:2]
    elif q.device.type == "cuda":
        out, lse = aten._scaled_dot_product_flash_attention(q, k, v, 0.0, False, False, scale=scale)[:2]
    else:
        out, lse = aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=None, scale=scale)
    b, h, n = q.shape[:3]
    return out.transpose(1, 2), lse.reshape(b, h, n).float()


def lse_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, index: torch.Tensor,
                  ind: torch.Tensor, bias: torch.Tensor, sums: torch.Tensor, cudnn: bool = True) -> torch.Tensor:
    """Biased cross-attention and the recording from the unbiased call and its log-sum-exp.

    The bias of the prompt's row (batch row 0) touches only the subjects' tokens (slots t, token
    index[t]; bias[n, t] per slot, summed over the subjects sharing the token), so with the unbiased
    probabilities p of those tokens (exp(logit - lse)) and e = exp(bias), w = p * (e - 1):
    out' = (out + sum_t w v_t) / (1 + sum_t w), and the biased share of slot t is p * e / (1 + sum_t w).
    Each subject's share (the slots' shares through `ind` [T, S]), mean over heads, is added to
    `sums` [S, N]. Exactly what the additive mask gives; the other rows are the unbiased call's.

    query [B, N, H, D], key and value [B, L, H, D]; index [T] (long), ind [T, S], bias [N, T] float32.
    Returns the attention output [B, N, H, D]."""
    d = query.shape[-1]
    scale = 1.0 / math.sqrt(d)
    out, lse = attention_with_lse(query, key, value, scale, cudnn)
    q0 = query[0].float()  # [N, H, D]
    k0 = key[0].index_select(0, index).float()  # [T, H, D]
    v0 = value[0].index_select(0, index).float()
    p = torch.exp(torch.einsum("nhd,thd->hnt", q0, k0) * scale - lse[0, :, :, None])  # [H, N, T]
    e = torch.exp(bias)[None]  # [1, N, T]
    w = p * (e - 1.0)
    r = 1.0 + w.sum(-1)  # [H, N]
    out0 = (out[0].float() + torch.einsum("hnt,thd->nhd", w, v0)) / r.transpose(0, 1)[..., None]
    shares = torch.einsum("hnt,ts->sn", p * e / r[..., None], ind) / p.shape[0]
    sums.add_(shares)
    return torch.cat([out0[None].to(out.dtype), out[1:]])


def record_shares(query: torch.Tensor, key: torch.Tensor, bias: torch.Tensor | None, values: torch.Tensor,
                  sums: torch.Tensor) -> None:
    """Add each subject's share of the attention (mean over heads) at every video token of batch row 0
    to `sums` [slots, N]. The share of subject s is the attention-weighted sum of an indicator of its
    tokens: one attention call with the indicators as values, no [H, N, L] probabilities in memory."""
    q = query[:1].transpose(1, 2)  # [1, H, N, D]
    k = key[:1].transpose(1, 2)  # [1, H, L, D]
    mask = None if bias is None else bias[:1]
    d = q.shape[-1]
    for c in range(values.shape[-1] // d):
        shares = torch.nn.functional.scaled_dot_product_attention(q, k, values[..., c * d:(c + 1) * d], attn_mask=mask)
        sums[c * d:(c + 1) * d].add_(shares[0].float().mean(0).transpose(0, 1))


def folded_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, q_extra: torch.Tensor,
                     k_extra: torch.Tensor, v_extra: torch.Tensor, sums: torch.Tensor, backend=None,  # noqa: ANN001
                     kernel=None, negative_plain: bool = False) -> torch.Tensor:  # noqa: ANN001
    """Biased cross-attention and the recording in one attention call without a mask.

    The bias is low rank: bias[n, j] = sum_s column_s[n] * [j in tokens_s] (`build_bias`), so it is
    a dot product over P extra head dims: the query gets q_extra[n, s] (column_s[n] times the
    strength; zero for the negative's row and for an unbiased forward), the key gets sqrt(head_dim)
    at subject s's tokens, and the call's scale stays 1/sqrt(head_dim) of the real head size, so
    the logits are q.k / sqrt(d) + bias[n, j]. The values get the subjects' token indicators in the
    same P dims, so those outputs are each subject's share of the attention (what `record_shares`
    computes with a second call); their mean over heads on row 0 is added to `sums` [P, N].

    query [B, N, H, D], key and value [B, L, H, D]; q_extra [2, N, 1, P]; k_extra, v_extra [1, L, 1, P].
    Returns the attention output [B, N, H, D]. `negative_plain` (a CFG batch of two): only the
    prompt's row is widened; the negative's, which has no bias and records nothing, is a plain call."""
    b, n, h, d = query.shape
    if negative_plain and b == 2:
        first = folded_attention(query[:1], key[:1], value[:1], q_extra, k_extra, v_extra, sums, backend, kernel)
        q1, k1, v1 = query[1:], key[1:], value[1:]
        if kernel is not None:
            rest = kernel(q1, k1, v1, 1.0 / math.sqrt(d))
        else:
            rest = dispatch_attention_fn(q1, k1, v1, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                         backend=backend, parallel_config=None)
        return torch.cat([first, rest])
    length = key.shape[1]
    p = q_extra.shape[-1]
    q = torch.cat([query, q_extra[:b].to(query.dtype).expand(b, n, h, p)], dim=-1)
    k = torch.cat([key, k_extra.to(key.dtype).expand(b, length, h, p)], dim=-1)
    v = torch.cat([value, v_extra.to(value.dtype).expand(b, length, h, p)], dim=-1)
    if kernel is not None:  # `kernel(query, key, value, scale)`: engine/attention.py set_cross_kernel
        out = kernel(q, k, v, 1.0 / math.sqrt(d))
    else:
        out = dispatch_attention_fn(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=1.0 / math.sqrt(d),
                                    backend=backend, parallel_config=None)
    sums.add_(out[0, :, :, d:].float().mean(1).transpose(0, 1))
    return out[..., :d]


class LayoutAttnProcessor(WanAttnProcessor):
    """Cross-attention with the layout bias and the recording; for the unconditional pass (and a
    conditional one neither guided nor recorded) it computes what the stock processor computes.
    Reads only bools and fixed-shape tensors of its state and adds to them in place (compile keeps
    the blocks whole: tests/engine/test_compile.py). A guided, a recorded-only (strength 0) and a
    guided unrecorded forward take the same branch, so they share one compiled graph.

    `kv` (engine/text_kv.py, one slot per block): the text's key and value for this forward,
    computed once per job outside the blocks; where the slot is empty the block projects them."""

    def __init__(self, state: GuidanceState | None = None, kv=None) -> None:  # noqa: ANN001
        super().__init__()
        self.state = state
        self.kv = kv
        # the maskless calls' kernel (the unguided one and the folded path's: `kernel(q, k, v, scale)`,
        # [B, S, H, D] in and out, engine/attention.py set_cross_kernel), else diffusers' dispatch
        self.kernel = None

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):  # noqa: ANN001, ANN204
        state, kv = self.state, self.kv
        cross = encoder_hidden_states is not None and attn.add_k_proj is None
        cached = (cross and kv is not None and kv.key is not None
                  and kv.key.shape[0] == hidden_states.shape[0] and kv.key.shape[1] == encoder_hidden_states.shape[1])
        guided = cross and state is not None and state.active
        direct = cross and self.kernel is not None and attention_mask is None  # the maskless call through `kernel`
        if not (cached or guided or direct):
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
        if cached:
            query = attn.to_q(hidden_states)
            key, value = kv.key, kv.value
        else:
            query, key, value = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
            key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
            value = value.unflatten(2, (attn.heads, -1))
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
        if not guided and direct:
            out = self.kernel(query, key, value)
        elif not guided:
            out = dispatch_attention_fn(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
                                        backend=self._attention_backend, parallel_config=None)
        elif state.folded:
            out = folded_attention(query, key, value, state.q_extra, state.fold_k, state.fold_v, state.record_sums,
                                   self._attention_backend, self.kernel, state.settings.fold_negative_plain)
        elif state.lse:
            out = lse_attention(query, key, value, state.lse_index, state.lse_ind, state.lse_bias, state.record_sums,
                                state.lse_cudnn)
        else:
            mask = state.mask[:query.shape[0]]
            record_shares(query, key, mask, state.record_values, state.record_sums)
            out = dispatch_attention_fn(query, key, value, attn_mask=mask, dropout_p=0.0, is_causal=False,
                                        backend=self._attention_backend, parallel_config=None)
        out = out.flatten(2, 3).type_as(query)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


# ----------------------------------------------------------------------------- results
def adherence(maps: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of each subject's attention map inside its box, averaged over latent frames."""
    scores = {}
    for name, heat in maps.items():
        per_frame = []
        for f in range(heat.shape[0]):
            inside = box_cells(masks[name][f])
            per_frame.append(float((heat[f] * inside).sum()))
        scores[name] = float(np.mean(per_frame))
    return scores


def box_cells(coverage: np.ndarray) -> np.ndarray:
    """The token cells that count as inside a box: at least a quarter covered, or, for a box
    smaller than that, every cell it touches."""
    inside = coverage >= 0.25
    if not inside.any():
        inside = coverage > 0
    return inside.astype(np.float32)


def normalized_maps(state: GuidanceState, grid: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Each recorded map as [latent_frames, h, w], every frame a distribution summing to 1."""
    out = {}
    for name, acc in state.maps.items():
        heat = acc.float().cpu().numpy().reshape(grid).astype(np.float64)
        heat = np.clip(heat, 0, None)
        sums = heat.reshape(grid[0], -1).sum(axis=1).reshape(-1, 1, 1)
        sums[sums <= 0] = 1.0
        out[name] = (heat / sums).astype(np.float32)
    return out


# ----------------------------------------------------------------------------- generator hook
class LayoutGuidance:
    """A Generator attention hook: `generator.attention_hooks.append(LayoutGuidance())`.

    For a request with a layout it installs the processor on every cross-attention module for the
    duration of the call, and leaves in `extras`: "guidance" (settings, subjects found, missing
    subjects), "adherence" {name: score} and "heatmaps" {name: [F, h, w]}."""

    def __init__(self, settings: GuidanceSettings | None = None) -> None:
        self.settings = settings or GuidanceSettings()
        self.last_state: GuidanceState | None = None
        # one processor for every job: a compiled block's guards see the same object each time
        self.processor = LayoutAttnProcessor()

    @contextlib.contextmanager
    def __call__(self, generator, request, extras: dict[str, Any]) -> Iterator[None]:  # noqa: ANN001
        if not request.layout_json:
            yield
            return
        layout = Layout.from_json(request.layout_json)
        if not layout.guided_names:
            yield
            return
        pipe = generator.pipeline
        transformer = pipe.transformer
        tokens, missing = subject_tokens(pipe.tokenizer, request.prompt, list(layout.guided_names))
        masks = subject_masks(layout, request.frames, request.height, request.width)
        settings = self.settings
        state = GuidanceState(settings=settings, total_steps=request.steps, tokens=tokens, masks=masks,
                              scale=float(request.guidance_strength))
        path = settings.resolved_path()
        distinct = {j for idx in tokens.values() for j in idx if j < 512}
        if path == FOLDED and len(tokens) > settings.fold_slots or (
                path == LSE and max(len(distinct), len(tokens)) > settings.lse_slots):
            path = MASK  # more subjects (tokens) than the path's fixed slots hold
        state.folded, state.lse = path == FOLDED, path == LSE
        if tokens:
            if path != MASK:
                state.columns = bias_columns(tokens, masks, settings.outside)
            else:
                state.bias_base = build_bias(tokens, masks, settings.outside, 512)
        cond, neg = generator.encode_prompts(request.prompt, request.negative_prompt)

        def is_cond(ehs: torch.Tensor | None) -> bool:
            if ehs is None or ehs.shape[1:] != cond.shape[1:]:
                return False
            if ehs.data_ptr() == cond.data_ptr():  # the pipeline passes our cached tensor unchanged
                return True
            if ehs.data_ptr() == neg.data_ptr():
                return False
            return torch.equal(ehs[0], cond[0].to(ehs.device, ehs.dtype))

        config = transformer.config
        heads, head_dim = config.num_attention_heads, config.attention_head_dim

        def pre_hook(_module, args, kwargs):  # noqa: ANN001, ANN202
            ehs = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
            hidden = kwargs.get("hidden_states", args[0] if args else None)
            if ehs is not None and hidden is not None:
                state.prepare(hidden.device, ehs.dtype, ehs.shape[1], heads, head_dim)
            state.update(is_cond(ehs))

        originals = dict(transformer.attn_processors)
        cross = [proc for name, proc in originals.items() if ".attn2." in name]
        # engine/text_kv.py put a processor of ours on every cross-attention (one per block, each
        # reading its block's text keys and values): the job's state goes on those; otherwise the
        # one shared processor goes in for the job
        installed = bool(cross) and all(isinstance(proc, LayoutAttnProcessor) for proc in cross)
        if installed:
            for proc in cross:
                proc.state = state
        else:
            processor = self.processor
            processor.state = state
            mapping = {name: (processor if ".attn2." in name else proc) for name, proc in originals.items()}
            transformer.set_attn_processor(mapping)
        handle = transformer.register_forward_pre_hook(pre_hook, with_kwargs=True)
        self.last_state = state
        try:
            yield
        finally:
            handle.remove()
            state.update(False)
            if installed:
                for proc in cross:
                    proc.state = None
            else:
                processor.state = None
                transformer.set_attn_processor(originals)
            state.collect_maps()
        grid = (latent_frame_count(request.frames), request.height // TOKEN_STRIDE, request.width // TOKEN_STRIDE)
        info: dict[str, Any] = {
            "enabled": state.scale > 0 and bool(tokens), "path": state.path,
            "strength": state.scale, "bias": settings.strength, "outside": settings.outside,
            "steps": [settings.active_steps(request.steps).start, settings.active_steps(request.steps).stop],
            "subjects": {name: len(idx) for name, idx in tokens.items()},
            "missing": missing,
        }
        if missing:
            log.warning("layout subjects not named in the prompt: %s", ", ".join(missing))
        extras["guidance"] = info
        if state.maps and state.map_counts:
            heatmaps = normalized_maps(state, grid)
            extras["heatmaps"] = heatmaps
            extras["adherence"] = adherence(heatmaps, {n: masks[n] for n in heatmaps})
