"""A UniPC scheduler whose step never makes the CPU wait for the GPU.

diffusers' `UniPCMultistepScheduler` keeps its sigmas on the CPU but, in each predictor and
corrector update, copies several of them to the latents' device one by one (`.to(device)`) and
solves the tiny order x order system there with `torch.linalg.solve`. Each of those waits for the
GPU to finish everything queued so far, so between two denoising steps the GPU idles while the
CPU works through the rest of the step and launches the next forward (about 7 ms a step at the
preview size on an H100, bench/RESULTS.md). `HostUniPC` computes the same coefficients from the
same float32 values on the CPU and hands them to the tensor updates as plain numbers: the update
is the same sequence of operations on the latents, queued without waiting.

Used in place of `UniPCMultistepScheduler` (same config, same state, same results); any option
this class does not cover (a custom `solver_p`) runs the stock code.
"""

from __future__ import annotations

import torch
from diffusers import UniPCMultistepScheduler


class HostUniPC(UniPCMultistepScheduler):
    def _coefficients(self, t_index: int, s0_index: int, earlier: list[int]) -> dict:
        """Scalars of one UniP/UniC update, computed on the CPU in float32 as the stock code
        computes them on the device: the step from sigma[s0_index] to sigma[t_index], with
        the earlier model outputs at `earlier` (newest first)."""
        sigmas = self.sigmas.to("cpu")
        alpha_t, sigma_t = self._sigma_to_alpha_sigma_t(sigmas[t_index])
        alpha_s0, sigma_s0 = self._sigma_to_alpha_sigma_t(sigmas[s0_index])
        lambda_t = torch.log(alpha_t) - torch.log(sigma_t)
        lambda_s0 = torch.log(alpha_s0) - torch.log(sigma_s0)
        h = lambda_t - lambda_s0
        rks = []
        for si in earlier:
            alpha_si, sigma_si = self._sigma_to_alpha_sigma_t(sigmas[si])
            lambda_si = torch.log(alpha_si) - torch.log(sigma_si)
            rks.append((lambda_si - lambda_s0) / h)
        rk_values = [float(r) for r in rks]
        rks.append(torch.ones(()))
        rks = torch.stack(rks)

        hh = -h if self.predict_x0 else h
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        if self.config.solver_type == "bh1":
            b_h = hh
        elif self.config.solver_type == "bh2":
            b_h = torch.expm1(hh)
        else:
            raise NotImplementedError()
        order = len(earlier) + 1
        R, b = [], []
        factorial_i = 1
        for i in range(1, order + 1):
            R.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * factorial_i / b_h)
            factorial_i *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial_i
        if self.predict_x0:
            scale_x, scale_m0, scale_res = sigma_t / sigma_s0, alpha_t * h_phi_1, alpha_t * b_h
        else:
            scale_x, scale_m0, scale_res = alpha_t / alpha_s0, sigma_t * h_phi_1, sigma_t * b_h
        return {
            "rks": rk_values, "R": torch.stack(R), "b": torch.stack(b),
            "x": float(scale_x), "m0": float(scale_m0), "res": float(scale_res),
        }

    @staticmethod
    def _weights(values: torch.Tensor, dtype: torch.dtype) -> list[float]:
        """The solved weights as the stock code uses them: rounded to the latents' dtype."""
        return [float(v) for v in values.to(dtype)]

    @staticmethod
    def _weighted(weights: list[float], terms: list[torch.Tensor]) -> torch.Tensor | float:
        total: torch.Tensor | float = 0
        for w, term in zip(weights, terms):
            total = w * term if isinstance(total, int) else total + w * term
        return total

    def multistep_uni_p_bh_update(self, model_output: torch.Tensor, *args, sample: torch.Tensor = None,
                                  order: int = None, **kwargs) -> torch.Tensor:
        if args or kwargs or self.solver_p or sample is None or order is None:
            return super().multistep_uni_p_bh_update(model_output, *args, sample=sample, order=order, **kwargs)
        outputs = self.model_outputs
        m0, x = outputs[-1], sample
        k = self.step_index
        c = self._coefficients(k + 1, k, [k - i for i in range(1, order)])
        d1s = [(outputs[-(i + 1)] - m0) / rk for i, rk in enumerate(c["rks"], start=1)]
        if d1s:
            if order == 2:
                rhos = self._weights(torch.ones(1) * 0.5, x.dtype)
            else:
                rhos = self._weights(torch.linalg.solve(c["R"][:-1, :-1], c["b"][:-1]), x.dtype)
            pred_res = self._weighted(rhos, d1s)
        else:
            pred_res = 0
        x_t = c["x"] * x - c["m0"] * m0
        x_t = x_t - c["res"] * pred_res
        return x_t.to(x.dtype)

    def multistep_uni_c_bh_update(self, this_model_output: torch.Tensor, *args, last_sample: torch.Tensor = None,
                                  this_sample: torch.Tensor = None, order: int = None, **kwargs) -> torch.Tensor:
        if args or kwargs or last_sample is None or this_sample is None or order is None:
            return super().multistep_uni_c_bh_update(this_model_output, *args, last_sample=last_sample,
                                                     this_sample=this_sample, order=order, **kwargs)
        outputs = self.model_outputs
        m0, x = outputs[-1], last_sample
        k = self.step_index
        c = self._coefficients(k, k - 1, [k - (i + 1) for i in range(1, order)])
        d1s = [(outputs[-(i + 1)] - m0) / rk for i, rk in enumerate(c["rks"], start=1)]
        if order == 1:
            rhos = self._weights(torch.ones(1) * 0.5, x.dtype)
        else:
            rhos = self._weights(torch.linalg.solve(c["R"], c["b"]), x.dtype)
        corr_res = self._weighted(rhos[:-1], d1s) if d1s else 0
        d1_t = this_model_output - m0
        x_t = c["x"] * x - c["m0"] * m0
        x_t = x_t - c["res"] * (corr_res + rhos[-1] * d1_t)
        return x_t.to(x.dtype)


def host_stepping(scheduler):  # noqa: ANN001, ANN201 - a diffusers scheduler
    """The scheduler to run: a `HostUniPC` with the same config for a stock UniPC, else the same one."""
    if type(scheduler) is UniPCMultistepScheduler:
        return HostUniPC.from_config(scheduler.config)
    return scheduler


# ----------------------------------------------------------------------------- step-distilled models
DMD_TIMESTEPS = (1000, 757, 522)  # FastVideo's FastWan2.2-TI2V-5B (DMD): its model card's 3 steps


class DistilledSteps:
    """The few-step sampling of DMD-distilled checkpoints (FastVideo's FastWan2.2-TI2V-5B): at each of
    its fixed timesteps the model's flow prediction gives the clean latents in one Euler step to
    sigma 0 (x0 = x - sigma * v), which are noised again to the next timestep's sigma with fresh
    noise; the last step returns the clean latents. Sigma is timestep / 1000 (the flow-shifted
    1000-step grid FastVideo looks these timesteps up in has them at that sigma). No classifier-free
    guidance: one forward a step. Stands in for the scheduler the folder ships (a UniPC copied from
    the base model), with the interface WanPipeline's loop uses."""

    order = 1
    init_noise_sigma = 1.0

    def __init__(self, timesteps: tuple[int, ...] = DMD_TIMESTEPS, num_train_timesteps: int = 1000,
                 flow_shift: float = 8.0) -> None:
        from types import SimpleNamespace

        self.config = SimpleNamespace(num_train_timesteps=num_train_timesteps, flow_shift=flow_shift,
                                      timesteps=list(timesteps), kind="dmd")
        self.steps = tuple(int(t) for t in timesteps)
        self.timesteps = torch.tensor(self.steps, dtype=torch.float32)
        self.sigmas = torch.tensor([t / num_train_timesteps for t in self.steps] + [0.0])
        self.generator: torch.Generator | None = None  # the fresh noise between steps (seeded per job)
        self._index = 0

    def set_timesteps(self, num_inference_steps: int | None = None, device: str | torch.device | None = None,
                      **_ignored: object) -> None:
        """Always the distilled timesteps, whatever step count was asked for."""
        self.timesteps = torch.tensor(self.steps, dtype=torch.float32, device=device)
        self._index = 0

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._index = begin_index

    def scale_model_input(self, sample: torch.Tensor, *_args: object, **_kwargs: object) -> torch.Tensor:
        return sample

    def step(self, model_output: torch.Tensor, timestep: object, sample: torch.Tensor,
             return_dict: bool = False, **_ignored: object) -> tuple[torch.Tensor]:
        i = self._index
        sigma, nxt = float(self.sigmas[i]), float(self.sigmas[i + 1])
        clean = sample.float() - sigma * model_output.float()
        if nxt > 0:
            noise = torch.randn(sample.shape, generator=self.generator, dtype=torch.float32).to(sample.device)
            clean = (1.0 - nxt) * clean + nxt * noise
        self._index += 1
        return (clean.to(sample.dtype),)
