"""Defects 3, 5, 7 and 8: text, numbers, recipes and files are checked at the door, whole, before
any work; each refusal is one line (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .cli import assert_refused_or_done, run_cli

GOOD_LAYOUT = {"schema_version": 1, "aspect": 1.7333,
               "subjects": [{"name": "ball", "keyframes": [{"t": 0, "box": [0.1, 0.4, 0.3, 0.6]}]}]}


def _layout_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "layout.json"
    path.write_text(text, encoding="utf-8")
    return path


def _describe(path, capsys):  # noqa: ANN001
    return run_cli(["layout", "describe", str(path)], capsys)


def test_a_good_layout_is_described(tmp_path, capsys):
    run = _describe(_layout_file(tmp_path, json.dumps(GOOD_LAYOUT)), capsys)
    assert run.code == 0 and "ball" in run.out


@pytest.mark.parametrize("text", [
    json.dumps(GOOD_LAYOUT).replace("0.1, 0.4", "1" + "0" * 400 + ", 0.4"),  # a 401-digit coordinate
    json.dumps(GOOD_LAYOUT).replace('"t": 0', '"t": ' + "9" * 400),
    json.dumps(GOOD_LAYOUT).replace('"aspect": 1.7333', '"aspect": ' + "7" * 400),
    json.dumps(GOOD_LAYOUT).replace('"ball"', '"b\\udcffll"'),  # a lone surrogate in a subject name
    json.dumps(GOOD_LAYOUT).replace('"ball"', '"b\\u0000ll"'),
    "[" * 100_000 + "]" * 100_000,
    json.dumps(GOOD_LAYOUT).replace('"ball"', json.dumps("n" * 5_000_000)).replace("0.1, 0.4", '"x", 0.4'),
], ids=["coordinate", "t", "aspect", "surrogate", "nul", "deep", "long-name"])
def test_bad_layouts_are_one_line(tmp_path, capsys, text):
    run = _describe(_layout_file(tmp_path, text), capsys)
    assert_refused_or_done(run)
    assert run.code == 2


def test_a_huge_layout_file_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "huge.json"
    with open(path, "wb") as fh:
        fh.truncate(600 * 1024 * 1024)  # sparse: 600 MB that take no disk
    run = _describe(path, capsys)
    assert_refused_or_done(run)
    assert run.code == 2 and "at most" in run.err


def test_dev_zero_is_refused(capsys):
    run = _describe("/dev/zero", capsys)
    assert_refused_or_done(run)
    assert run.code == 2 and "not a regular file" in run.err


def test_a_fifo_as_a_layout_does_not_hang(tmp_path):
    fifo = tmp_path / "layout.json"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "shotsketch", "layout", "describe", str(fifo)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


# -- requests and recipes, at the door of generate (before the model loads) --------------------


def _recipe(tmp_path: Path, changes: dict | None = None, request_changes: dict | None = None,
            raw: str | None = None) -> Path:
    recipe = {"schema_version": 1, "model": {"kind": "demo", "id": "demo", "revision": None},
              "request": {"prompt": "a ball", "negative_prompt": "", "width": 64, "height": 64, "frames": 1,
                          "steps": 1, "guidance": 5.0, "seed": 1, "fps": 24}}
    recipe.update(changes or {})
    recipe["request"].update(request_changes or {})
    path = tmp_path / "clip.mp4.json"
    path.write_text(raw if raw is not None else json.dumps(recipe), encoding="utf-8")
    return path


def test_a_good_recipe_reaches_the_work(tmp_path, capsys, no_generation):
    run = run_cli(["generate", "--recipe", str(_recipe(tmp_path)), "--out", str(tmp_path / "a.mp4")], capsys)
    assert run.code == 0 and len(no_generation) == 1


@pytest.mark.parametrize("changes, request_changes, raw", [
    ({"schema_version": True}, None, None),
    ({"schema_version": -5}, None, None),
    ({"model": {"kind": "folder", "id": ""}}, None, None),
    ({"model": {"kind": "folder", "id": "   "}}, None, None),
    (None, {"layout_json": "{not json"}, None),
    (None, {"layout_json": json.dumps({"subjects": 5})}, None),
    (None, {"guidance": int("9" * 400)}, None),
    (None, {"width": int("9" * 400)}, None),
    (None, {"seed": int("9" * 400)}, None),
    (None, {"prompt": "a \udcff ball"}, None),
    (None, {"negative_prompt": "\udcff"}, None),
    (None, None, "[" * 100_000 + "]" * 100_000),
    (None, None, '{"schema_version": 1, "request": ' + "[" * 100_000 + "]" * 100_000 + "}"),
], ids=["version-bool", "version-negative", "empty-model", "blank-model", "layout-not-json", "layout-bad",
        "guidance-huge", "width-huge", "seed-huge", "prompt-surrogate", "negative-surrogate", "deep", "deep-inside"])
def test_bad_recipes_are_refused_before_the_model_loads(tmp_path, capsys, no_generation, changes, request_changes,
                                                        raw):
    path = _recipe(tmp_path, changes, request_changes, raw)
    run = run_cli(["generate", "--recipe", str(path), "--out", str(tmp_path / "a.mp4")], capsys)
    assert_refused_or_done(run)
    assert run.code == 2 and no_generation == []


@pytest.mark.parametrize("argv", [
    ["a \udcff ball"], ["a ball", "--negative", "\udcff"], ["a\x00ball"],
    ["a ball", "--width", "9" * 400], ["a ball", "--guidance", "9" * 400], ["a ball", "--seed", "9" * 400],
    ["a ball", "--fps", "9" * 400], ["a ball", "--frames", "1e999"], ["a ball", "--steps", "-" + "9" * 400],
    ["a ball", "--image", "9" * 400], ["a ball", "--layout", "x" * 300], ["a ball", "--image", "a\x00b"],
    ["a ball", "--image", "ball\ud800"],
], ids=["prompt", "negative", "nul", "width", "guidance", "seed", "fps", "frames", "steps", "long-image",
        "long-layout", "nul-image", "surrogate-image"])
def test_bad_arguments_are_refused_before_the_model_loads(tmp_path, capsys, no_generation, argv):
    run = run_cli(["generate", *argv, "--model", "demo", "--out", str(tmp_path / "a.mp4")], capsys)
    assert_refused_or_done(run)
    assert run.code == 2 and no_generation == []


@pytest.mark.parametrize("option", ["--model", "--out", "--recipe"])
def test_names_too_long_for_a_file_are_refused(tmp_path, capsys, no_generation, option):
    argv = {"--model": "demo", "--out": str(tmp_path / "a.mp4")}
    argv[option] = "1" * 300
    flat = [item for pair in argv.items() for item in pair]
    run = run_cli(["generate", "a ball", *flat], capsys)
    assert_refused_or_done(run)
    assert run.code == 2 and no_generation == []


@pytest.mark.parametrize("name, extra", [("b\\udcffll", []), ("ball", ["--strength", "9" * 400])],
                         ids=["surrogate-name", "huge-strength"])
def test_a_bad_layout_or_strength_is_refused_by_generate(tmp_path, capsys, no_generation, name, extra):
    layout = _layout_file(tmp_path, json.dumps(GOOD_LAYOUT).replace('"ball"', f'"{name}"'))
    run = run_cli(["generate", "a ball", "--layout", str(layout), *extra, "--model", "demo", "--out",
                   str(tmp_path / "a.mp4")], capsys)
    assert_refused_or_done(run)
    assert run.code == 2 and no_generation == []


def test_the_request_check_refuses_bad_text_for_the_window_too():
    from shotsketch.engine.requests import GenerationRequest, RequestError, validate_request

    for request in (GenerationRequest(prompt="a \udcff ball"), GenerationRequest(prompt="a ball", negative_prompt="\udcff"),
                    GenerationRequest(prompt="a ball", layout_json=json.dumps(GOOD_LAYOUT).replace("ball", "b\\udcffll"))):
        with pytest.raises(RequestError):
            validate_request(request, check_image=False)


def test_every_refusal_is_one_short_line(tmp_path, capsys):
    """A refusal echoing a huge value or a message with line breaks still prints one short line."""
    from shotsketch.cli import CliError, main
    from shotsketch.cli import generate

    def refuse(args):  # noqa: ANN001
        raise CliError("first line\nsecond line " + "v" * 5_000_000 + " \udcff")

    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(generate, "run", refuse)
        capsys.readouterr()
        assert main(["generate", "x", "--out", str(tmp_path / "a.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 600 and "second line" in err
