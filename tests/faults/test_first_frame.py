"""Defect 1: the first-frame image's work is bounded by the output size, whatever its aspect."""

from __future__ import annotations

import pytest
from PIL import Image

from shotsketch.engine.requests import load_first_frame


def _old_resize_then_crop(img: Image.Image, width: int, height: int) -> Image.Image:
    scale = max(width / img.width, height / img.height)
    resized = img.resize((max(width, round(img.width * scale)), max(height, round(img.height * scale))), Image.LANCZOS)
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


@pytest.mark.parametrize("size", [(8000, 1), (1, 8000), (30000, 1)])
def test_a_thin_image_costs_no_more_than_the_output(tmp_path, monkeypatch, size):
    """No picture larger than the output is ever made (an 8000x1 PNG used to become 2,048,000x256)."""
    path = tmp_path / "thin.png"
    Image.new("RGB", size, (200, 30, 30)).save(path)
    original = Image.Image.resize
    made: list[tuple[int, int]] = []

    def resize(self, new_size, *args, **kwargs):
        made.append(tuple(new_size))
        assert new_size[0] * new_size[1] <= 832 * 480, f"a {new_size} picture was made for an 832x480 frame"
        return original(self, new_size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", resize)
    frame = load_first_frame(str(path), 832, 480)
    assert frame.size == (832, 480)
    assert made


@pytest.mark.parametrize("src,dst", [((640, 360), (832, 480)), ((300, 500), (96, 64)), ((96, 64), (96, 64)),
                                     ((1000, 1000), (1280, 704))])
def test_ordinary_images_give_the_same_frame_as_before(tmp_path, src, dst):
    """Replays of recipes with a first frame must stay identical: the crop-first path equals the old one."""
    import numpy as np

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (src[1], src[0], 3), dtype=np.uint8))
    path = tmp_path / "frame.png"
    img.save(path)
    new = np.asarray(load_first_frame(str(path), *dst), dtype=np.int16)
    old = np.asarray(_old_resize_then_crop(img, *dst), dtype=np.int16)
    assert new.shape == old.shape
    assert np.array_equal(new, old)
