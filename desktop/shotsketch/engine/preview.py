"""Cheap step previews: a linear map from the 48 latent channels to RGB, fitted to the model's own VAE.

At first use the VAE encodes a few flat colours and gradients (one 64x64 frame each, cheap on any
device); a least-squares fit of latent -> RGB then turns any latent frame into a small preview with
one matrix product, without running the decoder.
"""

from __future__ import annotations

import numpy as np
import torch


class LatentPreviewer:
    def __init__(self, vae) -> None:  # noqa: ANN001 - an AutoencoderKLWan
        self._vae = vae
        self._matrix: torch.Tensor | None = None  # [49, 3]: 48 channels + bias
        self._on: tuple | None = None  # (device, matrix, std, mean) on the latents' device
        self._in_flight: list[tuple] = []  # (pinned host picture, CUDA event) still being copied
        cfg = vae.config
        self._mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(cfg.latents_std, dtype=torch.float32).view(-1, 1, 1)

    @torch.no_grad()
    def _fit(self) -> torch.Tensor:
        gen = torch.Generator("cpu").manual_seed(0)
        size = 64
        images = []
        for _ in range(24):
            colour = torch.rand(3, 1, 1, generator=gen) * 2 - 1
            images.append(colour.expand(3, size, size))
        ramp = torch.linspace(-1, 1, size)
        for c in range(3):
            img = torch.zeros(3, size, size)
            img[c] = ramp.view(1, -1)
            images.append(img)
            img = torch.zeros(3, size, size)
            img[c] = ramp.view(-1, 1)
            images.append(img)
        batch = torch.stack(images).unsqueeze(2)  # [N, 3, 1, H, W]
        param = next(self._vae.parameters())
        latents = []
        autotune = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False  # tuning every encoder shape for 30 tiny images costs seconds
        try:
            for i in range(0, batch.shape[0], 8):
                chunk = batch[i:i + 8].to(param.device, param.dtype)
                latents.append(self._vae.encode(chunk).latent_dist.mode().float().cpu())
        finally:
            torch.backends.cudnn.benchmark = autotune
        z = torch.cat(latents)[:, :, 0]  # [N, 48, h, w]
        scale = size // z.shape[-1]
        rgb = torch.nn.functional.avg_pool2d(batch[:, :, 0], scale)  # [N, 3, h, w]
        x = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        y = rgb.permute(0, 2, 3, 1).reshape(-1, 3)
        x = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)
        ridge = 1e-3 * torch.eye(x.shape[1])
        return torch.linalg.solve(x.T @ x + ridge, x.T @ y)

    def _picture(self, latents: torch.Tensor, frame: int | None) -> torch.Tensor:
        """uint8 [h, w, 3] on the latents' device."""
        if self._matrix is None:
            self._matrix = self._fit()
        index = latents.shape[2] // 2 if frame is None else frame
        lat = latents.detach()[0, :, index].float()  # [48, h, w]
        dev = lat.device
        if self._on is None or self._on[0] != dev:
            self._on = (dev, self._matrix.to(dev), self._std.to(dev), self._mean.to(dev))
        _, matrix, std, mean = self._on
        z = lat * std + mean  # undo the pipeline's normalization
        rgb = (torch.einsum("chw,ck->hwk", z, matrix[:-1]) + matrix[-1]).clamp(-1, 1)
        return ((rgb + 1) * 127.5).round().to(torch.uint8)

    def image(self, latents: torch.Tensor, frame: int | None = None) -> np.ndarray:
        """uint8 [h, w, 3] preview of one latent frame (the middle one by default) of normalized latents.

        Computed where the latents are (on the GPU: a few tiny kernels) and only the small picture
        crosses to the host: on the CPU side these tiny operations cost milliseconds a step, time the
        GPU would sit idle between steps."""
        return self._picture(latents, frame).cpu().numpy()

    def latest(self, latents: torch.Tensor) -> np.ndarray | None:
        """The preview for a denoising loop, without waiting for the GPU.

        On CUDA the picture of these latents is copied to the host in the background and the newest
        picture whose copy has finished is returned (usually the previous step's; None while none
        has), so the loop never stops to wait for a preview. Elsewhere: this step's picture."""
        if not latents.is_cuda:
            return self.image(latents)
        pic = self._picture(latents, None)
        host = torch.empty(pic.shape, dtype=pic.dtype, pin_memory=True)
        host.copy_(pic, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._in_flight.append((host, event))
        done = None
        while self._in_flight and self._in_flight[0][1].query():
            done = self._in_flight.pop(0)[0]
        del self._in_flight[:-3]  # a slow consumer must not pile pictures up
        return None if done is None else done.numpy().copy()

    def finish(self) -> None:
        """Forget pictures still in flight (the loop ended)."""
        self._in_flight.clear()
