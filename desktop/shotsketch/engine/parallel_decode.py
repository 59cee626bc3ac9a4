"""The decode after a multi-GPU denoise, spread over the GPUs in bands of frame columns.

Every rank ends the denoise with the same latents. Where the fast decoder applies (CUDA, untiled,
the Wan 2.2 VAE: engine/vae_decode.py), each rank decodes every frame but only its band of
columns: the decoder's input convolution and middle block (which attends over the whole picture)
run on all columns, then the up blocks on the band widened by `halo_columns` on each side (as far
as any later convolution reaches, so the band's own columns come out as one GPU computes them),
and the bands are gathered on rank 0. Elsewhere rank 0 decodes alone while the others wait.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from shotsketch.engine.generator import Generator, frames_as_uint8


def halo_columns(vae: torch.nn.Module) -> int:
    """Latent columns any output column depends on, to each side, after the middle block: the 3x3
    convolutions of the up blocks (each reaching 1 pixel at its own scale), their upsampling
    convolutions and the output convolution, plus one column to spare."""
    dec = vae.decoder
    reach, scale = 0.0, 1.0

    def radius(conv: torch.nn.Module) -> int:
        return int(conv.kernel_size[-1]) // 2

    for block in dec.up_blocks:
        for res in block.resnets:
            reach += (radius(res.conv1) + radius(res.conv2)) / scale
            if not isinstance(res.conv_shortcut, torch.nn.Identity):
                reach += radius(res.conv_shortcut) / scale
        up = block.upsampler
        if up is not None and up.mode in ("upsample2d", "upsample3d"):
            scale *= 2.0
            reach += radius(up.resample[1]) / scale
    reach += radius(dec.conv_out) / scale
    return math.ceil(reach) + 1


def column_bands(width: int, parts: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Per rank: (first, end) of its own latent columns and (first, end) of the columns it decodes."""
    from shotsketch.engine.parallel import shard_sizes

    bands, start = [], 0
    for n in shard_sizes(width, parts):
        bands.append((start, start + n, max(0, start - halo), min(width, start + n + halo)))
        start += n
    return bands


def decode_band(decoder, latents: torch.Tensor, band: tuple[int, int, int, int], scale: int) -> torch.Tensor:  # noqa: ANN001
    """[1, 3, F, H, (end - first) * scale]: the band's own pixel columns."""
    first, end, lo, hi = band
    video = decoder.decode(latents, columns=(lo, hi))
    return video[..., (first - lo) * scale:(end - lo) * scale]


def _gather_columns(band: torch.Tensor, widths: list[int], group) -> torch.Tensor:  # noqa: ANN001
    from torch.distributed import _functional_collectives as funcol

    from shotsketch.engine.parallel import _wait

    most = max(widths)
    padded = band if band.shape[-1] == most else torch.nn.functional.pad(band, (0, most - band.shape[-1]))
    got = _wait(funcol.all_gather_tensor(padded.contiguous(), 0, group))  # [ranks, 3, F, H, most]
    return torch.cat([got[i:i + 1, ..., :w] for i, w in enumerate(widths)], dim=-1)


def decode_on_ranks(generator: Generator, latents: torch.Tensor) -> np.ndarray:
    """uint8 frames [count, height, width, 3] on rank 0; an empty array on the other ranks."""
    ranks = generator.ranks  # type: ignore[attr-defined]
    vae = generator._pipe.vae
    device = next(vae.parameters()).device
    decoder = generator._decoder_for(device) if ranks.world > 1 else None
    if decoder is None or latents.shape[0] != 1:
        if ranks.is_first:
            return Generator.decode(generator, latents)
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    with torch.inference_mode():
        lat = latents.to(device=device, dtype=vae.dtype)
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(lat.device, lat.dtype)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(lat.device, lat.dtype)
        lat = lat / inv_std + mean  # as Generator.decode
        scale = int(vae.config.scale_factor_spatial)
        bands = column_bands(lat.shape[-1], ranks.world, halo_columns(vae))
        band = decode_band(decoder, lat, bands[ranks.rank], scale)
        video = _gather_columns(band, [(b[1] - b[0]) * scale for b in bands], torch.distributed.group.WORLD)
        if not ranks.is_first:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8)
        return frames_as_uint8(video)
