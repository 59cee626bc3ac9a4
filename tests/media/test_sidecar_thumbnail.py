import json

import numpy as np
import pytest
from PIL import Image

from shotsketch.media.encode import EncodeError, MissingSource, write_clip
from shotsketch.media.sidecar import (
    container_tags,
    exported_recipe,
    read_sidecar,
    recipe_from_tags,
    sidecar_path,
    write_sidecar,
)
from shotsketch.media.thumbnail import make_thumbnail

RECIPE = {"schema_version": 1, "request": {"prompt": "a heron lands " * 30, "seed": 1}, "output": {"file": "a.mp4"}}


def test_sidecar_beside_file_and_folder(tmp_path):
    assert sidecar_path(tmp_path / "a.mp4") == tmp_path / "a.mp4.json"
    assert sidecar_path(tmp_path / "shot") == tmp_path / "shot.json"
    path = write_sidecar(tmp_path / "a.mp4", RECIPE)
    assert json.loads(path.read_text()) == RECIPE
    assert read_sidecar(tmp_path / "a.mp4") == RECIPE
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4.json"]  # no temp file left


def test_missing_or_broken_sidecar_reads_as_none(tmp_path):
    assert read_sidecar(tmp_path / "x.mp4") is None
    (tmp_path / "x.mp4.json").write_text("{not json")
    assert read_sidecar(tmp_path / "x.mp4") is None


def test_container_tags_are_compact_and_titled():
    tags = container_tags(RECIPE)
    assert "\n" not in tags["comment"] and ": " not in tags["comment"]
    assert tags["title"] == RECIPE["request"]["prompt"][:200] and len(tags["title"]) == 200
    assert recipe_from_tags(tags) == RECIPE
    assert recipe_from_tags({"comment": "made with something else"}) is None


def test_exported_recipe_describes_the_new_file(tmp_path):
    out = exported_recipe(RECIPE, tmp_path / "b.mov", "prores", fps=24.0, frames=9, width=66, height=50)
    assert out["output"] == {"file": "b.mov", "format": "prores", "fps": 24.0, "frames": 9, "width": 66,
                             "height": 50, "exported_from": "a.mp4"}
    assert out["request"] == RECIPE["request"] and RECIPE["output"] == {"file": "a.mp4"}


def test_thumbnail_from_frames_is_the_middle_frame(tmp_path):
    frames = np.zeros((9, 300, 400, 3), np.uint8)
    for i in range(9):
        frames[i] = i * 25
    out = make_thumbnail(frames, tmp_path / "t.png", max_side=100)
    image = Image.open(out)
    assert image.size == (100, 75)
    assert np.asarray(image)[30, 40].tolist() == [100, 100, 100]  # frame 4 of 0..8
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]


def test_thumbnail_from_clip_and_small_frames_are_not_enlarged(tmp_path):
    frames = np.stack([np.full((49, 65, 3), 20 * i, np.uint8) for i in range(9)])
    clip = write_clip(frames, tmp_path / "c.mov", fmt="prores")
    image = Image.open(make_thumbnail(clip, tmp_path / "t.png"))
    assert image.size == (66, 50)
    assert abs(int(np.asarray(image)[20, 20, 0]) - 80) <= 3


def test_thumbnail_faults(tmp_path):
    with pytest.raises(MissingSource):
        make_thumbnail(tmp_path / "gone.mp4", tmp_path / "t.png")
    with pytest.raises(EncodeError, match="could not write the thumbnail"):
        make_thumbnail(np.zeros((1, 8, 8, 3), np.uint8), tmp_path / "no" / "t.png")
    assert list(tmp_path.iterdir()) == []
