"""The export dialog offers to create a missing folder (issue 13, defect 8), says a refusal once, and
records what it exports in the library through the same service as `shotsketch export` (defect 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shotsketch.core.library import Library
from shotsketch.media.encode import write_clip
from shotsketch.ui.export_dialog import ExportDialog, ExportItem


def clip(path: Path, frames: int = 9) -> Path:
    data = np.zeros((frames, 48, 64, 3), np.uint8)
    for i in range(frames):
        data[i, :, : 4 + 4 * i] = 200
    return write_clip(data, path)


@pytest.fixture
def items(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    return [ExportItem(clip(src / "a.mp4"), "Kite take 1", None, {"request": {"prompt": "a kite", "seed": 1}})]


def dialog(qtbot, items, folder, **kwargs) -> ExportDialog:
    d = ExportDialog(items, folder=folder, timeline_name="Kite", **kwargs)
    qtbot.addWidget(d)
    d.set_format("mp4")
    d.set_timeline(".xml")
    return d


def shown_text(d: ExportDialog) -> str:
    return d.status_label.text() + "\n" + d.log_view.toPlainText()


def test_a_missing_folder_is_offered_and_created(qtbot, items, tmp_path):
    folder = tmp_path / "exports" / "kite"
    d = dialog(qtbot, items, folder)
    asked: list[Path] = []
    d.ask_create_folder = lambda f: (asked.append(f), True)[1]
    with qtbot.waitSignal(d.exportFinished, timeout=60000) as sig:
        assert d.start()
    d.wait()
    assert asked == [folder] and folder.is_dir()
    assert [p.name for p in sig.args[0].written] == ["Kite take 1.mp4"] and (folder / "Kite.xml").is_file()


def test_declining_to_create_the_folder_says_so_once_and_creates_nothing(qtbot, items, tmp_path):
    folder = tmp_path / "nowhere"
    d = dialog(qtbot, items, folder)
    d.ask_create_folder = lambda f: False
    assert not d.start()
    assert not folder.exists() and not d.is_running()
    assert shown_text(d).count(str(folder)) == 1, shown_text(d)  # one message, not two


def test_other_folder_problems_are_shown_once(qtbot, items, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    d = dialog(qtbot, items, afile)
    d.ask_create_folder = lambda f: pytest.fail("asked to create a folder over a file")
    assert not d.start()
    assert "is a file, not a folder" in d.status_label.text()
    assert shown_text(d).count("is a file, not a folder") == 1


def test_the_default_question_offers_to_create_the_folder(qtbot, items, tmp_path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    folder = tmp_path / "new folder"
    d = dialog(qtbot, items, folder)
    seen: list[str] = []

    def answer() -> None:
        box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
        seen.append(box.text())
        seen.append(" / ".join(sorted(b.text() for b in box.buttons())))
        next(b for b in box.buttons() if b.text() == "Create Folder").click()

    QTimer.singleShot(200, answer)
    with qtbot.waitSignal(d.exportFinished, timeout=60000):
        assert d.start()
    d.wait()
    assert str(folder) in seen[0] and seen[1] == "Cancel / Create Folder"
    assert (folder / "Kite take 1.mp4").is_file()


def test_exports_of_library_takes_are_recorded_with_their_timeline(qtbot, tmp_path):
    lib = Library.open(tmp_path / "lib" / "library.sqlite3")
    try:
        shot = lib.create_shot(lib.create_project("Film").id, "Kite")
        variant = lib.create_variant(shot.id, "a kite")
        take = lib.add_take(variant.id, clip(lib.new_media_path()), {"request": {"prompt": "a kite", "seed": 4}})
        out = tmp_path / "out"
        out.mkdir()
        d = ExportDialog.for_takes(lib, [take.id], folder=out)
        qtbot.addWidget(d)
        d.set_format("prores")
        d.set_timeline(".edl")
        with qtbot.waitSignal(d.exportFinished, timeout=60000) as sig:
            assert d.start()
        d.wait()
        assert sig.args[0].ok
        [export] = lib.list_exports(take.id)
        assert export.format == "prores" and export.file == sig.args[0].written[0].resolve()
        assert export.timeline == sig.args[0].timeline.resolve()
    finally:
        lib.close()


def test_a_gif_export_says_the_rate_it_really_has(qtbot, items, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    d = dialog(qtbot, items, out)
    d.set_format("gif")
    with qtbot.waitSignal(d.exportFinished, timeout=60000):
        assert d.start()
    d.wait()
    assert "plays at 25 fps" in d.log_view.toPlainText()
