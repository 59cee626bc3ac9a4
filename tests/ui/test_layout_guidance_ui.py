"""Layout guidance in the app: on when the canvas has subjects, the strength slider, heatmaps and scores."""


import numpy as np
import pytest

from shotsketch.core.settings import load_settings
from shotsketch.media.heatmaps import adherence_summary, heatmaps_path, read_heatmaps, write_heatmaps


def test_heatmaps_file_round_trip_and_refuses_pickles(tmp_path):
    clip = tmp_path / "take.mp4"
    maps = {"yellow ball": np.full((2, 3, 4), 1 / 12, np.float32)}
    write_heatmaps(clip, maps)
    back = read_heatmaps(clip)
    assert list(back) == ["yellow ball"] and back["yellow ball"].shape == (2, 3, 4)
    # an object array would need pickle: it is refused, not loaded
    np.savez(heatmaps_path(clip), evil=np.array([object()], dtype=object))
    assert read_heatmaps(clip) == {}
    heatmaps_path(clip).write_bytes(b"garbage")
    assert read_heatmaps(clip) == {}
    assert adherence_summary({"layout_guidance": {"adherence": {"a": 0.9, "b": 0.7}}}) == "80% attention in boxes"
    assert adherence_summary({"request": {}}) == ""


@pytest.fixture
def window(make_window):
    from shotsketch.ui.worker import generator_factory

    win = make_window(engine_factory=generator_factory("demo", device="cpu"))
    win.open_example_shot("yellow_ball", reset=True)
    return win


def test_guidance_on_with_subjects_and_follows_the_slider(window, qtbot):
    req = window.shot.request()
    assert req.layout_json and req.guidance_strength == pytest.approx(window.settings.layout_guidance_strength)
    window.generate_bar.strength_slider.setValue(15)
    assert window.shot.request().guidance_strength == pytest.approx(1.5)
    assert "1.5" in window.generate_bar.strength_label.text()
    qtbot.waitUntil(lambda: load_settings().layout_guidance_strength == pytest.approx(1.5), timeout=5000)
    window.generate_bar.strength_slider.setValue(0)
    assert window.shot.request().guidance_strength == 0.0 and "off" in window.generate_bar.strength_label.text()
    empty = window.sketch.sketch()
    for name in empty.names:
        empty = empty.without_subject(name)
    window.sketch.set_sketch(empty)
    window.generate_bar.strength_slider.setValue(10)
    req = window.shot.request()
    assert req.layout_json is None and req.guidance_strength == 0.0


def test_a_guided_take_keeps_its_heatmaps_and_shows_its_score(window, qtbot):
    from shotsketch.app.shot import ShotSettings

    window.shot.set_settings(ShotSettings(448, 256, 5, 2, 5.0, 3))
    with qtbot.waitSignal(window.takeSaved, timeout=120_000) as saved:
        window.generate(1)
    take = saved.args[0]
    maps = read_heatmaps(take.file)
    assert set(maps) == {"yellow ball", "blue cube"}
    assert maps["yellow ball"].shape == (2, 256 // 32, 448 // 32)
    assert take.recipe["layout_guidance"]["adherence"]
    qtbot.waitUntil(lambda: window.timeline.frame_count() == 5, timeout=30_000)
    assert window.timeline.heatmap_combo.count() == 3  # off + two subjects
    assert "% attention in boxes" in window.timeline._title


def test_fast_mode_caps_the_steps_and_is_remembered(window, qtbot):
    from shotsketch.engine.requests import FAST_MODE_STEPS
    from shotsketch.app.shot import ShotSettings

    window.shot.set_settings(ShotSettings(448, 256, 17, 50, 5.0, 3))
    assert window.shot.request().steps == 50
    window.generate_bar.fast_button.setChecked(True)
    req = window.shot.request()
    assert req.steps == FAST_MODE_STEPS and dict(req.extra) == {"mode": "fast"}
    qtbot.waitUntil(lambda: load_settings().fast_mode is True, timeout=5000)
    window.shot.set_settings(ShotSettings(448, 256, 17, 8, 5.0, 3))
    assert window.shot.request().steps == 8  # fewer steps than the cap stay as they are


def test_heatmaps_for_any_subject_name_and_truncated_files(tmp_path):
    clip = tmp_path / "take.mp4"
    maps = {"file": np.ones((1, 2, 2), np.float32) / 4, "red car": np.ones((1, 2, 2), np.float32) / 4}
    write_heatmaps(clip, maps)
    back = read_heatmaps(clip)
    assert set(back) == {"file", "red car"}
    data = heatmaps_path(clip).read_bytes()
    heatmaps_path(clip).write_bytes(data[: len(data) // 2])
    assert read_heatmaps(clip) == {}
    heatmaps_path(clip).write_bytes(b"PK\x03\x04garbage")
    assert read_heatmaps(clip) == {}
