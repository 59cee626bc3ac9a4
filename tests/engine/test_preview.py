import numpy as np
import torch

from shotsketch.engine.preview import LatentPreviewer


def _normalized_latents(pipe, rgb):
    img = torch.zeros(1, 3, 1, 64, 96)
    for c in range(3):
        img[:, c] = rgb[c] / 127.5 - 1
    with torch.no_grad():
        z = pipe.vae.encode(img).latent_dist.mode()
    mean = torch.tensor(pipe.vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(pipe.vae.config.latents_std).view(1, -1, 1, 1, 1)
    return (z - mean) / std


def test_preview_recovers_flat_colours_from_latents(demo_generator):
    pipe = demo_generator.pipeline
    previewer = LatentPreviewer(pipe.vae)
    for colour in [(230, 30, 30), (30, 200, 40), (20, 40, 220)]:
        image = previewer.image(_normalized_latents(pipe, colour), frame=0)
        assert image.shape == (4, 6, 3) and image.dtype == np.uint8
        mean = image.reshape(-1, 3).mean(axis=0)
        strongest = int(np.argmax(colour))
        assert int(np.argmax(mean)) == strongest, (colour, mean)
