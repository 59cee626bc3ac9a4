"""ExportDialog: takes to files + an editor timeline in one step, off the UI thread; every fault is a message."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import numpy as np
import pytest

import shotsketch.media.encode as encode
from shotsketch.core.library import Library
from shotsketch.media.encode import ClipFormat, read_frames, write_clip
from shotsketch.ui.export_dialog import ExistingChoice, ExportDialog, ExportItem, RowState, safe_stem

W, H = 64, 48


def make_clip(path: Path, colour, frames: int = 9, fps: float = 24) -> Path:
    data = np.zeros((frames, H, W, 3), np.uint8)
    data[:] = colour
    for i in range(frames):
        data[i, :, : 4 + i % (W - 4)] = 255  # a bar that grows, so frames differ
    return write_clip(data, path, fps=fps)


@pytest.fixture
def takes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    a = make_clip(src / "a.mp4", (200, 40, 40))
    b = make_clip(src / "b.mp4", (40, 40, 200))
    return [ExportItem(a, "Ball take 1", 1, {"request": {"prompt": "a yellow ball", "seed": 1}}),
            ExportItem(b, "Ball take 2", 2, {"request": {"prompt": "a yellow ball", "seed": 2}})]


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def dialog_for(qtbot, items, folder, fmt="mp4", timeline=".otio") -> ExportDialog:
    d = ExportDialog(items, folder=folder, timeline_name="Ball")
    qtbot.addWidget(d)
    d.set_format(fmt)
    d.set_timeline(timeline)
    d.ask_existing = lambda paths: pytest.fail(f"asked about existing files {paths}")
    return d


def run(qtbot, d: ExportDialog):
    with qtbot.waitSignal(d.exportFinished, timeout=60000) as sig:
        assert d.start()
    d.wait()
    return sig.args[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_exports_two_takes_and_an_otio_timeline_with_progress(qtbot, takes, out, monkeypatch):
    import opentimelineio as otio

    d = dialog_for(qtbot, takes, out)
    threads, progress = [], []
    real = encode.export_take

    def spy(*a, **kw):
        threads.append(threading.current_thread())
        return real(*a, **kw)

    monkeypatch.setattr("shotsketch.app.exports.export_take", spy)
    d._report.progress.connect(lambda row, done, total: progress.append((row, done, total, d.overall_bar.value())))
    summary = run(qtbot, d)

    assert summary.ok and summary.skipped == 0
    assert [p.name for p in summary.written] == ["Ball take 1.mp4", "Ball take 2.mp4"]
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert {r for r, *_ in progress} == {0, 1} and (0, 9, 9) == progress[8][:3]
    overall = [v for *_, v in progress]
    assert overall == sorted(overall) and 0 < overall[0] < overall[-1]  # rises take by take
    assert d.overall_bar.value() == d.overall_bar.maximum()
    assert [b.value() for b in d.row_bars] == [100, 100]
    assert d.table.topLevelItem(0).text(3) == RowState.DONE.value
    assert read_frames(out / "Ball take 2.mp4").shape == (9, H, W, 3)
    assert (out / "Ball take 1.mp4.json").exists()  # the recipe beside it

    timeline = otio.adapters.read_from_file(str(out / "Ball.otio"))
    clips = list(timeline.find_clips())
    assert [c.name for c in clips] == ["Ball take 1.mp4", "Ball take 2.mp4"]
    assert clips[1].media_reference.target_url == (out / "Ball take 2.mp4").resolve().as_uri()
    assert summary.timeline == out / "Ball.otio"
    assert "Exported 2 of 2 takes and the timeline Ball.otio" in d.status_label.text()
    assert leftovers(out) == []
    assert not d.close_button.isHidden() and d.cancel_button.isHidden()


def test_other_formats_and_timelines(qtbot, takes, out):
    d = dialog_for(qtbot, takes, out, fmt="prores", timeline=".edl")
    summary = run(qtbot, d)
    assert [p.name for p in summary.written] == ["Ball take 1.mov", "Ball take 2.mov"]
    assert "Ball take 1.mov" in (out / "Ball.edl").read_text()
    d2 = dialog_for(qtbot, takes[:1], out, fmt="png", timeline=".otio")
    assert not d2.timeline_box.isEnabled() and d2.timeline_path() is None  # editors need movie files
    summary = run(qtbot, d2)
    assert summary.written[0].is_dir() and len(list(summary.written[0].glob("frame_*.png"))) == 9


@pytest.mark.parametrize("choice", list(ExistingChoice))
def test_an_existing_file_asks_overwrite_number_or_skip(qtbot, takes, out, choice):
    (out / "Ball take 1.mp4").write_bytes(b"old")
    d = dialog_for(qtbot, takes, out)
    asked = []
    d.ask_existing = lambda paths: (asked.append(list(paths)), choice)[1]
    summary = run(qtbot, d)
    assert asked == [[out / "Ball take 1.mp4"]]
    old = (out / "Ball take 1.mp4").read_bytes()
    if choice is ExistingChoice.SKIP:
        assert old == b"old" and summary.skipped == 1
        assert [p.name for p in summary.written] == ["Ball take 2.mp4"]
        assert d.table.topLevelItem(0).text(3).startswith("Skipped")
    elif choice is ExistingChoice.NUMBER:
        assert old == b"old" and [p.name for p in summary.written] == ["Ball take 1 (2).mp4", "Ball take 2.mp4"]
    else:
        assert old != b"old" and read_frames(out / "Ball take 1.mp4").shape[0] == 9
    assert summary.timeline is not None and leftovers(out) == []


def test_declining_the_question_exports_nothing(qtbot, takes, out):
    (out / "Ball.otio").write_text("mine")
    d = dialog_for(qtbot, takes, out)
    d.ask_existing = lambda paths: None
    assert not d.start()
    assert (out / "Ball.otio").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["Ball.otio"]
    assert "Nothing exported" in d.log_view.toPlainText()


def test_a_missing_or_unwritable_folder_is_a_clear_message(qtbot, takes, tmp_path):
    d = dialog_for(qtbot, takes, tmp_path / "nowhere")
    d.ask_create_folder = lambda folder: False  # offered, declined
    assert not d.start()
    assert "does not exist" in d.status_label.text() and not d.is_running()
    afile = tmp_path / "afile"
    afile.write_text("x")
    d.set_folder(afile)
    assert not d.start() and "is a file, not a folder" in d.status_label.text()


def test_a_read_only_destination_stops_the_batch_with_a_message(qtbot, takes, out, monkeypatch):
    def refuse(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(encode.leftovers, "create_file", refuse)
    d = dialog_for(qtbot, takes, out)
    summary = run(qtbot, d)
    assert summary.written == () and summary.timeline is None
    row = d.table.topLevelItem(0)
    assert row.text(3) == "Cannot write into the folder"
    assert "cannot write into" in row.toolTip(3) and "choose another folder" in row.toolTip(3)
    assert "choose another folder" in d.log_view.toPlainText()
    assert d.table.topLevelItem(1).text(3).startswith("Skipped: not exported")
    assert "No timeline was written" in d.log_view.toPlainText()
    assert list(out.iterdir()) == []


def test_a_full_disk_leaves_no_file_under_the_final_name(qtbot, takes, out, monkeypatch):
    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(encode, "_place", full)
    d = dialog_for(qtbot, takes, out)
    summary = run(qtbot, d)
    row = d.table.topLevelItem(0)
    assert summary.written == () and row.text(3) == "Disk full" and "is full" in row.toolTip(3)
    assert "free some space" in d.log_view.toPlainText()
    assert list(out.iterdir()) == []  # neither the final name nor the temporary file


def test_an_ffmpeg_failure_shows_a_plain_message_and_its_last_lines(qtbot, takes, out, monkeypatch):
    monkeypatch.setitem(encode._CODEC_ARGS, ClipFormat.MP4, ["-c:v", "no_such_encoder", "-f", "mp4"])
    d = dialog_for(qtbot, takes, out)
    summary = run(qtbot, d)
    assert summary.written == () and len(summary.problems) == 2
    row = d.table.topLevelItem(0)
    assert row.text(3) == "ffmpeg failed: see the log below"
    assert row.toolTip(3).startswith("ffmpeg could not write the MP4 (H.264) file Ball take 1.mp4")
    text = d.log_view.toPlainText()
    assert "ffmpeg said:" in text and "no_such_encoder" in text
    assert "2 problems" in d.status_label.text()
    assert list(out.iterdir()) == []


def test_a_take_whose_file_was_deleted_is_skipped_and_the_rest_exported(qtbot, takes, out):
    import opentimelineio as otio

    takes[0].path.unlink()
    d = dialog_for(qtbot, takes, out)
    assert d.table.topLevelItem(0).text(3) == "File missing: deleted or moved"  # said before it starts
    summary = run(qtbot, d)
    assert [p.name for p in summary.written] == ["Ball take 2.mp4"]
    assert d.table.topLevelItem(0).text(3) == "File missing: deleted or moved"
    assert str(takes[0].path) in d.table.topLevelItem(0).toolTip(3) and "missing" in d.log_view.toPlainText()
    assert not (out / "Ball take 1.mp4").exists()
    assert len(list(otio.adapters.read_from_file(str(out / "Ball.otio")).find_clips())) == 1


def test_cancel_stops_without_a_partial_file(qtbot, out, tmp_path):
    long = make_clip(tmp_path / "long.mp4", (90, 160, 90), frames=120)
    items = [ExportItem(long, "long", None), ExportItem(long, "long again", None)]
    d = dialog_for(qtbot, items, out)
    d._report.progress.connect(lambda row, done, total: d.cancel() if done == 3 else None)
    summary = run(qtbot, d)
    assert summary.cancelled and summary.written == () and summary.timeline is None
    assert d.table.topLevelItem(0).text(3).startswith("Cancelled")
    assert d.table.topLevelItem(1).text(3).startswith("Cancelled")
    assert list(out.iterdir()) == []
    assert "No partial file" in d.status_label.text()


def test_for_takes_names_files_after_the_shot(qtbot, tmp_path, out):
    lib = Library.open(tmp_path / "lib" / "library.sqlite3")
    try:
        project = lib.create_project("Film")
        shot = lib.create_shot(project.id, "Red car / house")
        variant = lib.create_variant(shot.id, "a red car drives past a house")
        take = lib.add_take(variant.id, make_clip(lib.new_media_path(), (200, 30, 30)), {"request": {"seed": 5}})
        d = ExportDialog.for_takes(lib, [take.id], folder=out)
        qtbot.addWidget(d)
        assert d.items[0].stem == f"Red car _ house take {take.id}"
        assert d.timeline_path() == out / "Red car _ house.otio"
        assert d.table.topLevelItem(0).text(1) == f"Red car _ house take {take.id}.mp4"
    finally:
        lib.close()
    assert safe_stem('a:b*c?"d"') == "a_b_c_d_" and safe_stem("...") == "take"


def test_the_question_box_offers_replace_number_and_skip(qtbot, takes, out):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    (out / "Ball take 1.mp4").write_bytes(b"old")
    d = ExportDialog(takes, folder=out, timeline_name="Ball")
    qtbot.addWidget(d)
    seen = []

    def answer():
        box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
        seen.append(sorted(b.text() for b in box.buttons()))
        seen.append(box.text())
        next(b for b in box.buttons() if b.text() == "Number").click()

    QTimer.singleShot(200, answer)
    with qtbot.waitSignal(d.exportFinished, timeout=60000) as sig:
        assert d.start()
    d.wait()
    assert seen[0] == ["Cancel", "Number", "Replace", "Skip"] and "Ball take 1.mp4" in seen[1]
    assert [p.name for p in sig.args[0].written] == ["Ball take 1 (2).mp4", "Ball take 2.mp4"]


def test_mixed_frame_rates_export_the_clips_and_explain_the_timeline(qtbot, takes, out, tmp_path):
    other = ExportItem(make_clip(tmp_path / "src" / "c.mp4", (40, 200, 40), fps=25), "Ball take 3", 3)
    d = dialog_for(qtbot, [takes[0], other], out)
    summary = run(qtbot, d)
    assert len(summary.written) == 2 and summary.timeline is None
    assert not (out / "Ball.otio").exists()
    assert "The timeline was not written" in d.log_view.toPlainText() and "25 fps" in d.log_view.toPlainText()
    assert "1 problem" in d.status_label.text()
