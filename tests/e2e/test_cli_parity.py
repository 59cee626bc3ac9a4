"""The CLI and the window's model make the same clip from the same shot (issue 13, defects 2, 7, 9).

The window's side goes through the application layer the window uses (AppSession: the open
shot's model, the library's queue, the take service); the CLI's through ``main(argv)``."""

import json

import numpy as np
import pytest

from shotsketch.cli import main
from shotsketch.core.examples import example_shot
from shotsketch.core.lint import DEFAULT_NEGATIVE
from shotsketch.core.phrasing import describe
from shotsketch.media.encode import read_frames

PROMPT = "A yellow ball and a blue cube on a wooden table"  # says nothing of where they are
SIZE = ["--width", "96", "--height", "64", "--frames", "5", "--steps", "2"]


@pytest.fixture(scope="module")
def demo_engine():
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.sources import ModelSource

    gen = Generator(ModelSource.parse("demo"), device="cpu")
    gen.load()
    return gen


def _layout_file(tmp_path):
    path = tmp_path / "layout.json"
    path.write_text(example_shot("yellow_ball").layout.to_json())
    return path


def _comparable(recipe):
    out = {k: v for k, v in recipe.items() if k not in ("created_at", "output")}
    out["output"] = {k: v for k, v in recipe["output"].items() if k != "file"}
    return out


def _cli_clip(tmp_path, capsys, *options):  # noqa: ANN001, ANN202
    """`shotsketch generate` of PROMPT on the demo model at SIZE, seed 7, on the CPU: its file and recipe."""
    out = tmp_path / "cli.mp4"
    code = main(["generate", PROMPT, "--model", "demo", "--seed", "7", *SIZE, "--device", "cpu", *options,
                 "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    return out, json.loads((tmp_path / "cli.mp4.json").read_text())


def test_the_cli_and_the_window_model_make_the_same_clip(tmp_path, capsys, demo_engine):
    from shotsketch.app.jobs import run_queued
    from shotsketch.app.session import AppSession
    from shotsketch.core.layout import load_layout
    from shotsketch.core.library import Library

    layout_file = _layout_file(tmp_path)
    out, cli_recipe = _cli_clip(tmp_path, capsys, "--layout", str(layout_file))

    with Library.open(tmp_path / "library.sqlite3") as library:
        session = AppSession(library, call_later=lambda delay, fn: None)
        session.new_project("Parity")
        session.shot.set_prompt(PROMPT)  # the negative prompt left empty, as a new shot has it
        session.shot.set_layout(load_layout(layout_file))
        session.shot.update_settings(width=96, height=64, frames=5, steps=2, seed=7)
        [job] = session.generate(1)
        [ended] = run_queued(session.queue, demo_engine)
        take = ended.take

    assert job.request.to_dict() == cli_recipe["request"]
    request = cli_recipe["request"]
    layout = example_shot("yellow_ball").layout
    assert request["prompt"] == f"{PROMPT}. {describe(layout)}"  # defect 2: the sketch's clause is added
    assert request["prompt_as_written"] == PROMPT
    assert request["negative_prompt"] == DEFAULT_NEGATIVE  # defect 2: the window's default negative prompt
    assert _comparable(take.recipe) == _comparable(cli_recipe)
    assert np.array_equal(read_frames(out), read_frames(take.file))


def test_the_cli_uses_the_windows_negative_prompt_and_sketch_clause(tmp_path, capsys):
    """Defect 2: the CLI's default negative prompt was empty and --layout added no clause."""
    out = tmp_path / "clip.mp4"
    code = main(["generate", PROMPT, "--model", "demo", "--layout", str(_layout_file(tmp_path)), *SIZE,
                 "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    request = json.loads((tmp_path / "clip.mp4.json").read_text())["request"]
    assert request["negative_prompt"] == DEFAULT_NEGATIVE
    assert request["prompt"] == f"{PROMPT}. {describe(example_shot('yellow_ball').layout)}"


def test_generate_reports_each_step_and_the_file_written_when_not_on_a_terminal(tmp_path, capsys):
    """Defect 9: with its output not a terminal, generate printed nothing."""
    out = tmp_path / "clip.mp4"
    code = main(["generate", "a red car", "--model", "demo", *SIZE, "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "step 1/2" in stderr and "step 2/2" in stderr
    assert stdout.strip().splitlines()[-1].startswith(f"wrote {out}")


def test_a_replay_with_another_sketch_does_not_add_the_clause_twice(tmp_path, capsys):
    from shotsketch.core.layout import Box, Layout, Subject
    from shotsketch.core.prompting import compose_prompt

    first = tmp_path / "first.mp4"
    assert main(["generate", PROMPT, "--model", "demo", "--layout", str(_layout_file(tmp_path)), *SIZE,
                 "--out", str(first)]) == 0
    other = Layout(subjects=(Subject.moving("yellow ball", Box(0.7, 0.4, 0.9, 0.6), Box(0.1, 0.4, 0.3, 0.6)),))
    other_file = tmp_path / "other.json"
    other_file.write_text(other.to_json())
    replay = tmp_path / "replay.mp4"
    code = main(["generate", "--recipe", str(tmp_path / "first.mp4.json"), "--layout", str(other_file),
                 "--out", str(replay)])
    _, err = capsys.readouterr()
    assert code == 0, err
    request = json.loads((tmp_path / "replay.mp4.json").read_text())["request"]
    assert request["prompt"] == compose_prompt(PROMPT, describe(other))
    assert request["prompt_as_written"] == PROMPT


def test_a_seed_keeps_its_64_bits():
    """Defect 7: seeds above 2^31-1 (and 2^63-1) from a recipe were cut or refused."""
    from shotsketch.engine.requests import GenerationRequest, RequestError, validate_request

    big = 2**64 - 1
    assert validate_request(GenerationRequest(prompt="a", seed=big)).seed == big
    with pytest.raises(RequestError, match="seed must be between 0 and 18446744073709551615"):
        validate_request(GenerationRequest(prompt="a", seed=2**64))


def test_an_old_recipes_strength_outside_the_range_is_clamped_and_said(tmp_path, capsys, caplog):
    """Defect 5: a strength stored outside the one range (older versions allowed 0..10) is clamped
    with a log line, and the replay says the clip will differ."""
    from shotsketch.cli import build_parser
    from shotsketch.cli.generate import build_request
    from shotsketch.engine.requests import GenerationRequest

    layout = example_shot("yellow_ball").layout.to_json(indent=None)
    recipe = {"schema_version": 1, "request": GenerationRequest(prompt=PROMPT, layout_json=layout,
                                                                guidance_strength=5.0).to_dict()}
    args = build_parser().parse_args(["generate", "--recipe", "old.json", "--out", str(tmp_path / "x.mp4")])
    with caplog.at_level("WARNING"):
        request = build_request(args, recipe)
    assert request.guidance_strength == 3.0
    assert "layout guidance strength 5.0 is outside" in caplog.text
    assert "using 3 (the clip will differ" in capsys.readouterr().err
    assert request.prompt == PROMPT and request.layout_json == layout  # the rest replays as it was


def test_the_cli_and_the_window_model_make_the_same_clip_with_loras(tmp_path, capsys, demo_engine):
    """Two LoRA files (real key layout, safetensors), one at half strength: the same request, recipe
    and frames from `--lora` and from the open shot's LoRA list."""
    import torch
    from safetensors.torch import save_file

    from shotsketch.app.jobs import run_queued
    from shotsketch.app.session import AppSession
    from shotsketch.core.library import Library

    loras = []
    for name, seed in (("a", 1), ("b", 2)):
        gen = torch.Generator().manual_seed(seed)
        layer = demo_engine.pipeline.transformer.blocks[0].attn1.to_q
        path = tmp_path / f"{name}.safetensors"
        save_file({"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(4, layer.in_features, generator=gen),
                   "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.randn(layer.out_features, 4, generator=gen),
                   "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(4.0)}, str(path))
        loras.append(str(path))
    out, cli_recipe = _cli_clip(tmp_path, capsys, "--lora", loras[0], "--lora", f"{loras[1]}:0.5")
    with Library.open(tmp_path / "library.sqlite3") as library:
        session = AppSession(library, call_later=lambda delay, fn: None)
        session.new_project("Parity")
        session.shot.set_prompt(PROMPT)
        session.shot.update_settings(width=96, height=64, frames=5, steps=2, seed=7)
        session.shot.set_loras([(loras[0], 1.0), (loras[1], 0.5)])
        [job] = session.generate(1)
        [ended] = run_queued(session.queue, demo_engine)
        take = ended.take
    assert job.request.to_dict() == cli_recipe["request"]
    assert cli_recipe["request"]["loras"] == [{"path": loras[0], "strength": 1.0}, {"path": loras[1], "strength": 0.5}]
    assert _comparable(take.recipe) == _comparable(cli_recipe)
    assert np.array_equal(read_frames(out), read_frames(take.file))
