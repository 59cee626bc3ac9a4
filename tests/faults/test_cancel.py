"""Defect 12: cancel acts inside the model — between transformer blocks and per VAE decode chunk —
not only between steps and before the decode."""

from __future__ import annotations

import pytest
import torch

from shotsketch.engine.events import CancelToken, JobCancelled, JobFinished
from shotsketch.engine.generator import Generator
from shotsketch.engine.requests import GenerationRequest
from shotsketch.engine.sources import ModelSource

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def generator() -> Generator:
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    return gen


def _request(**changes) -> GenerationRequest:
    fields = dict(prompt="A yellow ball rolls from the left edge to the center", width=96, height=64, frames=9,
                  steps=3, guidance=5.0, seed=11)
    fields.update(changes)
    return GenerationRequest(**fields)


def test_cancel_acts_before_the_next_transformer_block(generator):
    blocks = generator._pipe.transformer.blocks
    assert len(blocks) >= 2
    cancel, after_cancel = CancelToken(), []
    first = blocks[0].register_forward_hook(lambda *_: cancel.cancel())
    later = blocks[1].register_forward_pre_hook(lambda *_: after_cancel.append(1) if cancel.cancelled else None)
    try:
        final = generator.generate(_request(), cancel=cancel)
    finally:
        first.remove()
        later.remove()
    assert isinstance(final, JobCancelled) and final.at_step == 0
    assert after_cancel == []  # no block ran after the cancel (the step used to run to its end)


def test_cancel_acts_before_the_next_decode_chunk(generator):
    decoder = generator._pipe.vae.decoder
    cancel, chunks = CancelToken(), []

    def count(*_):
        chunks.append(1)
        cancel.cancel()  # the person presses Cancel while the first chunk decodes

    handle = decoder.register_forward_hook(count)
    try:
        final = generator.generate(_request(), cancel=cancel)
    finally:
        handle.remove()
    assert isinstance(final, JobCancelled) and final.at_step == 3
    assert len(chunks) == 1  # 9 frames are 3 latent chunks; the decode stopped after the first


def test_the_fast_decoder_checks_cancel_per_chunk(generator):
    from shotsketch.engine.cancel import Interrupted, cancel_points
    from shotsketch.engine.vae_decode import FastDecoder

    vae = generator._pipe.vae
    decoder = FastDecoder(vae)
    z = torch.zeros(1, vae.config.z_dim, 3, 4, 6)
    cancel = CancelToken()
    with cancel_points(generator._pipe.transformer, vae, cancel, {"step": 0}):
        assert decoder.decode(z).shape[2] == 9  # runs whole while nobody cancels
        cancel.cancel()
        with pytest.raises(Interrupted):
            decoder.decode(z)


def test_a_job_after_a_cancelled_one_runs_whole(generator):
    cancel = CancelToken()
    cancel.cancel()
    assert isinstance(generator.generate(_request(), cancel=cancel), JobCancelled)
    final = generator.generate(_request(steps=2))
    assert isinstance(final, JobFinished) and final.frames.shape[0] == 9
    assert type(generator._pipe.transformer.blocks) is torch.nn.ModuleList
    assert not generator._pipe.vae.decoder._forward_pre_hooks
