"""TimelinePanel: decoding off the UI thread, transport, the frame shown, layout boxes, heatmaps, compare."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QUrl

from shotsketch.core.layout import Box, Layout, Subject
from shotsketch.media.encode import write_clip
from shotsketch.ui.dragout import take_mime_data
from shotsketch.ui.timeline import TimelinePanel, clip_time, latent_index, timecode

PALETTE = [(230, 20, 20), (20, 200, 20), (20, 20, 230), (230, 230, 20), (230, 20, 230),
           (20, 230, 230), (240, 240, 240), (110, 110, 110), (240, 130, 10)]
W, H, N = 64, 48, 9


def make_clip(path: Path, palette=PALETTE, fps: float = 12.0) -> Path:
    frames = np.zeros((len(palette), H, W, 3), np.uint8)
    for i, colour in enumerate(palette):
        frames[i] = colour
    return write_clip(frames, path, fps=fps)


def nearest(colour, palette=PALETTE) -> int:
    c = np.array(colour[:3], float)
    return int(np.argmin([np.abs(c - np.array(p)).sum() for p in palette]))


def rgb(image, x, y):
    c = image.pixelColor(int(x), int(y))
    return (c.red(), c.green(), c.blue())


def shown_colour_index(view, palette=PALETTE) -> int:
    r = view.video_rect()
    image = view.grab().toImage()
    return nearest(rgb(image, r.x() + r.width() * 0.1, r.y() + r.height() * 0.9), palette)


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "take.mp4")


@pytest.fixture
def panel(qtbot):
    p = TimelinePanel()
    qtbot.addWidget(p)
    p.resize(900, 560)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.pause()
    p.wait_decoded()


def load(qtbot, panel, path, **kw):
    with qtbot.waitSignal(panel.loaded, timeout=15000):
        panel.load_take(path, **kw)


def test_helpers():
    assert clip_time(0, 9) == 0 and clip_time(8, 9) == 1 and clip_time(4, 9) == 0.5 and clip_time(0, 1) == 0
    assert [latent_index(p, 99) for p in range(10)] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert latent_index(120, 31) == 30 and latent_index(500, 31) == 30
    assert timecode(0, 24) == "00:00:00:00" and timecode(25, 24) == "00:00:01:01"
    assert timecode(24 * 3661 + 5, 24) == "01:01:01:05"


def test_decodes_off_the_ui_thread_and_shows_the_first_frame(qtbot, panel, clip, monkeypatch):
    import shotsketch.ui.timeline as tl

    threads = []
    real = tl.decode_clip
    monkeypatch.setattr(tl, "decode_clip", lambda p: (threads.append(threading.current_thread()), real(p))[1])
    load(qtbot, panel, clip)
    assert not panel.heatmap_combo.isVisibleTo(panel)  # no attention maps for this take
    assert threads and threads[0] is not threading.main_thread()
    assert panel.frame_count() == N
    assert panel.fps() == pytest.approx(12.0)  # the clip's own rate
    assert panel.current_frame() == 0
    assert shown_colour_index(panel.view) == 0
    assert "1/9" in panel.frame_label.text()


def test_seek_step_and_scrub_show_the_right_frame(qtbot, panel, clip):
    load(qtbot, panel, clip)
    panel.seek(4)
    assert panel.current_frame() == 4 and shown_colour_index(panel.view) == 4
    panel.step(1)
    assert panel.current_frame() == 5 and shown_colour_index(panel.view) == 5
    panel.step(-2)
    assert panel.current_frame() == 3
    with qtbot.waitSignal(panel.frameChanged) as sig:
        panel.slider.setValue(6)  # scrubbing
    assert sig.args == [6] and shown_colour_index(panel.view) == 6
    assert "7/9" in panel.frame_label.text() and "00:00:00:06" in panel.frame_label.text()
    panel.seek(100)
    assert panel.current_frame() == 8


def test_step_wraps_only_when_looping(qtbot, panel, clip):
    load(qtbot, panel, clip)
    panel.set_loop(True)
    panel.step(-1)
    assert panel.current_frame() == 8
    panel.step(1)
    assert panel.current_frame() == 0
    panel.set_loop(False)
    assert not panel.loop_box.isChecked()
    panel.step(-1)
    assert panel.current_frame() == 0


def test_play_pause_and_loop(qtbot, panel, clip):
    load(qtbot, panel, clip)
    panel.set_fps(60)
    panel.set_loop(True)
    seen = []
    panel.frameChanged.connect(seen.append)
    panel.play()
    assert panel.is_playing()
    qtbot.waitUntil(lambda: 8 in seen and seen[-1] < 8 and seen.index(8) < len(seen) - 1, timeout=10000)
    wrapped = seen.index(8) + 1
    assert seen[wrapped] == 0  # looped back to the start
    panel.pause()
    assert not panel.is_playing()
    frame = panel.current_frame()
    qtbot.wait(150)
    assert panel.current_frame() == frame  # paused means paused
    assert shown_colour_index(panel.view) == frame


def test_play_without_loop_stops_on_the_last_frame(qtbot, panel, clip):
    load(qtbot, panel, clip)
    panel.set_loop(False)
    panel.set_fps(60)
    panel.seek(5)
    with qtbot.waitSignal(panel.playingChanged, timeout=10000, check_params_cb=lambda on: on is False):
        panel.play()
    assert panel.current_frame() == 8 and shown_colour_index(panel.view) == 8
    panel.play()  # playing again from the end starts over
    assert panel.current_frame() == 0 and panel.is_playing()
    panel.toggle_play()
    assert not panel.is_playing()


def test_fps_is_settable(qtbot, panel, clip):
    load(qtbot, panel, clip)
    panel.set_fps(30)
    assert panel.fps() == 30 and panel.fps_spin.value() == 30
    panel.fps_spin.setValue(8)
    assert panel.fps() == 8
    with pytest.raises(ValueError):
        panel.set_fps(0)


SUBJECT_COLOUR = (0, 255, 0)


def moving_layout() -> Layout:
    ball = Subject.moving("ball", Box(0.0, 0.25, 0.25, 0.75), Box(0.75, 0.25, 1.0, 0.75), color="#00ff00")
    return Layout(W / H, (ball,))


def is_box_colour(c) -> bool:
    return c[1] > 200 and c[0] < 80 and c[2] < 80


def test_overlay_boxes_follow_a_moving_subject(qtbot, panel, clip):
    load(qtbot, panel, clip, layout=moving_layout())
    panel.seek(4)  # t = 0.5: the box spans x 0.375 .. 0.625
    r = panel.view.video_rect()
    assert r.width() > 300
    image = panel.view.grab().toImage()
    y = r.y() + r.height() * 0.6
    left, right = r.x() + 0.375 * r.width(), r.x() + 0.625 * r.width()
    assert is_box_colour(rgb(image, left + 1, y))
    assert is_box_colour(rgb(image, right - 2, y))
    assert not is_box_colour(rgb(image, r.x() + 0.5 * r.width(), y))  # only the outline is drawn
    assert not is_box_colour(rgb(image, r.x() + 1, y))  # the first frame's place is empty now
    assert nearest(rgb(image, r.x() + 0.5 * r.width(), y)) == 4  # the video shows through

    panel.seek(0)  # t = 0: the box spans x 0 .. 0.25
    image = panel.view.grab().toImage()
    assert is_box_colour(rgb(image, r.x() + 1, y))
    assert not is_box_colour(rgb(image, left + 1, y))

    panel.set_overlay(False)
    assert not panel.overlay_box.isChecked()
    image = panel.view.grab().toImage()
    assert not is_box_colour(rgb(image, r.x() + 1, y))
    panel.overlay_box.setChecked(True)
    assert is_box_colour(rgb(panel.view.grab().toImage(), r.x() + 1, y))


def test_painting_keeps_the_aspect(qtbot, panel, clip):
    load(qtbot, panel, clip)
    panel.view.resize(600, 200)
    r = panel.view.video_rect()
    assert abs(r.width() / r.height() - W / H) < 0.02
    image = panel.view.grab().toImage()
    assert rgb(image, 3, 100) == (16, 16, 18)  # letterbox, not stretched video


def test_heatmap_overlay_uses_the_latent_frame(qtbot, panel, clip):
    maps = np.zeros((3, 4, 4), np.float32)  # latent 0 -> pixel 0; latent 1 -> 1..4; latent 2 -> 5..8
    maps[0, 0, 0] = 1.0
    maps[1, 3, 3] = 1.0
    maps[2, 0, 3] = 1.0
    load(qtbot, panel, clip, layout=None, heatmaps={"ball": maps})
    assert panel.heatmap_combo.count() == 2 and panel.heatmap_combo.isVisibleTo(panel)
    r = panel.view.video_rect()

    def cell(col, row):
        return r.x() + (col + 0.5) * r.width() / 4, r.y() + (row + 0.5) * r.height() / 4

    panel.seek(2)
    before = rgb(panel.view.grab().toImage(), *cell(3, 3))
    panel.set_heatmap("ball")
    image = panel.view.grab().toImage()
    hot = rgb(image, *cell(3, 3))
    assert hot != before and hot[0] > 150 and hot[1] > 150  # pale yellow over blue
    assert nearest(rgb(image, *cell(0, 0))) == 2  # cold cells leave the video as it is
    panel.seek(7)
    image = panel.view.grab().toImage()
    assert rgb(image, *cell(0, 3))[2] < 200 and nearest(rgb(image, *cell(3, 3))) == 7
    panel.set_heatmap(None)
    assert nearest(rgb(panel.view.grab().toImage(), *cell(0, 3))) == 7


def test_side_by_side_stays_in_sync(qtbot, panel, clip, tmp_path):
    other = make_clip(tmp_path / "other.mp4", PALETTE[::-1])
    load(qtbot, panel, clip, layout=moving_layout())
    with qtbot.waitSignal(panel.loaded, timeout=15000):
        panel.compare_with(other)
    assert panel.is_comparing()
    assert panel.compare_view.layout_shown() is panel.view.layout_shown()
    panel.seek(2)
    assert shown_colour_index(panel.view) == 2
    assert shown_colour_index(panel.compare_view, PALETTE[::-1]) == 2
    panel.set_fps(60)
    panel.play()
    qtbot.wait(200)
    panel.pause()
    f = panel.current_frame()
    assert panel.view.displayed_frame() == panel.compare_view.displayed_frame() == f
    assert shown_colour_index(panel.compare_view, PALETTE[::-1]) == f
    panel.step(3)
    assert panel.compare_view.displayed_frame() == (f + 3) % N
    panel.compare_with(None)
    assert not panel.is_comparing()


def test_missing_take_says_so(qtbot, panel, tmp_path):
    with qtbot.waitSignal(panel.errorOccurred, timeout=10000) as sig:
        panel.load_take(tmp_path / "gone.mp4")
    assert "missing" in sig.args[0] and "gone.mp4" in sig.args[0]
    assert panel.frame_count() == 0
    panel.play()
    assert not panel.is_playing()


def test_a_newer_load_wins_over_a_slower_older_one(qtbot, panel, clip, tmp_path):
    other = make_clip(tmp_path / "other.mp4", PALETTE[:5])
    panel.load_take(clip)
    with qtbot.waitSignal(panel.loaded, timeout=15000):
        panel.load_take(other)
    panel.wait_decoded()
    qtbot.wait(50)
    assert panel.frame_count() == 5 and panel.take_path() == other


def test_the_timeline_offers_its_take_for_dragging(qtbot, panel, clip):
    load(qtbot, panel, clip)
    offer = take_mime_data([panel.take_path()])
    assert offer.mime is not None and offer.mime.urls() == [QUrl.fromLocalFile(str(clip.resolve()))]
    assert panel.view.rect().contains(QPoint(10, 10))


def test_keyboard_transport(qtbot, panel, clip):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    load(qtbot, panel, clip)
    panel.setFocus()
    qtbot.waitUntil(panel.hasFocus)
    QTest.keyClick(panel, Qt.Key.Key_Right)
    QTest.keyClick(panel, Qt.Key.Key_Right)
    assert panel.current_frame() == 2
    QTest.keyClick(panel, Qt.Key.Key_End)
    assert panel.current_frame() == 8
    QTest.keyClick(panel, Qt.Key.Key_Space)
    assert panel.is_playing()
    QTest.keyClick(panel, Qt.Key.Key_Space)
    assert not panel.is_playing()


def test_dragging_the_video_starts_a_drag_of_the_take(qtbot, panel, clip, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    import shotsketch.ui.timeline as tl

    dragged = []
    monkeypatch.setattr(tl, "start_take_drag", lambda source, paths, pixmap=None: (
        dragged.append(list(paths)), take_mime_data(paths))[1])
    load(qtbot, panel, clip)
    centre = panel.view.video_rect().center()
    QTest.mousePress(panel.view, Qt.MouseButton.LeftButton, pos=centre)
    QTest.mouseMove(panel.view, centre + QPoint(40, 0))
    QTest.mouseRelease(panel.view, Qt.MouseButton.LeftButton, pos=centre + QPoint(40, 0))
    assert dragged == [[clip]]
