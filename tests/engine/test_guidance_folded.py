"""The folded guidance path (engine/guidance.py `folded_attention`): the layout bias and the recording
in one maskless attention call give what the additive mask and the second recording call give.

In float32 on the CPU the two paths agree to rounding: the attention itself (random tensors,
subjects sharing a token, both rows of a CFG batch), whole jobs with the demo model (latents,
heatmaps, adherence; guided, strength 0, a guided-steps window), a rank's rows under the sequence
split, and the fallback to the mask path for more subjects than the folded dims hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shotsketch.core.examples import example_shots
from shotsketch.core.layout import Box, Layout, Subject
from shotsketch.engine import guidance as g
from shotsketch.engine.guidance import (
    FOLDED, LSE, MASK, GuidanceSettings, GuidanceState, LayoutAttnProcessor, bias_columns, build_bias, folded_attention,
    record_shares, subject_masks,
)

TOL = dict(rtol=1e-5, atol=1e-6)


def _sdpa_masks(monkeypatch) -> list:  # noqa: ANN001
    """Spy on PyTorch's attention: the attn_mask of every call (None for a maskless one)."""
    seen: list = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(kwargs.get("attn_mask", args[3] if len(args) > 3 else None))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return seen


# ----------------------------------------------------------------------------- the attention call
@pytest.mark.parametrize("batch", [1, 2])
def test_folded_attention_is_the_masked_attention_and_the_recording(batch, masked_case):
    c = masked_case(batch)
    q, k, v, n, heads, d, slots = c.q, c.k, c.v, c.n, c.heads, c.d, 8
    state = GuidanceState(GuidanceSettings(strength=c.strength, path=FOLDED, fold_slots=slots), 1, c.tokens, c.masks, 1.0)
    state.folded = True
    state.columns = bias_columns(c.tokens, c.masks, 0.5)
    state.prepare(torch.device("cpu"), torch.float32, c.length, heads, d)
    state.update(True)  # step 0 of 1: guided and recorded
    assert state.guiding and state.recording and state.q_extra is state.fold_q
    out = folded_attention(q, k, v, state.q_extra, state.fold_k, state.fold_v, state.record_sums)
    torch.testing.assert_close(out, c.ref, **TOL)
    assert state.map_sums.shape == (slots, n)
    torch.testing.assert_close(state.map_sums[:3], c.ref_sums[:3], **TOL)
    assert state.map_sums[3:].abs().max() == 0  # the unused folded dims record nothing
    # the biased logits moved the shares: a bias that does not reach the logits fails here
    plain = torch.zeros(d, n)
    record_shares(q, k, None, c.values, plain)
    assert not torch.allclose(plain[:3], c.ref_sums[:3], atol=1e-3)
    assert state.bias_peak == pytest.approx(float(c.bias.abs().max()), rel=1e-6)


def test_the_negative_row_in_a_plain_call_gives_the_same_output_and_recording(masked_case, monkeypatch):
    """`fold_negative_plain`: only the prompt's row is widened, the negative's row is a plain call of
    the real head size; the output and the recorded shares are those of the masked reference."""
    c = masked_case(2)
    slots = 8
    state = GuidanceState(GuidanceSettings(strength=c.strength, path=FOLDED, fold_slots=slots, fold_negative_plain=True),
                          1, c.tokens, c.masks, 1.0)
    state.folded, state.columns = True, bias_columns(c.tokens, c.masks, 0.5)
    state.prepare(torch.device("cpu"), torch.float32, c.length, c.heads, c.d)
    state.update(True)
    shapes: list = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        q = kwargs.get("query", args[0] if args else None)
        shapes.append((q.shape[0], q.shape[-1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    out = folded_attention(c.q, c.k, c.v, state.q_extra, state.fold_k, state.fold_v, state.record_sums,
                           negative_plain=state.settings.fold_negative_plain)
    torch.testing.assert_close(out, c.ref, **TOL)
    torch.testing.assert_close(state.map_sums[:3], c.ref_sums[:3], **TOL)
    assert sorted(shapes) == [(1, c.d), (1, c.d + slots)]  # a widened call of the prompt's row, a plain one of the negative's


def test_folded_attention_without_bias_is_the_plain_attention():
    """A recorded-only forward (strength 0, or a step outside the guided window): zero extra query dims."""
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 30, 2, 16), torch.randn(2, 20, 2, 16), torch.randn(2, 20, 2, 16)
    tokens = {"a": [1, 2]}
    masks = {"a": np.ones((1, 5, 6), np.float32)}
    state = GuidanceState(GuidanceSettings(path=FOLDED), 1, tokens, masks, 0.0)  # strength 0
    state.folded, state.columns = True, bias_columns(tokens, masks, 0.5)
    state.prepare(torch.device("cpu"), torch.float32, 20, 2, 16)
    state.update(True)
    assert not state.guiding and state.recording and state.q_extra is state.fold_q_zero
    out = folded_attention(q, k, v, state.q_extra, state.fold_k, state.fold_v, state.record_sums)
    ref = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(1, 2)
    torch.testing.assert_close(out, ref, **TOL)
    probs = torch.softmax(torch.einsum("nhd,lhd->hnl", q[0], k[0]) / 4.0, -1)
    torch.testing.assert_close(state.map_sums[0], probs[:, :, [1, 2]].sum(-1).mean(0), **TOL)


# ----------------------------------------------------------------------------- whole jobs
def _shot(shot_id: str):
    return next(s for s in example_shots() if s.id == shot_id)


@pytest.mark.parametrize("strength,window", [(1.0, (0.0, 1.0)), (0.0, (0.0, 1.0)), (1.0, (0.25, 0.75))],
                         ids=["guided", "strength-0", "guided-window"])
def test_folded_and_mask_paths_give_the_same_job(demo_generator, make_request, monkeypatch, strength, window, guided_job):
    shot = _shot("red_car_house")  # two subjects
    request = make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=strength,
                           width=192, height=128, frames=9, steps=4)
    start, end = window
    masks = _sdpa_masks(monkeypatch)
    mask_job, mask_state = guided_job(demo_generator, request, GuidanceSettings(start=start, end=end, path=MASK))
    masked_calls = sum(m is not None for m in masks)
    masks.clear()
    fold_job, fold_state = guided_job(demo_generator, request, GuidanceSettings(start=start, end=end, path=FOLDED))
    assert not mask_state.folded and masked_calls > 0
    assert fold_state.folded and masks and all(m is None for m in masks)  # no masked attention at all
    torch.testing.assert_close(fold_job.latents, mask_job.latents, **TOL)
    assert set(fold_job.heatmaps) == set(mask_job.heatmaps) == {"red car", "white house"}
    for name, heat in mask_job.heatmaps.items():
        np.testing.assert_allclose(fold_job.heatmaps[name], heat, rtol=1e-5, atol=1e-6)
        assert fold_job.adherence[name] == pytest.approx(mask_job.adherence[name], abs=1e-6)
    assert fold_state.map_counts == mask_state.map_counts == 4
    assert [s for s, b in fold_state.bias_log] == [s for s, b in mask_state.bias_log]


@pytest.mark.parametrize("path", [FOLDED, LSE])
def test_the_bias_steers_like_the_mask_bias(demo_generator, make_request, guided_job, path):
    """Guidance on and off differ on the folded and lse paths as much as on the mask path (a bias
    that never reaches the logits, or a correction never applied, would give the unguided adherence)."""
    shot = _shot("yellow_ball")
    on, off = (make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=s,
                            width=192, height=128, frames=9, steps=4) for s in (1.0, 0.0))
    settings = GuidanceSettings(path=path)
    guided, _ = guided_job(demo_generator, on, settings)
    plain, _ = guided_job(demo_generator, off, settings)
    assert np.mean(list(guided.adherence.values())) > np.mean(list(plain.adherence.values())) + 0.2


def test_more_subjects_than_folded_dims_take_the_mask_path(demo_generator, make_request, guided_job):
    shot = _shot("red_car_house")
    request = make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=1.0, steps=2)
    few, few_state = guided_job(demo_generator, request, GuidanceSettings(path=FOLDED, fold_slots=8))
    many, many_state = guided_job(demo_generator, request, GuidanceSettings(path=FOLDED, fold_slots=1))
    assert few_state.folded and not many_state.folded
    torch.testing.assert_close(many.latents, few.latents, **TOL)
    assert many.adherence == pytest.approx(few.adherence, abs=1e-6)


def test_the_path_comes_from_the_settings_then_the_environment(monkeypatch):
    monkeypatch.delenv(g.PATH_ENV, raising=False)
    assert GuidanceSettings().resolved_path() == FOLDED  # the faster on a GPU (bench/RESULTS.md session 7)
    monkeypatch.setenv(g.PATH_ENV, "mask")
    assert GuidanceSettings().resolved_path() == MASK
    assert GuidanceSettings(path=FOLDED).resolved_path() == FOLDED
    monkeypatch.setenv(g.PATH_ENV, "bogus")
    assert GuidanceSettings().resolved_path() == FOLDED


# ----------------------------------------------------------------------------- sequence split
def test_a_ranks_rows_give_that_slice_of_the_whole(demo_generator):
    """Under the sequence split each rank's cross-attention sees its own video tokens (state.rows):
    the processor on a slice of the rows gives that slice of the whole, on every path, and every
    path's whole is the mask path's (a text token shared by two subjects included)."""
    attn = demo_generator.pipeline.transformer.blocks[0].attn2
    frames, height, width = 9, 128, 192
    layout = Layout(subjects=(Subject.static("ball", Box(0.1, 0.2, 0.5, 0.8)), Subject.static("cube", Box(0.5, 0.1, 0.9, 0.6))))
    masks = subject_masks(layout, frames, height, width)
    n = next(iter(masks.values())).size
    tokens = {"ball": [2, 3], "cube": [3, 6, 7]}
    torch.manual_seed(2)
    hidden = torch.randn(2, n, attn.inner_dim)
    text = torch.randn(2, 24, attn.inner_dim)
    dim = attn.inner_dim // attn.heads

    def run(path: str, rows):  # noqa: ANN001, ANN202
        state = GuidanceState(GuidanceSettings(path=path), 1, tokens, masks, 1.0, rows=rows)
        state.folded, state.lse = path == FOLDED, path == LSE
        state.columns = bias_columns(tokens, masks, 0.5)
        state.bias_base = build_bias(tokens, masks, 0.5, 512)
        state.prepare(torch.device("cpu"), torch.float32, text.shape[1], attn.heads, dim)
        state.update(True)
        lo, hi = rows or (0, n)
        with torch.inference_mode():
            out = LayoutAttnProcessor(state)(attn, hidden[:, lo:hi], text)
        return out, state.map_sums[:2]

    rows = (n // 3 + 5, n // 3 + 22)  # not on a frame boundary: a slice from the wrong rows differs
    whole, whole_sums = run(MASK, None)
    assert whole_sums.sum() > 0
    for path in (FOLDED, LSE):
        path_whole, path_sums = run(path, None)
        torch.testing.assert_close(path_whole, whole, **TOL)
        torch.testing.assert_close(path_sums, whole_sums, **TOL)
    for path in (MASK, FOLDED, LSE):
        part, part_sums = run(path, rows)
        torch.testing.assert_close(part, whole[:, rows[0]:rows[1]], **TOL)
        torch.testing.assert_close(part_sums, whole_sums[:, rows[0]:rows[1]], **TOL)
    folded_whole, folded_sums = run(FOLDED, None)
    torch.testing.assert_close(folded_whole, whole, **TOL)
    torch.testing.assert_close(folded_sums, whole_sums, **TOL)
    assert math.isfinite(float(whole_sums.sum())) and whole_sums.sum() > 0


def test_a_cross_attention_kernel_takes_the_folded_call_and_gives_the_same_job(demo_generator, make_request, guided_job):
    """With SHOTSKETCH_ATTENTION=cudnn the blocks' cross-attention (guided on the folded path too) goes
    through the opaque attention op (engine/attention.py); the job is the one diffusers' dispatch gives."""
    from shotsketch.engine import attention

    shot = _shot("red_car_house")
    request = make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=1.0,
                           width=192, height=128, frames=9, steps=3)
    plain, _ = guided_job(demo_generator, request, GuidanceSettings(path=FOLDED))
    scales = []

    def kernel(q, k, v, scale=None):  # noqa: ANN001, ANN202
        scales.append(scale)
        return attention.cudnn_bshd(q, k, v, scale)

    transformer = demo_generator.pipeline.transformer
    assert attention.set_cross_kernel(transformer, kernel) == len(transformer.blocks)
    try:
        through, state = guided_job(demo_generator, request, GuidanceSettings(path=FOLDED))
    finally:
        attention.set_cross_kernel(transformer, None)
    head_dim = transformer.config.attention_head_dim
    assert state.folded and pytest.approx(head_dim ** -0.5) in scales  # the folded call, at the real head size's scale
    torch.testing.assert_close(through.latents, plain.latents, **TOL)
    for name, heat in plain.heatmaps.items():
        np.testing.assert_allclose(through.heatmaps[name], heat, rtol=1e-5, atol=1e-6)
