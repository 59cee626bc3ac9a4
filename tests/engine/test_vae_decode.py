"""The fast Wan 2.2 VAE decode computes what diffusers' AutoencoderKLWan.decode computes."""

import pytest
import torch
from diffusers import AutoencoderKLWan

from shotsketch.engine.vae_decode import ConvKind, DecodeOptions, FastDecoder, _subpixel_kernels, rms_silu, supports


def _vae(dim_mult=(1, 2, 4, 4), num_res_blocks=2, seed=0) -> AutoencoderKLWan:
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=8, decoder_base_dim=8, z_dim=48, in_channels=12, out_channels=12, is_residual=True,
        patch_size=2, dim_mult=list(dim_mult), num_res_blocks=num_res_blocks, temperal_downsample=[False, True, True],
        scale_factor_spatial=16, scale_factor_temporal=4, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
    ).eval().requires_grad_(False)
    with torch.no_grad():  # the constructor's gammas are all ones and biases zero: make every weight matter
        for name, p in vae.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
    return vae


@pytest.fixture(scope="module")
def vae() -> AutoencoderKLWan:
    # channel counts change between stages (32 -> 16 -> 8), so shortcut convolutions and the
    # 2-way channel repeat of the DupUp3D shortcut are exercised, as in the real 5B VAE
    return _vae()


@pytest.mark.parametrize("kind", list(ConvKind))
@pytest.mark.parametrize("subpixel", [True, False])
def test_fast_decode_matches_diffusers(vae, kind, subpixel):
    z = torch.randn(1, 48, 4, 3, 5)
    with torch.no_grad():
        ref = vae.decode(z).sample
    out = FastDecoder(vae, DecodeOptions(conv=kind, subpixel_upsample=subpixel)).decode(z)
    assert out.shape == ref.shape == (1, 3, 13, 48, 80)
    assert ref.abs().mean() > 0.05  # not a saturated or empty picture
    assert (out - ref).abs().max() < 1e-4


def test_fast_decode_single_frame_batch_and_reuse(vae):
    dec = FastDecoder(vae)
    z = torch.randn(2, 48, 1, 2, 3)
    with torch.no_grad():
        ref = vae.decode(z).sample
    out = dec.decode(z)
    assert out.shape == ref.shape == (2, 3, 1, 32, 48)
    assert (out - ref).abs().max() < 1e-4
    # a second decode starts from empty caches (a leftover history would change the first frames)
    z2 = torch.randn(1, 48, 3, 2, 3)
    with torch.no_grad():
        ref2 = vae.decode(z2).sample
    assert (dec.decode(z2) - ref2).abs().max() < 1e-4
    # and nothing of a clip stays on the device after its decode (at 720p the remembered frames are GiBs,
    # which the next job's text encoder needs on a 24 GiB card)
    streams = [b.s1 for b in dec.mid_res] + [b.s2 for b in dec.mid_res] + [u.time_stream for u in dec.ups]
    streams += [s for u in dec.ups for r in u.resnets for s in (r.s1, r.s2)]
    assert streams and all(s.hist is None for s in streams)


def test_demo_vae_layout_matches_too():
    vae = _vae(dim_mult=(1, 1, 1, 1), num_res_blocks=1, seed=3)  # the demo model's layout: 8-way repeats
    z = torch.randn(1, 48, 3, 4, 6)
    with torch.no_grad():
        ref = vae.decode(z).sample
    assert (FastDecoder(vae).decode(z) - ref).abs().max() < 1e-4


def test_subpixel_kernels_equal_upsample_then_conv():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 6, 7)
    conv = torch.nn.Conv2d(5, 4, 3, padding=1)
    ref = conv(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest-exact"))
    k = _subpixel_kernels(conv.weight.detach())
    out = torch.empty_like(ref)
    for a in (0, 1):
        for b in (0, 1):
            p = torch.nn.functional.conv2d(x, k[a][b], conv.bias, padding=1)
            out[:, :, a::2, b::2] = p[:, :, a:a + 6, b:b + 7]
    assert (out - ref).abs().max() < 1e-5


def test_rms_silu_matches_the_modules():
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    norm = WanRMS_norm(16, images=False)
    with torch.no_grad():
        norm.gamma.uniform_(0.5, 2.0)
    x = torch.randn(3, 16, 5, 7).contiguous(memory_format=torch.channels_last)
    ref = torch.nn.functional.silu(norm(x.permute(1, 0, 2, 3).unsqueeze(0))).squeeze(0).permute(1, 0, 2, 3)
    out = rms_silu(x, norm.gamma, norm.scale)
    assert (out - ref).abs().max() < 1e-5
    xb = x.to(torch.bfloat16)
    refb = torch.nn.functional.silu(norm.to(torch.bfloat16)(xb.permute(1, 0, 2, 3).unsqueeze(0))).squeeze(0).permute(1, 0, 2, 3)
    assert (rms_silu(xb, norm.gamma, norm.scale).float() - refb.float()).abs().max() < 0.05  # bf16 rounding


def test_supports_only_the_wan22_vae():
    assert supports(_vae())
    wan21 = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1)
    assert not supports(wan21)
    assert not supports(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError):
        FastDecoder(wan21)


def test_generator_decodes_through_the_fast_decoder_with_the_same_frames(make_request):
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.sources import ModelSource
    from shotsketch.engine.speed import SpeedOptions

    stock = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(fast_decode=False))
    fast = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(fast_decode=True))
    a, b = stock.generate(make_request()), fast.generate(make_request())
    assert fast._fast_decoder is not None and stock._fast_decoder is None
    diff = (a.frames.astype(int) - b.frames.astype(int))
    assert abs(diff).max() <= 1 and (diff != 0).mean() < 0.01  # float rounding at most one level, rarely
    assert a.frames.std() > 5  # a real picture, not a constant


def test_out_of_memory_in_the_decode_retries_that_decode_in_tiles(make_request, monkeypatch):
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.sources import ModelSource
    from shotsketch.engine.speed import SpeedOptions

    gen = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(fast_decode=True))
    reference = gen.generate(make_request())
    tiling_seen = []
    real_decode = gen.pipeline.vae.decode

    def spy(*args, **kwargs):
        tiling_seen.append(gen.pipeline.vae.use_tiling)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(FastDecoder, "decode", lambda self, z: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("no room")))
    monkeypatch.setattr(gen.pipeline.vae, "decode", spy)
    final = gen.generate(make_request())
    assert type(final).__name__ == "JobFinished"
    assert tiling_seen == [True]  # the retry asked for tiles...
    assert gen.pipeline.vae.use_tiling is False  # ...and only for that decode
    assert abs(final.frames.astype(int) - reference.frames.astype(int)).max() <= 1
