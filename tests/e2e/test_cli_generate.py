"""`shotsketch generate` and `doctor` end to end, including every bad input of the issue."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from shotsketch.cli import main
from shotsketch.media.encode import read_frames


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_generate_writes_clip_and_recipe_and_replay_is_identical(tmp_path, capsys):
    out = tmp_path / "ball.mp4"
    code, _, err = _run(capsys, "generate", "A yellow ball rolls from the left edge to the center", "--model", "demo",
                        "--width", "448", "--height", "256", "--frames", "17", "--steps", "3", "--seed", "42",
                        "--negative", "blurry", "--out", str(out))
    assert code == 0, err
    frames = read_frames(out)
    assert frames.shape == (17, 256, 448, 3)
    recipe = json.loads((tmp_path / "ball.mp4.json").read_text())
    req = recipe["request"]
    assert (req["width"], req["height"], req["frames"], req["steps"], req["seed"]) == (448, 256, 17, 3, 42)
    assert req["negative_prompt"] == "blurry" and req["guidance"] == 5.0
    assert recipe["model"]["id"] == "demo" and recipe["model"]["revision"]
    assert recipe["app_version"] and recipe["libraries"]["diffusers"]
    assert recipe["output"]["frames"] == 17 and recipe["output"]["fps"] == 24

    replay = tmp_path / "replay.mp4"
    code, _, err = _run(capsys, "generate", "--recipe", str(tmp_path / "ball.mp4.json"), "--out", str(replay))
    assert code == 0, err
    assert np.array_equal(read_frames(replay), frames)
    assert json.loads((tmp_path / "replay.mp4.json").read_text())["request"] == req


BAD_INPUTS = [
    (["--width", "450"], "nearest valid width is 448"),
    (["--height", "-32"], "height must be positive"),
    (["--height", "250"], "nearest valid height is 256"),
    (["--frames", "16"], "4k+1"),
    (["--steps", "ten"], "--steps must be a whole number"),
    (["--steps", "0"], "steps must be between 1 and 200"),
    (["--guidance", "lots"], "--guidance must be a number"),
    (["--guidance", "50"], "guidance must be between 1 and 20"),
    (["--seed", "1.5"], "--seed must be a whole number"),
    (["--model", "/no/such/model"], "does not exist"),
    (["--format", "avi"], "--format 'avi' is not known"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("extra, message", BAD_INPUTS)
def test_bad_input_is_one_line_nonzero_and_no_file(tmp_path, capsys, extra, message):
    out = tmp_path / "x.mp4"
    code, stdout, err = _run(capsys, "generate", "a red car", "--model", "demo", "--out", str(out), *extra)
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _files(tmp_path) == []


def test_unreadable_image_and_unwritable_output(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "frame.png"
    bad.write_text("not a png")
    code, _, err = _run(capsys, "generate", "a", "--model", "demo", "--image", str(bad), "--out", str(tmp_path / "o.mp4"))
    assert code != 0 and "could not be read as an image" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "generate", "a", "--model", "demo", "--out", str(tmp_path / "missing" / "o.mp4"))
    assert code != 0 and "does not exist" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere: make the folder look read-only as for a user
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(locked) else real_access(p, m))
        code, _, err = _run(capsys, "generate", "a", "--model", "demo", "--out", str(locked / "o.mp4"))
        assert code != 0 and "not writable" in err
        monkeypatch.undo()
    finally:
        locked.chmod(0o700)
    code, _, err = _run(capsys, "generate", "a", "--model", "demo", "--out", str(tmp_path))
    assert code != 0 and "is a folder" in err
    assert _files(tmp_path) == ["frame.png", "locked"]


def test_incomplete_model_folder_is_named(tmp_path, capsys, saved_demo_folder):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(saved_demo_folder, model)
    shutil.rmtree(model / "vae")
    code, _, err = _run(capsys, "generate", "a", "--model", str(model), "--out", str(tmp_path / "o.mp4"))
    assert code != 0 and "the vae folder is missing" in err
    assert not (tmp_path / "o.mp4").exists()


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    code, _, err = _run(capsys, "generate", "a", "--model", "demo", "--out", str(out))
    assert code != 0 and "already exists" in err
    assert out.read_bytes() == b"keep me"


def test_bad_recipe_files(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text("[1, 2]")
    code, _, err = _run(capsys, "generate", "--recipe", str(bad), "--out", str(tmp_path / "o.mp4"))
    assert code != 0 and "has no 'request' object" in err
    bad.write_text(json.dumps({"schema_version": 99, "request": {"prompt": "a"}}))
    code, _, err = _run(capsys, "generate", "--recipe", str(bad), "--out", str(tmp_path / "o.mp4"))
    assert code != 0 and "schema version 99" in err


def test_ctrl_c_cancels_and_leaves_no_partial_file(tmp_path):
    out = tmp_path / "long.mp4"
    env = dict(os.environ, SHOTSKETCH_PROGRESS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shotsketch", "generate", "a slow shot", "--model", "demo", "--width", "64",
         "--height", "64", "--frames", "5", "--steps", "200", "--out", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=tmp_path,
    )
    seen = b""
    deadline = time.time() + 120
    while b"step 2/200" not in seen and time.time() < deadline:
        chunk = proc.stderr.read1(4096)
        if not chunk:
            break
        seen += chunk
    assert b"step 2/200" in seen, seen.decode(errors="replace")
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    err = (seen + rest).decode(errors="replace")
    assert proc.returncode == 130, err
    assert "cancelled; no file was written" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_doctor_reports_versions_and_model_problems(tmp_path, capsys):
    code, out, _ = _run(capsys, "doctor", "--model", "demo")
    assert code == 0
    assert "torch:" in out and "diffusers:" in out and "demo model — random weights" in out and "model: ok" in out
    assert "attention: PyTorch's (no CUDA GPU)" in out
    code, out, err = _run(capsys, "doctor", "--model", str(tmp_path / "nowhere"))
    assert code == 1
    assert "problem: the model folder" in out and "does not exist" in out
    assert "1 problem(s)" in err


def test_generate_with_a_layout_guides_every_subject_its_clause_names(tmp_path, capsys):
    from shotsketch.core.examples import example_shot

    shot = example_shot("yellow_ball")
    layout = tmp_path / "layout.json"
    layout.write_text(shot.layout.to_json())
    out = tmp_path / "ball.mp4"
    code, _, err = _run(capsys, "generate", "A yellow ball rolls to the center.", "--model", "demo", "--layout",
                        str(layout), "--width", "256", "--height", "160", "--frames", "5", "--steps", "2",
                        "--out", str(out))
    assert code == 0, err
    # the sketch's clause (as in the window) names the blue cube the prompt left out: it is guided too
    assert "is not named in the prompt" not in err and "attention inside the boxes: yellow ball" in err
    recipe = json.loads((tmp_path / "ball.mp4.json").read_text())
    assert recipe["request"]["layout_json"] and recipe["request"]["guidance_strength"] == 1.0
    assert "the blue cube" in recipe["request"]["prompt"].lower()
    assert recipe["layout_guidance"]["missing"] == []
    assert set(recipe["layout_guidance"]["adherence"]) == {"yellow ball", "blue cube"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "aspect": 1.7, "subjects": [{"name": ""}]}')
    code, _, err = _run(capsys, "generate", "a", "--model", "demo", "--layout", str(bad), "--out", str(tmp_path / "x.mp4"))
    assert code != 0 and "is not valid" in err and len(err.strip().splitlines()) == 1


def test_png_sequence_output_replaces_an_existing_folder_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "old.txt").write_text("x")
    args = ["generate", "a", "--model", "demo", "--width", "96", "--height", "64", "--frames", "5", "--steps", "2",
            "--format", "png", "--out", str(out)]
    code, _, err = _run(capsys, *args)
    assert code != 0 and "already exists" in err and (out / "old.txt").exists()
    code, _, err = _run(capsys, *args, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir())[:2] == ["frame_00001.png", "frame_00002.png"]
    assert not (out / "old.txt").exists()


def test_device_cuda_without_a_gpu_says_so(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    code, _, err = _run(capsys, "generate", "a", "--model", "demo", "--device", "cuda", "--out", str(tmp_path / "x.mp4"))
    assert code != 0 and "no CUDA GPU is available" in err and _files(tmp_path) == []


def test_replay_notices_a_changed_first_frame_image(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "first.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(image)
    args = ["--model", "demo", "--width", "96", "--height", "64", "--frames", "5", "--steps", "2"]
    code, _, err = _run(capsys, "generate", "a red ball", "--image", str(image), *args, "--out", str(tmp_path / "a.mp4"))
    assert code == 0, err
    recipe = json.loads((tmp_path / "a.mp4.json").read_text())
    assert len(recipe["image_sha256"]) == 64
    Image.new("RGB", (96, 64), (40, 40, 200)).save(image)
    code, _, err = _run(capsys, "generate", "--recipe", str(tmp_path / "a.mp4.json"), "--out", str(tmp_path / "b.mp4"))
    assert code != 0 and "has changed" in err and not (tmp_path / "b.mp4").exists()
    code, _, err = _run(capsys, "generate", "--recipe", str(tmp_path / "a.mp4.json"), "--image", str(image),
                        "--out", str(tmp_path / "c.mp4"))
    assert code == 0, err
