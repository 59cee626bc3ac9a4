"""Layout guidance on the demo model: adherence, moving subjects, missing subjects, step range."""

import json

import numpy as np
import pytest
import torch

from shotsketch.core.examples import example_shots
from shotsketch.core.layout import Box, Layout, Subject
from shotsketch.engine.events import JobFinished
from shotsketch.engine.guidance import (
    GuidanceSettings, box_coverage, latent_frame_count, latent_frame_times, subject_masks, subject_tokens,
)
from shotsketch.engine.requests import GenerationRequest


def _request(shot, strength, **changes):
    fields = dict(prompt=shot.prompt, negative_prompt=shot.negative_prompt, width=448, height=256, frames=9,
                  steps=4, seed=1, layout_json=shot.layout.to_json(), guidance_strength=strength)
    fields.update(changes)
    return GenerationRequest(**fields)


@pytest.fixture
def guided(demo_generator):
    saved = demo_generator.layout_guidance.settings
    demo_generator.layout_guidance.settings = GuidanceSettings()
    yield demo_generator
    demo_generator.layout_guidance.settings = saved


def test_guidance_lifts_mean_adherence_over_the_example_shots(guided):
    scores = {True: [], False: []}
    for shot in example_shots():
        for on in (True, False):
            final = guided.generate(_request(shot, 1.0 if on else 0.0))
            assert isinstance(final, JobFinished)
            assert final.extras["guidance"]["missing"] == []
            assert final.extras["guidance"]["enabled"] is on
            scores[on] += list(final.extras["adherence"].values())
    guided_mean, plain_mean = np.mean(scores[True]), np.mean(scores[False])
    assert guided_mean >= 0.8, scores
    assert guided_mean >= 1.5 * plain_mean, (guided_mean, plain_mean)


def test_heatmaps_are_distributions_on_the_token_grid_and_follow_a_moving_subject(guided):
    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    final = guided.generate(_request(shot, 1.0, frames=17))
    heat = final.extras["heatmaps"]["yellow ball"]
    assert heat.shape == (5, 256 // 32, 448 // 32)
    assert (heat >= 0).all()
    np.testing.assert_allclose(heat.sum(axis=(1, 2)), 1.0, atol=1e-5)
    ball = shot.layout.subject("yellow ball")
    xs = np.arange(heat.shape[2]) + 0.5
    centres = [(heat[f].sum(axis=0) * xs).sum() / heat.shape[2] for f in range(heat.shape[0])]
    for f, t in enumerate(latent_frame_times(17)):
        box = ball.box_at(t)
        assert box.left - 0.08 <= centres[f] <= box.right + 0.08, (f, centres[f], box)
    assert centres[-1] > centres[0] + 0.2  # it rolls towards the centre, and so does its map
    assert final.recipe["layout_guidance"]["adherence"]["yellow ball"] == final.extras["adherence"]["yellow ball"]


def test_moving_subject_is_scored_against_its_box_at_each_frame(guided):
    """A map that sits where the box *starts* scores well for a static box there, badly for a moving one."""
    from shotsketch.engine.guidance import adherence

    start, end = Box(0.0, 0.3, 0.25, 0.7), Box(0.75, 0.3, 1.0, 0.7)
    moving = Layout(subjects=(Subject.moving("ball", start, end),))
    static = Layout(subjects=(Subject.static("ball", start),))
    m_moving = subject_masks(moving, 17, 256, 448)["ball"]
    m_static = subject_masks(static, 17, 256, 448)["ball"]
    heat = m_static / m_static.sum(axis=(1, 2), keepdims=True)  # attention stuck at the start box
    assert adherence({"ball": heat}, {"ball": m_static})["ball"] > 0.95
    assert adherence({"ball": heat}, {"ball": m_moving})["ball"] < 0.5


def test_subject_missing_from_the_prompt_is_reported(guided):
    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    final = guided.generate(_request(shot, 1.0, prompt="A yellow ball rolls to the center."))
    assert final.extras["guidance"]["missing"] == ["blue cube"]
    assert "blue cube" not in final.extras["adherence"]
    assert final.recipe["layout_guidance"]["missing"] == ["blue cube"]


def test_bias_is_exactly_zero_outside_the_step_range(guided, monkeypatch):
    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    captured = {}

    def run(strength, settings):
        guided.layout_guidance.settings = settings
        latents = []
        previewer = guided._previewer
        original = type(previewer).image
        monkeypatch.setattr(type(previewer), "image", lambda self, lat, frame=None: latents.append(lat.clone()) or original(self, lat, frame))
        final = guided.generate(_request(shot, strength, steps=4))
        monkeypatch.undo()
        captured[strength] = guided.layout_guidance.last_state
        return final, latents

    guided.generate(_request(shot, 0.0, steps=1))  # make sure the previewer exists
    settings = GuidanceSettings(start=0.5, end=1.0, record=False)
    on, on_latents = run(1.0, settings)
    off, off_latents = run(0.0, settings)
    # steps 0 and 1 are outside [2, 4): no bias at all, the same latents as an unguided run
    torch.testing.assert_close(on_latents[0], off_latents[0], rtol=0, atol=0)
    torch.testing.assert_close(on_latents[1], off_latents[1], rtol=0, atol=0)
    assert not torch.equal(on_latents[3], off_latents[3])
    assert on.extras["guidance"]["steps"] == [2, 4]


def test_bias_applies_to_the_conditional_pass_only_and_to_the_chosen_steps(guided):
    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    guided.layout_guidance.settings = GuidanceSettings(start=0.25, end=0.75)
    hook = guided.layout_guidance
    guided.generate(_request(shot, 1.0, steps=4))
    state = hook.last_state
    assert state.step == 3  # four conditional forwards seen, the unconditional ones not counted
    assert list(GuidanceSettings(start=0.25, end=0.75).active_steps(4)) == [1, 2]


def test_bias_log_per_conditional_forward(guided):
    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    guided.layout_guidance.settings = GuidanceSettings(start=0.25, end=0.75)
    from shotsketch.engine import guidance as g

    logs = []
    original = g.GuidanceState.__init__

    def init(self, *a, **k):
        original(self, *a, **k)
        self.log_bias = True
        logs.append(self)

    g.GuidanceState.__init__ = init
    try:
        guided.generate(_request(shot, 1.0, steps=4))
    finally:
        g.GuidanceState.__init__ = original
    entries = logs[-1].bias_log
    assert len(entries) == 4  # conditional pass only: one entry per step
    by_step = {}
    for step, value in entries:
        by_step.setdefault(step, set()).add(value)
    assert by_step[0] == {0.0} and by_step[3] == {0.0}
    assert min(by_step[1]) > 0 and min(by_step[2]) > 0


def test_geometry_follows_the_real_compression():
    assert latent_frame_count(121) == 31 and latent_frame_count(17) == 5
    times = latent_frame_times(17)
    assert times[0] == 0.0 and times[1] == pytest.approx(2.5 / 16) and times[-1] == pytest.approx(14.5 / 16)
    cov = box_coverage(Box(0.0, 0.0, 0.5, 1.0), 4, 8)
    assert cov.shape == (4, 8) and cov[:, :4].min() == 1.0 and cov[:, 4:].max() == 0.0
    tiny = box_coverage(Box(0.51, 0.51, 0.52, 0.52), 4, 8)
    assert tiny.sum() > 0  # a box smaller than a cell still marks its cell
    masks = subject_masks(example_shots()[0].layout, 121, 704, 1280)
    assert next(iter(masks.values())).shape == (31, 22, 40)


def test_subject_tokens_with_the_demo_tokenizer(demo_generator):
    tok = demo_generator.pipeline.tokenizer
    prompt = "A yellow ball rolls left, while a blue cube stays."
    found, missing = subject_tokens(tok, prompt, ["yellow ball", "blue cube", "red car"])
    assert missing == ["red car"]
    enc = tok(prompt, return_offsets_mapping=True)
    words = {name: "".join(prompt[a:b] for a, b in (enc["offset_mapping"][i] for i in idx)).lower()
             for name, idx in found.items()}
    assert words == {"yellow ball": "yellowball", "blue cube": "bluecube"}


def test_subject_tokens_with_a_sentencepiece_style_tokenizer():
    """The real UMT5 tokenizer is a sentencepiece Unigram with a Metaspace pre-tokenizer: build one."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    pieces = ["<pad>", "</s>", "<unk>", "▁A", "▁a", "▁yel", "low", "▁ball", "▁roll", "s", "▁blue", "▁cu", "be",
              "▁the", "▁left", ",", "."] + list("abcdefghijklmnopqrstuvwxyz")
    vocab = [(p, -float(i)) for i, p in enumerate(pieces)]
    tk = Tokenizer(models.Unigram(vocab, unk_id=2))
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    found, missing = subject_tokens(tok, "A yellow ball rolls left, a blue cube.", ["yellow ball", "blue cube"])
    assert missing == []
    ids = tok("A yellow ball rolls left, a blue cube.")["input_ids"]
    assert [tok.convert_ids_to_tokens(ids[i]) for i in found["yellow ball"]] == ["▁yel", "low", "▁ball"]
    assert [tok.convert_ids_to_tokens(ids[i]) for i in found["blue cube"]] == ["▁blue", "▁cu", "be"]


def test_adherence_cli_prints_json_and_writes_heatmaps(tmp_path, capsys):
    from shotsketch.cli import main

    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    layout = tmp_path / "layout.json"
    layout.write_text(shot.layout.to_json())
    npz = tmp_path / "maps.npz"
    code = main(["adherence", str(layout), "--prompt", shot.prompt, "--model", "demo", "--width", "448",
                 "--height", "256", "--frames", "9", "--steps", "3", "--seed", "2", "--heatmaps", str(npz), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["guidance"] is True and set(result["subjects"]) == {"yellow ball", "blue cube"}
    assert result["mean"] == pytest.approx(np.mean(list(result["subjects"].values())), abs=1e-3)
    maps = np.load(npz)
    assert set(maps.files) == {"yellow ball", "blue cube"}
    assert maps["blue cube"].shape == (3, 8, 14)
    code = main(["adherence", str(layout), "--prompt", "A yellow ball.", "--model", "demo", "--width", "448",
                 "--height", "256", "--frames", "5", "--steps", "2", "--no-guidance", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    result = json.loads(out)
    assert result["guidance"] is False and result["missing"] == ["blue cube"]
    assert "'blue cube' is not named in the prompt" in err
