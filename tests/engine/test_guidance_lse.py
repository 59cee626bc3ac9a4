"""The lse guidance path (engine/guidance.py `lse_attention`): the unbiased attention call and its
log-sum-exp, the prompt's row corrected from the subject tokens alone, give what the additive mask
and the second recording call give.

In float32 on the CPU the two paths agree to rounding: the attention itself (random tensors,
subjects sharing a token, pad slots, both rows of a CFG batch, strength 0), whole jobs with the demo
model (latents, heatmaps, adherence), a rank's rows under the sequence split, compiled jobs in a row
(no recompiles), and the fallback to the mask path for more subject tokens than the slots hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from shotsketch.core.examples import example_shots
from shotsketch.core.layout import Box, Layout, Subject
from shotsketch.engine import guidance as g
from shotsketch.engine.events import JobFinished
from shotsketch.engine.guidance import (
    LSE, MASK, GuidanceSettings, GuidanceState, LayoutAttnProcessor, attention_with_lse, bias_columns, build_bias,
    lse_attention, record_shares, subject_masks,
)

TOL = dict(rtol=1e-5, atol=1e-6)
# whole jobs: four steps of 30 blocks each, the correction rounding differently from the masked kernel
JOB_TOL = dict(rtol=1e-4, atol=1e-5)


def _views(*tensors):  # noqa: ANN002, ANN202
    return (t.transpose(1, 2) for t in tensors)


def _lse_state(tokens, masks, strength: float, scale: float = 1.0, slots: int = 8, rows=None):  # noqa: ANN001, ANN202
    state = GuidanceState(GuidanceSettings(strength=strength, path=LSE, lse_slots=slots), 1, tokens, masks, scale,
                          rows=rows)
    state.lse = True
    state.columns = bias_columns(tokens, masks, 0.5)
    return state


# ----------------------------------------------------------------------------- the attention call
def test_attention_with_lse_is_the_attention_and_its_log_sum_exp():
    torch.manual_seed(3)
    q, k, v = torch.randn(2, 9, 3, 16), torch.randn(2, 13, 3, 16), torch.randn(2, 13, 3, 16)
    out, lse = attention_with_lse(q, k, v, 0.25)
    ref = torch.nn.functional.scaled_dot_product_attention(*_views(q, k, v), scale=0.25).transpose(1, 2)
    torch.testing.assert_close(out, ref, **TOL)
    assert lse.shape == (2, 3, 9) and lse.dtype == torch.float32
    torch.testing.assert_close(lse, torch.logsumexp(torch.einsum("bnhd,blhd->bhnl", q, k) * 0.25, -1), **TOL)


@pytest.mark.parametrize("batch", [1, 2])
def test_lse_attention_is_the_masked_attention_and_the_recording(batch, masked_case):
    c = masked_case(batch)
    q, k, v, n, d, slots = c.q, c.k, c.v, c.n, c.d, 8
    state = _lse_state(c.tokens, c.masks, c.strength, slots=slots)
    state.prepare(torch.device("cpu"), torch.float32, c.length, c.heads, d)
    state.update(True)  # step 0 of 1: guided and recorded
    assert state.guiding and state.recording and state.lse_bias is state.lse_c
    # 5 distinct tokens in 8 slots: the pad slots point at token 0 with no bias and no subject
    assert state.lse_index.tolist() == [3, 4, 5, 9, 63, 0, 0, 0]
    assert state.lse_c[:, 5:].abs().max() == 0 and state.lse_ind[5:].abs().max() == 0
    out = lse_attention(q, k, v, state.lse_index, state.lse_ind, state.lse_bias, state.record_sums)
    torch.testing.assert_close(out, c.ref, **TOL)
    assert state.map_sums.shape == (slots, n)
    torch.testing.assert_close(state.map_sums[:3], c.ref_sums[:3], **TOL)
    assert state.map_sums[3:].abs().max() == 0  # the unused slots record nothing
    # the correction moved the output and the shares: skipping it fails here
    plain = torch.nn.functional.scaled_dot_product_attention(*_views(q, k, v)).transpose(1, 2)
    assert not torch.allclose(plain[0], c.ref[0], atol=1e-3)
    unbiased = torch.zeros(d, n)
    record_shares(q, k, None, c.values, unbiased)
    assert not torch.allclose(unbiased[:3], c.ref_sums[:3], atol=1e-3)
    if batch == 2:
        torch.testing.assert_close(out[1], plain[1], **TOL)  # the negative's row untouched
    assert state.bias_peak == pytest.approx(float(c.bias.abs().max()), rel=1e-6)


def test_lse_attention_without_bias_is_the_plain_attention():
    """A recorded-only forward (strength 0, or a step outside the guided window): zero bias."""
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 30, 2, 16), torch.randn(2, 20, 2, 16), torch.randn(2, 20, 2, 16)
    tokens = {"a": [1, 2], "b": [2, 7]}
    masks = {"a": np.ones((1, 5, 6), np.float32), "b": np.zeros((1, 5, 6), np.float32)}
    state = _lse_state(tokens, masks, 4.0, scale=0.0)  # strength 0
    state.prepare(torch.device("cpu"), torch.float32, 20, 2, 16)
    state.update(True)
    assert not state.guiding and state.recording and state.lse_bias is state.lse_c_zero
    out = lse_attention(q, k, v, state.lse_index, state.lse_ind, state.lse_bias, state.record_sums)
    ref = torch.nn.functional.scaled_dot_product_attention(*_views(q, k, v)).transpose(1, 2)
    torch.testing.assert_close(out, ref, **TOL)
    probs = torch.softmax(torch.einsum("nhd,lhd->hnl", q[0], k[0]) / 4.0, -1)
    torch.testing.assert_close(state.map_sums[0], probs[:, :, [1, 2]].sum(-1).mean(0), **TOL)
    torch.testing.assert_close(state.map_sums[1], probs[:, :, [2, 7]].sum(-1).mean(0), **TOL)


# ----------------------------------------------------------------------------- whole jobs
def _shot(shot_id: str):
    return next(s for s in example_shots() if s.id == shot_id)


@pytest.mark.parametrize("strength", [1.0, 0.0], ids=["guided", "strength-0"])
def test_lse_and_mask_paths_give_the_same_job(demo_generator, make_request, monkeypatch, strength, guided_job):
    shot = _shot("red_car_house")  # two subjects
    request = make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=strength,
                           width=192, height=128, frames=9, steps=4)
    mask_job, mask_state = guided_job(demo_generator, request, GuidanceSettings(path=MASK))
    calls = []
    original = g.lse_attention

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(g, "lse_attention", spy)
    monkeypatch.setenv(g.PATH_ENV, LSE)  # the path from the environment, as the app leaves it
    lse_job, lse_state = guided_job(demo_generator, request, GuidanceSettings())
    assert mask_state.path == MASK and lse_state.path == LSE and lse_state.lse and not lse_state.folded
    assert lse_job.extras["guidance"]["path"] == LSE and mask_job.extras["guidance"]["path"] == MASK
    assert calls  # the processor took the lse branch
    torch.testing.assert_close(lse_job.latents, mask_job.latents, **JOB_TOL)
    assert set(lse_job.heatmaps) == set(mask_job.heatmaps) == {"red car", "white house"}
    for name, heat in mask_job.heatmaps.items():
        np.testing.assert_allclose(lse_job.heatmaps[name], heat, **JOB_TOL)
        assert lse_job.adherence[name] == pytest.approx(mask_job.adherence[name], abs=1e-5)
    assert lse_state.map_counts == mask_state.map_counts == 4


def test_more_subject_tokens_than_lse_slots_take_the_mask_path(demo_generator, make_request, guided_job):
    shot = _shot("red_car_house")
    request = make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=1.0, steps=2)
    few, few_state = guided_job(demo_generator, request, GuidanceSettings(path=LSE))
    distinct = {j for idx in few_state.tokens.values() for j in idx}
    assert len(distinct) >= 2
    many, many_state = guided_job(demo_generator, request, GuidanceSettings(path=LSE, lse_slots=len(distinct) - 1))
    assert few_state.path == LSE and many_state.path == MASK and many_state.lse_c is None
    assert many.extras["guidance"]["path"] == MASK
    torch.testing.assert_close(many.latents, few.latents, **JOB_TOL)
    assert many.adherence == pytest.approx(few.adherence, abs=1e-5)


def test_the_path_lse_comes_from_the_settings_or_the_environment(monkeypatch):
    monkeypatch.setenv(g.PATH_ENV, "lse")
    assert GuidanceSettings().resolved_path() == LSE
    monkeypatch.setenv(g.PATH_ENV, "mask")
    assert GuidanceSettings(path=LSE).resolved_path() == LSE


# ----------------------------------------------------------------------------- compiled
def _graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


def _sketch(make_request, shot_id: str, strength: float, seed: int):  # noqa: ANN001, ANN202
    shot = _shot(shot_id)
    return make_request(prompt=f"{shot.prompt} {seed}", layout_json=shot.layout.to_json(), guidance_strength=strength,
                        steps=2, seed=seed)


def test_lse_jobs_in_a_row_compile_once(compiled_generator, make_request, monkeypatch):
    """Dynamo (fullgraph, "eager" backend) over the real blocks: after the warm-up no lse job, guided,
    strength 0, partly guided or unrecorded, nor an unguided one, compiles anything."""
    gen = compiled_generator
    monkeypatch.setenv(g.PATH_ENV, LSE)
    assert gen.warm_up(width=96, height=64, frames=5)
    assert gen.layout_guidance.last_state.path == LSE
    counters.clear()
    jobs = [(_sketch(make_request, "yellow_ball", 1.0, 1), None), (_sketch(make_request, "red_car_house", 0.0, 2), None),
            (make_request(prompt="a plain prompt", steps=2, seed=3), None),
            (_sketch(make_request, "balloon_corner", 1.0, 4), GuidanceSettings(start=0.5)),
            (_sketch(make_request, "red_car_house", 0.5, 5), GuidanceSettings(record=False))]
    for request, settings in jobs:
        gen.layout_guidance.settings = settings or GuidanceSettings()
        final = gen.generate(request)
        assert isinstance(final, JobFinished), getattr(final, "message", final)
        assert final.recipe["speed"]["compiled"]
        if request.layout_json:
            assert gen.layout_guidance.last_state.path == LSE
            assert (settings is not None and not settings.record) or final.extras["heatmaps"]
        assert _graphs() == 0, (request.prompt, dict(counters["stats"]))
