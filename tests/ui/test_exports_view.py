"""ExportsView: a take's exported clips, a moved or deleted one marked, revealed, written again (issue 13, defect 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shotsketch.app.exports import ExportRequest, export_clip
from shotsketch.core.library import Library
from shotsketch.media.encode import ClipFormat, write_clip
from shotsketch.media.probe import probe_video
from shotsketch.ui.exports_view import ExportsView


@pytest.fixture
def setup(tmp_path):
    lib = Library.open(tmp_path / "lib" / "library.sqlite3")
    shot = lib.create_shot(lib.create_project("Film").id, "Kite")
    variant = lib.create_variant(shot.id, "a kite rises")
    data = np.zeros((9, 48, 64, 3), np.uint8)
    for i in range(9):
        data[i, :, : 4 + 4 * i] = 200
    take = lib.add_take(variant.id, write_clip(data, lib.new_media_path()), {"request": {"prompt": "a kite"}})
    out = tmp_path / "out"
    out.mkdir()
    mov = export_clip(ExportRequest(take.file, out / "kite.mov", ClipFormat.PRORES, take_id=take.id), library=lib)
    gif = export_clip(ExportRequest(take.file, out / "kite.gif", ClipFormat.GIF, take_id=take.id), library=lib)
    lib.set_export_timeline([mov.export.id], out / "Cut.xml")
    yield lib, take, mov.export, gif.export
    lib.close()


def view_for(qtbot, lib, take_id) -> ExportsView:
    view = ExportsView(lib)
    qtbot.addWidget(view)
    view.set_take(take_id)
    return view


def row_texts(view: ExportsView) -> list[list[str]]:
    tree = view.tree
    return [[tree.topLevelItem(r).text(c) for c in range(tree.columnCount())] for r in range(tree.topLevelItemCount())]


def test_lists_a_takes_exports_newest_first_with_format_and_timeline(qtbot, setup):
    lib, take, mov, gif = setup
    view = view_for(qtbot, lib, take.id)
    rows = row_texts(view)
    assert [r[0] for r in rows] == ["kite.gif", "kite.mov"]
    assert rows[0][1] == "GIF" and rows[1][1] == "ProRes"
    assert view.tree.topLevelItem(1).toolTip(1) == "MOV (ProRes 422 HQ) at 24 fps"
    assert rows[1][2] == "Cut.xml" and rows[0][2] == ""
    assert all(r[4] == "" for r in rows) and view.tree.isColumnHidden(4)  # both files are there: no status column
    assert view.export_id_at(0) == gif.id
    view.set_take(None)
    assert view.tree.topLevelItemCount() == 0 and not view.empty_label.isHidden()


def test_a_moved_or_deleted_export_is_marked(qtbot, setup, tmp_path):
    lib, take, mov, _gif = setup
    view = view_for(qtbot, lib, take.id)
    mov.file.rename(tmp_path / "moved.mov")
    qtbot.waitUntil(lambda: row_texts(view)[1][4] == "Missing", timeout=5000)  # watched folder
    assert not view.tree.isColumnHidden(4)
    item = view.tree.topLevelItem(1)
    assert item.font(0).strikeOut() and str(mov.file) in item.toolTip(4) and "moved or deleted" in item.toolTip(4)
    assert view.selected_export().id == view.export_id_at(0)  # the newest is selected on showing a take
    view.select_export(mov.id)
    assert view.reexport_button.isEnabled() and view.reveal_button.isEnabled()


def test_reveal_asks_the_file_manager_for_the_file_or_its_folder(qtbot, setup):
    lib, take, mov, gif = setup
    view = view_for(qtbot, lib, take.id)
    shown: list[Path] = []
    view.show_in_file_manager = lambda path: (shown.append(path), True)[1]
    view.select_export(gif.id)
    view.reveal_button.click()
    assert shown == [gif.file]
    mov.file.unlink()
    view.refresh()
    view.select_export(mov.id)
    view.reveal_button.click()
    assert shown[-1] == mov.file.parent  # the file is gone: its folder
    assert "missing" in view.status_label.text()


def test_reexport_writes_a_deleted_export_back_and_unmarks_it(qtbot, setup):
    lib, take, mov, _gif = setup
    view = view_for(qtbot, lib, take.id)
    mov.file.unlink()
    view.refresh()
    view.select_export(mov.id)
    with qtbot.waitSignal(view.reexported, timeout=60000) as sig:
        view.reexport_button.click()
    assert sig.args == [mov.id]
    info = probe_video(mov.file)
    assert (info.codec, info.profile, info.frames) == ("prores", "HQ", 9)
    assert row_texts(view)[[r[0] for r in row_texts(view)].index("kite.mov")][4] == ""
    assert "Exported again" in view.status_label.text()


def test_reexport_of_a_present_file_asks_before_replacing(qtbot, setup):
    lib, take, _mov, gif = setup
    view = view_for(qtbot, lib, take.id)
    before = gif.file.stat().st_mtime_ns
    view.confirm_replace = lambda path: False
    view.select_export(gif.id)
    view.reexport_button.click()
    assert not view.is_running() and gif.file.stat().st_mtime_ns == before


def test_reexport_into_a_removed_folder_offers_to_create_it(qtbot, setup):
    import shutil

    lib, take, mov, _gif = setup
    view = view_for(qtbot, lib, take.id)
    shutil.rmtree(mov.file.parent)
    view.refresh()
    view.select_export(mov.id)
    view.ask_create_folder = lambda folder: False
    view.reexport_button.click()
    assert not view.is_running() and not mov.file.parent.exists()
    assert "gone too" in view.status_label.text() or "does not exist" in view.status_label.text()
    view.ask_create_folder = lambda folder: True
    with qtbot.waitSignal(view.reexported, timeout=60000):
        view.reexport_button.click()
    assert mov.file.is_file()
