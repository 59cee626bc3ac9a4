"""shotsketch generate and step-distilled models: --distilled / --no-distilled, else a replayed
recipe's DMD schedule, else the choice made in the window's Settings for that model."""

import json

import pytest

from shotsketch.app.model_options import ModelOptions, load_model_options, model_key, save_model_options
from shotsketch.cli import build_parser, main
from shotsketch.cli.generate import distilled_choice

SIZE = ["--width", "96", "--height", "64", "--frames", "5", "--steps", "2"]


def _args(*extra):
    return build_parser().parse_args(["generate", "a red car", "--out", "x.mp4", *extra])


def test_the_flag_then_the_recipe_then_the_settings_choice(tmp_path):
    folder = str(tmp_path / "fastwan")
    assert distilled_choice(_args(), folder) is None  # as the folder says
    save_model_options(ModelOptions().with_distilled(folder, True))
    assert distilled_choice(_args(), folder) is True
    assert distilled_choice(_args(), str(tmp_path / "other")) is None  # the choice is that model's only
    assert distilled_choice(_args("--no-distilled"), folder) is False
    save_model_options(ModelOptions())
    dmd = {"schedule": {"kind": "distilled (DMD)", "timesteps": [1000, 757, 522], "steps": 3}}
    assert distilled_choice(_args(), folder, dmd) is True
    assert distilled_choice(_args(), folder, {"schedule": {"timesteps": [1000, 500]}}) is None  # the folder's own


def test_the_settings_choice_makes_the_cli_run_the_models_own_steps(tmp_path, capsys):
    save_model_options(ModelOptions().with_distilled("demo", True))
    out = tmp_path / "clip.mp4"
    assert main(["generate", "a red car drives left", "--model", "demo", *SIZE, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Distilled model: 3 steps (DMD 1000 / 757 / 522), no CFG: --steps and --guidance are not used" in err
    recipe = json.loads((tmp_path / "clip.mp4.json").read_text())
    assert recipe["schedule"]["timesteps"] == [1000, 757, 522] and recipe["request"]["steps"] == 3


def test_model_options_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = ModelOptions().with_distilled("fastwan", True).with_distilled("hf:org/name", False)
    save_model_options(options)
    assert load_model_options() == options
    assert load_model_options().distilled_for(str(tmp_path / "fastwan")) is True  # a folder by its full path
    assert model_key("hf:org/name") == "hf:org/name" and model_key("demo") == "demo"
    assert options.with_distilled("fastwan", None).distilled_for("fastwan") is None
    from shotsketch.app.model_options import options_path

    options_path().write_text("{not json")
    assert load_model_options() == ModelOptions()  # a damaged file is kept aside, the choices start empty
    assert options_path().with_name("model_options.json.damaged").read_text() == "{not json"


def test_a_distilled_choice_with_several_gpus_renders_on_one(tmp_path, monkeypatch, capsys):
    """The GPU workers take the model as its folder says; a choice made by flag or in Settings is kept
    by rendering in this process, and said."""
    from shotsketch.engine import parallel_client

    monkeypatch.setattr(parallel_client, "GpuWorkers", lambda *a, **k: pytest.fail("the GPU workers were built"))
    monkeypatch.setattr(parallel_client, "gpu_count_problem", lambda *a: None)
    out = tmp_path / "clip.mp4"
    assert main(["generate", "a red car", "--model", "demo", *SIZE, "--gpus", "2", "--device", "cpu", "--distilled",
                 "--out", str(out)]) == 0
    assert "rendering on one GPU, not 2" in capsys.readouterr().err
    assert json.loads((tmp_path / "clip.mp4.json").read_text())["schedule"]["steps"] == 3
