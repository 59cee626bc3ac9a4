"""A faster decode for the Wan 2.2 VAE: the same function as diffusers' `AutoencoderKLWan.decode`,
computed with fewer bytes moved and fewer multiply-adds, from the VAE's own weights.

The stock decoder works one latent frame at a time and, for every causal 3D convolution,
concatenates the cached frames, pads the whole tensor (a copy), upcasts each RMS norm to float32
through several passes, upsamples in float32 and then convolves the 4x larger picture. This
decoder keeps the same chunking and caches (so it computes the same values) but:

- keeps activations as frame batches in channels-last layout, each causal convolution reading a
  stream buffer that holds the two cached frames followed by the chunk's frames (no pad copies);
- fuses RMS norm + SiLU into one pass (a Triton kernel on CUDA; the same arithmetic in PyTorch
  elsewhere), writing straight into that stream buffer;
- replaces "nearest 2x upsample, then 3x3 convolution" by four 2x2 convolutions on the small
  picture (one per output phase) - the same sums with 16 instead of 36 products per output -
  and adds the residual shortcut while interleaving the phases.

Only the untiled decode of the Wan 2.2 (residual, patch-2) VAE is handled; `supports(vae)` says
whether a VAE qualifies, and callers keep diffusers' own decode otherwise.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shotsketch.engine.cancel import check as cancel_check

log = logging.getLogger(__name__)
CL = torch.channels_last


class ConvKind(enum.Enum):
    CONV3D = "conv3d"  # cuDNN 3D convolution over the stream buffer (no copies)
    TAPS2D = "taps2d"  # the three time taps stacked as channels, one 2D convolution
    SUM2D = "sum2d"  # one 2D convolution per time tap, summed


@dataclass(frozen=True)
class DecodeOptions:
    conv: ConvKind = ConvKind.CONV3D
    subpixel_upsample: bool = True
    triton_norm: bool = True  # CUDA only; PyTorch ops elsewhere


def supports(vae: torch.nn.Module) -> bool:
    """The Wan 2.2 VAE (residual up blocks, patch 2) in the layout this decoder reproduces."""
    cfg = getattr(vae, "config", None)
    dec = getattr(vae, "decoder", None)
    if cfg is None or dec is None or type(vae).__name__ != "AutoencoderKLWan":
        return False
    if not getattr(cfg, "is_residual", False) or getattr(cfg, "patch_size", None) not in (None, 1, 2):
        return False
    return all(type(b).__name__ == "WanResidualUpBlock" for b in dec.up_blocks)


# ---------------------------------------------------------------------------------- RMS norm + SiLU
_triton_kernel = None
_triton_failed = False  # a launch failed once (no compiler, an old GPU): PyTorch ops from then on


def _get_triton_kernel():  # noqa: ANN202
    global _triton_kernel
    if _triton_kernel is not None:
        return _triton_kernel
    import triton
    import triton.language as tl

    @triton.jit
    def rms_silu_kernel(x_ptr, g_ptr, y_ptr, rows, C: tl.constexpr, BLOCK_C: tl.constexpr, ROWS: tl.constexpr,
                        scale, SILU: tl.constexpr):
        pid = tl.program_id(0)
        r = (pid * ROWS + tl.arange(0, ROWS)).to(tl.int64)[:, None]  # 64-bit offsets: large frames overflow 32
        c = tl.arange(0, BLOCK_C)[None, :]
        mask = (r < rows) & (c < C)
        x = tl.load(x_ptr + r * C + c, mask=mask, other=0.0).to(tl.float32)
        norm = tl.sqrt(tl.sum(x * x, axis=1))[:, None]
        g = tl.load(g_ptr + c, mask=c < C, other=0.0).to(tl.float32)
        y = x / tl.maximum(norm, 1e-12) * scale * g
        if SILU:
            y = y * tl.sigmoid(y)
        tl.store(y_ptr + r * C + c, y.to(y_ptr.dtype.element_ty), mask=mask)

    _triton_kernel = rms_silu_kernel
    return _triton_kernel


def _rms_silu_torch(x: torch.Tensor, gamma: torch.Tensor, scale: float, silu: bool) -> torch.Tensor:
    xf = x.float()
    y = xf * (scale / torch.linalg.vector_norm(xf, dim=1, keepdim=True).clamp_min(1e-12))
    y = y * gamma.float().view(1, -1, 1, 1)
    if silu:
        y = F.silu(y)
    return y.to(x.dtype)


def rms_silu(x: torch.Tensor, gamma: torch.Tensor, scale: float, *, silu: bool = True, out: torch.Tensor | None = None,
             use_triton: bool = True) -> torch.Tensor:
    """WanRMS_norm over channels (dim 1) then SiLU, for x [N, C, H, W] in channels-last layout.

    Computed in float32 and rounded once (the stock module rounds the normalized value to the
    input dtype before scaling): the difference is within one bf16 rounding."""
    if out is None:
        out = torch.empty_like(x, memory_format=CL)
    global _triton_failed
    if (use_triton and not _triton_failed and x.is_cuda and x.is_contiguous(memory_format=CL)
            and out.is_contiguous(memory_format=CL)):
        n, c, h, w = x.shape
        rows = n * h * w
        block_c = 1 << (c - 1).bit_length()
        rows_per = max(1, min(64, 8192 // block_c))
        grid = ((rows + rows_per - 1) // rows_per,)
        try:
            _get_triton_kernel()[grid](x, gamma.reshape(-1).contiguous(), out, rows, C=c, BLOCK_C=block_c,
                                       ROWS=rows_per, scale=float(scale), SILU=silu,
                                       num_warps=4 if block_c <= 512 else 8)
            return out
        except Exception:  # noqa: BLE001 - the same arithmetic in PyTorch below
            log.warning("the Triton RMS-norm kernel failed; using PyTorch ops", exc_info=True)
            _triton_failed = True
    out.copy_(_rms_silu_torch(x, gamma, scale, silu))
    return out


# ---------------------------------------------------------------------------------- convolutions
class _Stream:
    """The two frames a causal time-3 convolution remembers between chunks (zeros before the first)."""

    __slots__ = ("hist",)

    def __init__(self) -> None:
        self.hist: torch.Tensor | None = None

    def buffer(self, frames: int, like: torch.Tensor, channels: int) -> torch.Tensor:
        """[2 + frames, C, H, W] channels-last: the history, then room for this chunk's frames."""
        _, _, h, w = like.shape
        buf = torch.empty((2 + frames, channels, h, w), dtype=like.dtype, device=like.device, memory_format=CL)
        if self.hist is None:
            buf[:2].zero_()
        else:
            buf[:2].copy_(self.hist)
        return buf

    def remember(self, buf: torch.Tensor) -> None:
        self.hist = buf[-2:].clone(memory_format=CL)


def _as_5d(buf: torch.Tensor) -> torch.Tensor:
    """[T, C, H, W] channels-last -> the same memory as [1, C, T, H, W] channels-last-3d."""
    return buf.permute(1, 0, 2, 3).unsqueeze(0)


def _from_5d(y: torch.Tensor) -> torch.Tensor:
    y = y.squeeze(0).permute(1, 0, 2, 3)
    return y if y.is_contiguous(memory_format=CL) else y.contiguous(memory_format=CL)


class _CausalConv:
    """A WanCausalConv3d (time kernel 3, or 1) run over a stream buffer."""

    def __init__(self, conv: torch.nn.Conv3d, kind: ConvKind) -> None:
        self.conv = conv
        self.kind = kind
        kt, kh, kw = conv.kernel_size
        self.kt, self.pad_hw = kt, (kh // 2, kw // 2)
        self.out_channels = conv.out_channels
        self._prepared_for: tuple | None = None

    def _prepare(self, dtype: torch.dtype, device: torch.device) -> None:
        key = (dtype, device, self.conv.weight._version, self.kind)
        if self._prepared_for == key:
            return
        w = self.conv.weight.detach()
        if self.kind is ConvKind.CONV3D or self.kt == 1:
            self.w = w.contiguous(memory_format=torch.channels_last_3d)
        elif self.kind is ConvKind.TAPS2D:
            co, ci, kt, kh, kw = w.shape
            self.w = w.permute(0, 2, 1, 3, 4).reshape(co, kt * ci, kh, kw).contiguous(memory_format=CL)
        else:
            self.w = [w[:, :, k].contiguous(memory_format=CL) for k in range(self.kt)]
        self.b = None if self.conv.bias is None else self.conv.bias.detach()
        self._prepared_for = key

    def __call__(self, buf: torch.Tensor) -> torch.Tensor:
        """buf [kt - 1 + T, C, H, W] -> [T, Cout, H, W] (channels-last)."""
        self._prepare(buf.dtype, buf.device)
        t = buf.shape[0] - (self.kt - 1)
        if self.kt == 1:
            return _from_5d(F.conv3d(_as_5d(buf), self.w, self.b))
        if self.kind is ConvKind.CONV3D:
            return _from_5d(F.conv3d(_as_5d(buf), self.w, self.b, padding=(0, *self.pad_hw)))
        if self.kind is ConvKind.TAPS2D:
            stacked = torch.cat([buf[k:k + t] for k in range(self.kt)], dim=1).contiguous(memory_format=CL)
            return F.conv2d(stacked, self.w, self.b, padding=self.pad_hw)
        y = F.conv2d(buf[0:t], self.w[0], self.b, padding=self.pad_hw)
        for k in range(1, self.kt):
            y += F.conv2d(buf[k:k + t], self.w[k], None, padding=self.pad_hw)
        return y


class _ResBlock:
    def __init__(self, block, kind: ConvKind, use_triton: bool) -> None:  # noqa: ANN001 - WanResidualBlock
        self.block = block
        self.use_triton = use_triton
        self.conv1, self.conv2 = _CausalConv(block.conv1, kind), _CausalConv(block.conv2, kind)
        self.shortcut = None if isinstance(block.conv_shortcut, torch.nn.Identity) else _CausalConv(block.conv_shortcut, kind)
        self.reset()

    def reset(self) -> None:
        self.s1, self.s2 = _Stream(), _Stream()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        t = x.shape[0]
        h = x if self.shortcut is None else self.shortcut(x)
        buf = self.s1.buffer(t, x, x.shape[1])
        rms_silu(x, b.norm1.gamma, b.norm1.scale, out=buf[2:], use_triton=self.use_triton)
        self.s1.remember(buf)
        y = self.conv1(buf)
        del buf
        buf = self.s2.buffer(t, y, y.shape[1])
        rms_silu(y, b.norm2.gamma, b.norm2.scale, out=buf[2:], use_triton=self.use_triton)
        self.s2.remember(buf)
        del y
        y = self.conv2(buf)
        y += h
        return y


def _subpixel_kernels(w: torch.Tensor) -> list[list[torch.Tensor]]:
    """3x3 kernel on a nearest-2x-upsampled picture -> four 2x2 kernels on the original picture.

    Output row 2i+a reads upsampled rows 2i+a-1..2i+a+1, which are original rows i-1, i, i (a=0)
    or i, i, i+1 (a=1): the taps that land on the same original row are summed."""
    groups = {0: [[0], [1, 2]], 1: [[0, 1], [2]]}  # phase -> which 3x3 taps fold onto each of 2 rows
    wf = w.float()
    out = []
    for a in (0, 1):
        row = []
        for b in (0, 1):
            k = torch.zeros(w.shape[0], w.shape[1], 2, 2, dtype=torch.float32, device=w.device)
            for i, rows in enumerate(groups[a]):
                for j, cols in enumerate(groups[b]):
                    k[:, :, i, j] = wf[:, :, rows][:, :, :, cols].sum(dim=(2, 3))
            row.append(k.to(w.dtype).contiguous(memory_format=CL))
        out.append(row)
    return out


class _UpBlock:
    """WanResidualUpBlock: residual blocks, optional time doubling + spatial 2x, DupUp3D shortcut."""

    def __init__(self, block, options: DecodeOptions, use_triton: bool) -> None:  # noqa: ANN001
        self.block = block
        self.options = options
        self.resnets = [_ResBlock(r, options.conv, use_triton) for r in block.resnets]
        up = block.upsampler
        self.mode = None if up is None else up.mode
        self.time_conv = _CausalConv(up.time_conv, ConvKind.CONV3D) if self.mode == "upsample3d" else None
        self.time_stream = _Stream()
        self.spatial = None if up is None else up.resample[1]  # nn.Conv2d after the nearest upsample
        self._sub: tuple | None = None
        sc = block.avg_shortcut
        if sc is not None:
            ft, fs, rep = sc.factor_t, sc.factor_s, sc.repeats
            co = sc.out_channels
            o = torch.arange(co)
            # channel j = ((o*ft + f)*fs + a)*fs + b of the repeated tensor comes from input channel j // rep
            self.sc_index = {(f, a, b): (((o * ft + f) * fs + a) * fs + b) // rep
                             for f in range(ft) for a in range(fs) for b in range(fs)}
            self.sc_index_device = torch.device("cpu")
            self.ft, self.fs = ft, fs

    def reset(self) -> None:
        self.time_stream = _Stream()
        for r in self.resnets:
            r.reset()

    def _subpixel(self, dtype: torch.dtype, device: torch.device):  # noqa: ANN202
        key = (dtype, device, self.spatial.weight._version)
        if self._sub is None or self._sub[0] != key:
            k = _subpixel_kernels(self.spatial.weight.detach())
            k4 = torch.cat([k[0][0], k[0][1], k[1][0], k[1][1]]).contiguous(memory_format=CL)
            bias = self.spatial.bias
            b4 = None if bias is None else bias.detach().repeat(4)
            self._sub = (key, k4, b4)
        return self._sub[1], self._sub[2]

    def _shortcut(self, x_in: torch.Tensor, a: int, b: int, first_chunk: bool) -> torch.Tensor:
        """DupUp3D for spatial phase (a, b): [T*ft (minus dropped), Cout, H, W] channels-last."""
        xr = x_in.permute(0, 2, 3, 1)  # [T, H, W, Cin], contiguous
        if self.sc_index_device != x_in.device:  # the channel maps move to the GPU once, not every chunk
            self.sc_index = {k: v.to(x_in.device) for k, v in self.sc_index.items()}
            self.sc_index_device = x_in.device
        parts = [xr[..., self.sc_index[(f, a, b)]] for f in range(self.ft)]
        s = torch.stack(parts, dim=1).reshape(-1, *xr.shape[1:3], parts[0].shape[-1])  # [T*ft, H, W, Cout]
        if first_chunk and self.ft > 1:
            s = s[self.ft - 1:]
        return s.permute(0, 3, 1, 2)

    def __call__(self, x: torch.Tensor, first_chunk: bool) -> torch.Tensor:
        x_in = x
        for r in self.resnets:
            x = r(x)
        if self.mode is None:
            return x
        if self.mode == "upsample3d":
            if not first_chunk:  # the stock decoder's "Rep": the first chunk is not doubled, and the
                # time stream starts from zeros at the second chunk
                t, c, h, w = x.shape
                buf = self.time_stream.buffer(t, x, c)
                buf[2:].copy_(x)
                self.time_stream.remember(buf)
                y = self.time_conv(buf)  # [T, 2C, H, W]: channel halves are two successive frames
                x = y.permute(0, 2, 3, 1).reshape(t, h, w, 2, c).permute(0, 3, 1, 2, 4).reshape(2 * t, h, w, c)
                x = x.permute(0, 3, 1, 2)
        t, c, h, w = x.shape
        co = self.spatial.out_channels
        out = torch.empty((t, 2 * h, 2 * w, co), dtype=x.dtype, device=x.device)  # NHWC
        out6 = out.view(t, h, 2, w, 2, co)
        if self.options.subpixel_upsample:
            k4, b4 = self._subpixel(x.dtype, x.device)
            # one convolution computes all four phases (4 x Cout channels) over the zero-padded picture;
            # phase (a, b) is the window starting at row a, column b
            p = F.conv2d(x, k4, b4, padding=1).permute(0, 2, 3, 1)  # [T, H+1, W+1, 4 Cout]
            for a in (0, 1):
                for b in (0, 1):
                    ph = p[:, a:a + h, b:b + w, (2 * a + b) * co:(2 * a + b + 1) * co]
                    torch.add(ph, self._shortcut(x_in, a, b, first_chunk).permute(0, 2, 3, 1), out=out6[:, :, a, :, b, :])
        else:
            up = F.interpolate(x, scale_factor=2.0, mode="nearest-exact").contiguous(memory_format=CL)
            y = F.conv2d(up, self.spatial.weight, self.spatial.bias, padding=1).permute(0, 2, 3, 1)
            y6 = y.reshape(t, h, 2, w, 2, co)
            for a in (0, 1):
                for b in (0, 1):
                    torch.add(y6[:, :, a, :, b, :], self._shortcut(x_in, a, b, first_chunk).permute(0, 2, 3, 1),
                              out=out6[:, :, a, :, b, :])
        return out.permute(0, 3, 1, 2)


class FastDecoder:
    """Decodes normalized-free latents (what `vae.decode` takes) to video in [-1, 1]."""

    def __init__(self, vae, options: DecodeOptions | None = None) -> None:  # noqa: ANN001 - AutoencoderKLWan
        if not supports(vae):
            raise ValueError("only the Wan 2.2 VAE (residual, patch 2) is supported")
        self.vae = vae
        self.options = options or DecodeOptions()
        self._built: bool | None = None

    def _use_triton(self, device: torch.device) -> bool:
        if not (self.options.triton_norm and device.type == "cuda"):
            return False
        try:
            _get_triton_kernel()
            return True
        except Exception:  # noqa: BLE001 - no Triton: the same arithmetic in PyTorch
            log.info("Triton unavailable; RMS norm runs as PyTorch ops", exc_info=True)
            return False

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, columns: tuple[int, int] | None = None) -> torch.Tensor:
        """z [B, z_dim, F, h, w] -> [B, 3, 1 + 4 (F - 1), 16 h, 16 w], clamped to [-1, 1] (as `vae.decode`).
        `columns`: only those latent columns after the middle block (engine/parallel_decode.py: a band per GPU)."""
        try:
            return torch.cat([self._decode_one(z[i:i + 1], columns) for i in range(z.shape[0])])
        finally:  # the frames each convolution remembers (GiBs at 720p) are not kept between clips
            for block in getattr(self, "mid_res", []) + getattr(self, "ups", []):
                block.reset()

    def _build(self, use_triton: bool) -> None:
        dec, opts = self.vae.decoder, self.options
        if self._built == use_triton:
            return
        self.conv_in = _CausalConv(dec.conv_in, opts.conv)
        self.mid_res = [_ResBlock(r, opts.conv, use_triton) for r in dec.mid_block.resnets]
        self.ups = [_UpBlock(b, opts, use_triton) for b in dec.up_blocks]
        self.conv_out = _CausalConv(dec.conv_out, opts.conv)
        self._built = use_triton

    def _decode_one(self, z: torch.Tensor, columns: tuple[int, int] | None = None) -> torch.Tensor:
        vae, dec = self.vae, self.vae.decoder
        dtype = dec.conv_in.weight.dtype
        device = dec.conv_in.weight.device
        use_triton = self._use_triton(device)
        self._build(use_triton)
        for r in self.mid_res:
            r.reset()
        for up in self.ups:
            up.reset()
        s_in, s_out = _Stream(), _Stream()
        z = z.to(device=device, dtype=dtype)
        x = vae.post_quant_conv(z)  # 1x1x1
        frames = x.shape[2]
        x = x[0].permute(1, 0, 2, 3).contiguous(memory_format=CL)  # [F, C, h, w]
        patch = vae.config.patch_size or 1
        out_frames = 1 + 4 * (frames - 1) if frames > 0 else 0
        video = None
        written = 0
        for i in range(frames):
            cancel_check(dec)  # a cancelled job stops here, one chunk at most after the cancel
            first = i == 0
            xi = x[i:i + 1]
            buf = s_in.buffer(1, xi, xi.shape[1])
            buf[2:].copy_(xi)
            s_in.remember(buf)
            h = self.conv_in(buf)
            del buf
            h = self.mid_res[0](h)
            for attn, res in zip(dec.mid_block.attentions, self.mid_res[1:]):
                h = _from_5d(attn(_as_5d(h)))
                h = res(h)
            if columns is not None:
                h = h[..., columns[0]:columns[1]].contiguous(memory_format=CL)
            for up in self.ups:
                h = up(h, first)
            norm = dec.norm_out
            buf = s_out.buffer(h.shape[0], h, h.shape[1])
            rms_silu(h, norm.gamma, norm.scale, out=buf[2:], use_triton=use_triton)
            s_out.remember(buf)
            del h
            y = self.conv_out(buf)  # [t, c * p * p, H, W]
            del buf
            t, cp, hh, ww = y.shape
            c = cp // (patch * patch)
            if video is None:
                video = torch.empty((c, out_frames, hh * patch, ww * patch), dtype=dtype, device=device)
            # unpatchify: channel (c, p, q) -> pixel (row h * patch + q, column w * patch + p)
            yy = y.reshape(t, c, patch, patch, hh, ww).permute(1, 0, 4, 3, 5, 2).reshape(c, t, hh * patch, ww * patch)
            video[:, written:written + t] = yy.clamp(-1.0, 1.0)
            written += t
        if video is None:
            raise ValueError("no latent frames to decode")
        return video[:, :written].unsqueeze(0)
