"""HostUniPC: the same denoising trajectory as diffusers' UniPC, with coefficients from the CPU."""

from __future__ import annotations

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from shotsketch.engine.schedulers import HostUniPC, host_stepping

WAN = dict(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=5.0)


def _run(scheduler, steps: int, device: str = "cpu", dtype=torch.float32) -> torch.Tensor:  # noqa: ANN001
    scheduler.set_timesteps(steps, device=device)
    gen = torch.Generator("cpu").manual_seed(3)
    sample = torch.randn(1, 4, 3, 6, 5, generator=gen).to(device, dtype)
    target = torch.randn(1, 4, 3, 6, 5, generator=gen).to(device, dtype)
    weight = torch.randn(4, 4, generator=gen).to(device, dtype) * 0.3
    flow = scheduler.config.prediction_type == "flow_prediction"
    for i, t in enumerate(scheduler.timesteps):
        # a denoiser that heads for `target`, with an error that depends on the sample
        alpha, sigma = (float(v) for v in scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[i]))
        wobble = 0.1 * torch.tanh(torch.einsum("ij,bjfhw->bifhw", weight, sample))
        output = (sample - (1.0 if flow else alpha) * target) / sigma + wobble
        sample = scheduler.step(output.to(dtype), t, sample, return_dict=False)[0]
    return sample


@pytest.mark.parametrize(
    "config",
    [
        dict(WAN),  # the TI2V-5B's scheduler
        dict(WAN, solver_order=3),  # a 2x2 solve in the predictor, 3x3 in the corrector
        dict(WAN, solver_order=1),  # the simplified first-order weights
        dict(WAN, flow_shift=1.0, solver_order=3),
        dict(WAN, disable_corrector=[0, 1, 2]),
    ],
    ids=["wan", "order3", "order1", "shift1-order3", "no-corrector"],
)
@pytest.mark.parametrize("steps", [25, 4])
def test_host_unipc_follows_the_stock_trajectory(config: dict, steps: int) -> None:
    stock = _run(UniPCMultistepScheduler(**config), steps)
    ours = _run(HostUniPC(**config), steps)
    scale = stock.abs().max().item()
    assert torch.isfinite(ours).all()
    # same float32 inputs, same operations: equal up to the last bit or two of the coefficients
    assert (ours - stock).abs().max().item() <= 1e-6 * scale


def test_host_unipc_keeps_bfloat16_latents_in_their_dtype() -> None:
    stock = _run(UniPCMultistepScheduler(**WAN), 8, dtype=torch.bfloat16)
    ours = _run(HostUniPC(**WAN), 8, dtype=torch.bfloat16)
    assert ours.dtype == torch.bfloat16
    error = (ours.float() - stock.float()).norm() / stock.float().norm()
    assert error.item() <= 1e-2  # bf16 rounding of the same operations


def test_host_unipc_never_reads_a_value_from_the_latents_device() -> None:
    # tensors on the meta device have shapes but no values: any coefficient computed there and
    # then read back (what makes the stock step wait for the GPU) raises
    scheduler = HostUniPC(**WAN, solver_order=3)
    scheduler.set_timesteps(6)
    sample = torch.empty(1, 4, 3, 6, 5, device="meta")
    for t in scheduler.timesteps:
        sample = scheduler.step(torch.empty_like(sample), t, sample, return_dict=False)[0]
    assert sample.device.type == "meta" and sample.shape == (1, 4, 3, 6, 5)


def test_host_stepping_swaps_only_a_stock_unipc() -> None:
    unipc = UniPCMultistepScheduler(**WAN)
    swapped = host_stepping(unipc)
    assert isinstance(swapped, HostUniPC)
    assert dict(swapped.config) == dict(unipc.config)
    euler = FlowMatchEulerDiscreteScheduler()
    assert host_stepping(euler) is euler
