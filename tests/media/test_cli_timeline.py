"""`shotsketch timeline` and `shotsketch export`, end to end through the real dispatcher."""

import json

import numpy as np
import opentimelineio as otio
import pytest

from shotsketch.cli import main
from shotsketch.media.encode import read_container_metadata, write_clip
from shotsketch.media.probe import probe_video
from shotsketch.media.sidecar import container_tags, recipe_from_tags, write_sidecar

RECIPE = {"schema_version": 1, "request": {"prompt": "a kite rises from the left", "seed": 5},
          "output": {"file": "take.mp4", "format": "mp4"}}


@pytest.fixture
def take(tmp_path):
    frames = np.stack([np.full((48, 64, 3), 10 * i, np.uint8) for i in range(9)])
    clip = write_clip(frames, tmp_path / "take.mp4", metadata=container_tags(RECIPE))
    write_sidecar(clip, RECIPE)
    return clip


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("shotsketch: ")
    return lines[0]


@pytest.mark.parametrize("ext", ["otio", "xml", "edl"])
def test_timeline_command_writes_each_format(take, tmp_path, capsys, ext):
    other = write_clip(np.zeros((13, 48, 64, 3), np.uint8), tmp_path / "other.mov", fmt="prores")
    out = tmp_path / f"cut.{ext}"
    code, stdout, err = run(capsys, "timeline", str(take), str(other), "--out", str(out), "--name", "Kite")
    assert code == 0, err
    assert "wrote" in stdout and "2 clips" in stdout
    kwargs = {"rate": 24} if ext == "edl" else {}
    tl = otio.adapters.read_from_file(str(out), **kwargs)
    assert [c.source_range.duration.value for c in tl.find_clips()] == [9, 13]


@pytest.mark.parametrize("argv, words", [
    (["--out", "{d}/cut.txt"], "end the name in .otio"),
    (["{d}/gone.mp4", "--out", "{d}/cut.otio"], "gone.mp4 does not exist"),
    (["--out", "{d}/missing-folder/cut.otio"], "does not exist"),
])
def test_timeline_bad_input_is_one_line_and_writes_nothing(take, tmp_path, capsys, argv, words):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _out, err = run(capsys, "timeline", str(take), *[a.format(d=tmp_path) for a in argv])
    assert code == 2
    assert words in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_timeline_mixed_rates_and_existing_output(take, tmp_path, capsys):
    slow = write_clip(np.zeros((9, 48, 64, 3), np.uint8), tmp_path / "slow.mp4", fps=16)
    code, _, err = run(capsys, "timeline", str(take), str(slow), "--out", str(tmp_path / "cut.edl"))
    assert code == 2 and "one rate" in one_line_error(err)
    (tmp_path / "cut.otio").write_text("keep")
    code, _, err = run(capsys, "timeline", str(take), "--out", str(tmp_path / "cut.otio"))
    assert code == 2 and "already exists" in one_line_error(err)
    assert (tmp_path / "cut.otio").read_text() == "keep"
    assert run(capsys, "timeline", str(take), "--out", str(tmp_path / "cut.otio"), "--overwrite")[0] == 0
    assert not (tmp_path / "cut.edl").exists()


def test_export_prores_copies_and_updates_the_recipe(take, tmp_path, capsys):
    code, stdout, err = run(capsys, "export", str(take), "--format", "prores", "--out", str(tmp_path / "final"))
    assert code == 0, err
    out = tmp_path / "final.mov"
    assert "final.mov.json" in stdout
    info = probe_video(out)
    assert (info.codec, info.profile, info.pix_fmt, info.frames) == ("prores", "HQ", "yuv422p10le", 9)
    sidecar = json.loads((tmp_path / "final.mov.json").read_text())
    assert sidecar["request"] == RECIPE["request"]
    assert sidecar["output"]["file"] == "final.mov" and sidecar["output"]["format"] == "prores"
    assert recipe_from_tags(read_container_metadata(out))["output"]["file"] == "final.mov"


def test_export_png_and_gif_into_a_folder_with_fps(take, tmp_path, capsys):
    assert run(capsys, "export", str(take), "--format", "png", "--out", str(tmp_path / "seq"))[0] == 0
    assert len(list((tmp_path / "seq").glob("frame_*.png"))) == 9 and (tmp_path / "seq.json").is_file()
    dest = tmp_path / "previews"
    dest.mkdir()
    assert run(capsys, "export", str(take), "--format", "gif", "--out", str(dest), "--fps", "12.5")[0] == 0
    info = probe_video(dest / "take.gif")
    assert info.frames == 9 and info.fps == pytest.approx(12.5)
    assert json.loads((dest / "take.gif.json").read_text())["output"]["fps"] == 12.5


def test_export_on_exists(take, tmp_path, capsys):
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"precious")
    code, _, err = run(capsys, "export", str(take), "--format", "mp4", "--out", str(dest))
    assert code == 2 and "--on-exists" in one_line_error(err)
    assert dest.read_bytes() == b"precious"
    assert run(capsys, "export", str(take), "--format", "mp4", "--out", str(dest), "--on-exists", "number")[0] == 0
    numbered = tmp_path / "out (2).mp4"
    assert probe_video(numbered).frames == 9
    assert json.loads((tmp_path / "out (2).mp4.json").read_text())["output"]["file"] == "out (2).mp4"
    assert run(capsys, "export", str(take), "--format", "mp4", "--out", str(dest), "--on-exists", "overwrite")[0] == 0
    assert probe_video(dest).frames == 9


@pytest.mark.parametrize("argv, words", [
    (["{d}/gone.mp4", "--format", "mp4", "--out", "{d}/x.mp4"], "gone.mp4 does not exist"),
    (["{take}", "--format", "webm", "--out", "{d}/x.webm"], "choose one of mp4, prores"),
    (["{take}", "--format", "prores", "--out", "{d}/x.mp4"], "name it x.mov"),
    (["{take}", "--format", "mp4", "--out", "{d}/x.mp4", "--fps", "-3"], "--fps"),
    (["{take}", "--format", "mp4", "--out", "{d}/nofolder/x.mp4"], "does not exist"),
    (["{take}", "--format", "mp4"], "--out"),
])
def test_export_bad_input_is_one_line_and_writes_nothing(take, tmp_path, capsys, argv, words):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _out, err = run(capsys, "export", *[a.format(d=tmp_path, take=take) for a in argv])
    assert code == 2
    assert words in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_export_of_a_broken_file_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    code, _, err = run(capsys, "export", str(bad), "--format", "mp4", "--out", str(tmp_path / "x.mp4"))
    assert code == 1 and "bad.mp4" in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]
