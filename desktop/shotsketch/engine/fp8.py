"""FP8 matrix products for fast mode on the Wan2.2 TI2V-5B transformer blocks.

Weights are quantized once to float8_e4m3fn with one scale per output row; activations get one
scale per token row on every call; `torch._scaled_mm` multiplies them with those float32 scales.
`FP8Swap` puts FP8 copies in place of the blocks' `nn.Linear` layers only inside
`with swap.active():` and puts the very same original modules back on exit, so one transformer
serves exact and fast requests.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0  # torch.finfo(torch.float8_e4m3fn).max
MIN_SCALE = 1e-12  # floor of amax / 448, so all-zero rows do not divide by zero
ALIGN = 16  # _scaled_mm wants K and N multiples of 16 (and, on CUDA, M is padded to it)
MIN_FEATURES = 256  # smaller layers are not worth the quantization of their activations
_WEIGHT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_CUDA_OUT_DTYPES = (torch.bfloat16, torch.float16)  # row-wise scaling outputs on CUDA


def eligible(linear: nn.Module) -> bool:
    """An `nn.Linear` with float weights whose in and out features are multiples of 16, at least 256."""
    if not isinstance(linear, nn.Linear):
        return False
    weight = linear.weight
    if weight.is_meta or weight.dtype not in _WEIGHT_DTYPES:
        return False
    return all(n % ALIGN == 0 and n >= MIN_FEATURES for n in (linear.in_features, linear.out_features))


def _quantize_rows(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float8 values and float32 scales [rows, 1] of a 2D tensor, one scale per row."""
    t = t.float()
    scale = (t.abs().amax(dim=-1, keepdim=True) / FP8_MAX).clamp_min(MIN_SCALE)
    return (t / scale).clamp_(-FP8_MAX, FP8_MAX).to(FP8_DTYPE), scale


def _row_multiple(device: torch.device) -> int:
    """Rows (M) are padded to this multiple before `_scaled_mm`: 16 on CUDA, none elsewhere."""
    return ALIGN if device.type == "cuda" else 1


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    # CUDA row-wise scaling writes only bf16/fp16 (its CUTLASS kernel); float32 inputs get bf16 products.
    if x.device.type == "cuda" and x.dtype not in _CUDA_OUT_DTYPES:
        return torch.bfloat16
    return x.dtype


class FP8Linear(nn.Module):
    """A linear layer with float8_e4m3fn weights (row-wise scales) and dynamic row-wise activation scales.

    Buffers are not persistent: the FP8 copy never enters a state dict. `module.to(dtype)` keeps
    the float8 weight and the float32 scales (only the bias follows the dtype).
    """

    w_fp8: torch.Tensor  # [out, in], contiguous; `w_fp8.t()` is the column-major second operand
    w_scale: torch.Tensor  # [1, out], float32
    bias: torch.Tensor | None  # [out], in the replaced layer's dtype

    def __init__(self, w_fp8: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        out_features, in_features = w_fp8.shape
        if in_features % ALIGN or out_features % ALIGN:
            raise ValueError(f"FP8Linear needs in/out features that are multiples of {ALIGN}, "
                             f"got {in_features}x{out_features}")
        if w_fp8.dtype != FP8_DTYPE or w_scale.dtype != torch.float32 or w_scale.shape != (1, out_features):
            raise ValueError("FP8Linear wants float8_e4m3fn weights [out, in] and float32 scales [1, out]")
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("w_fp8", w_fp8.contiguous(), persistent=False)
        self.register_buffer("w_scale", w_scale.contiguous(), persistent=False)
        self.register_buffer("bias", bias, persistent=False)

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear) -> FP8Linear:
        """Quantize `linear`'s weight once (on its device); the bias is copied in its own dtype."""
        w_fp8, scale = _quantize_rows(linear.weight.detach())
        bias = None if linear.bias is None else linear.bias.detach().clone()
        return cls(w_fp8, scale.reshape(1, -1), bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected {self.in_features} input features, got shape {tuple(x.shape)}")
        lead = x.shape[:-1]
        x2d = x.reshape(-1, self.in_features)
        rows = x2d.shape[0]
        pad = -rows % _row_multiple(x.device)
        if pad:
            x2d = torch.cat([x2d, x2d.new_zeros(pad, self.in_features)])
        xq, x_scale = _quantize_rows(x2d)
        out_dtype = _out_dtype(x)
        bias = None if self.bias is None else self.bias.to(out_dtype)
        y = torch._scaled_mm(xq, self.w_fp8.t(), scale_a=x_scale, scale_b=self.w_scale, bias=bias,
                             out_dtype=out_dtype, use_fast_accum=True)
        if pad:
            y = y[:rows]
        return y.to(x.dtype).reshape(*lead, self.out_features)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - nn.Module's signature
        kept = {"w_fp8": self.w_fp8, "w_scale": self.w_scale}
        super()._apply(fn, recurse)
        for name, before in kept.items():
            after = getattr(self, name)
            if after.dtype != before.dtype:  # a dtype cast: keep the values, follow the device
                setattr(self, name, before.to(after.device))
        return self

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


@functools.cache
def _cpu_scaled_mm_works() -> bool:
    try:
        linear = nn.Linear(ALIGN, ALIGN)
        with torch.no_grad():
            linear.weight.copy_(2 * torch.eye(ALIGN))
            linear.bias.fill_(1.0)
        y = FP8Linear.from_linear(linear)(torch.ones(3, ALIGN, dtype=torch.bfloat16))
        return y.dtype == torch.bfloat16 and torch.allclose(y.float(), torch.full((3, ALIGN), 3.0), atol=0.05)
    except (RuntimeError, NotImplementedError, AttributeError, TypeError, ValueError):
        return False


def fp8_supported(device: torch.device | str) -> bool:
    """Whether FP8Linear runs on `device`: CPU if torch's `_scaled_mm` takes float8 there (tried once),
    CUDA from compute capability 8.9 (Ada, Hopper and later); never on ROCm, MPS or others."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return _cpu_scaled_mm_works()
    if dev.type == "cuda":
        if torch.version.hip is not None or not torch.cuda.is_available():
            return False
        return tuple(torch.cuda.get_device_capability(dev)) >= (8, 9)
    return False


@dataclass(frozen=True)
class _Stamp:
    """What an FP8 copy was made from; a different stamp means the copy is stale."""

    device: torch.device
    dtype: torch.dtype
    weight: tuple[int, int]  # data_ptr, version
    bias: tuple[int, int] | None

    @staticmethod
    def of(linear: nn.Linear) -> _Stamp:
        w, b = linear.weight, linear.bias
        return _Stamp(w.device, w.dtype, (w.data_ptr(), w._version),
                      None if b is None else (b.data_ptr(), b._version))


class FP8Swap:
    """FP8 for the eligible `nn.Linear` layers of `transformer.blocks`, on request.

    `with swap.active():` swaps them (attention q/k/v/out, fused to_qkv/to_kv when present, the
    feed-forward layers) for FP8Linear copies and puts the original modules back on exit, even on
    an exception. Patch embedding, condition embedder and proj_out are never touched. Copies are
    made on the first `active()` and kept for later ones (about half the blocks' bf16 weight
    memory); a layer whose weight changed since (storage, device, dtype or in-place update) is
    quantized again. `release()` drops them. Nested `active()` calls are no-ops.
    """

    def __init__(self, transformer: nn.Module) -> None:
        blocks = getattr(transformer, "blocks", None)
        if not isinstance(blocks, nn.Module):
            raise ValueError(f"{type(transformer).__name__} has no `blocks` module list")
        self._blocks = blocks
        self._copies: dict[int, tuple[nn.Linear, _Stamp, FP8Linear]] = {}  # id(linear) -> copy
        self._installed: list[tuple[nn.Module, str, nn.Linear]] = []
        self._depth = 0

    def _targets(self) -> list[tuple[nn.Module, str, nn.Linear]]:
        return [(parent, name, child)
                for parent in self._blocks.modules()
                for name, child in parent.named_children()
                if eligible(child)]

    @property
    def count(self) -> int:
        """How many layers are (or would be) swapped."""
        return len(self._installed) if self._depth else len(self._targets())

    @property
    def nbytes(self) -> int:
        """Memory held by the FP8 copies."""
        return sum(t.numel() * t.element_size()
                   for _, _, q in self._copies.values() for t in q.buffers())

    def release(self) -> None:
        """Drop the FP8 copies (made again by the next `active()`)."""
        if self._depth:
            raise RuntimeError("FP8Swap.release() inside active()")
        self._copies.clear()

    def _fp8_copies(self, targets: list[tuple[nn.Module, str, nn.Linear]]) -> list[FP8Linear]:
        copies: dict[int, tuple[nn.Linear, _Stamp, FP8Linear]] = {}
        for _, _, linear in targets:
            if id(linear) in copies:
                continue
            stamp = _Stamp.of(linear)
            cached = self._copies.get(id(linear))
            if cached is None or cached[0] is not linear or cached[1] != stamp:
                cached = (linear, stamp, FP8Linear.from_linear(linear))
            copies[id(linear)] = cached
        self._copies = copies  # layers gone from the blocks (e.g. after unfusing) lose their copies
        return [copies[id(linear)][2] for _, _, linear in targets]

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Run the blocks' eligible linear layers in FP8 inside this context."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        targets = self._targets()
        copies = self._fp8_copies(targets)
        self._depth = 1
        try:
            for (parent, name, linear), fp8 in zip(targets, copies):
                setattr(parent, name, fp8)
                self._installed.append((parent, name, linear))
            yield
        finally:
            for parent, name, linear in reversed(self._installed):
                setattr(parent, name, linear)
            self._installed.clear()
            self._depth = 0
