"""LibraryPanel: the history tree, takes with lazy thumbnails, search, rating/favourite, trash + undo, drag-out."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtTest import QTest

from shotsketch.core.library import Library
from shotsketch.media.encode import write_clip
from shotsketch.media.thumbnail import make_thumbnail
from shotsketch.ui.library_panel import LibraryPanel, NodeKind


def make_clip(path: Path, colour) -> Path:
    frames = np.zeros((9, 48, 64, 3), np.uint8)
    frames[:] = colour
    frames[:, 10:20, 10:30] = 255 - np.array(colour, np.uint8)
    return write_clip(frames, path, fps=12)


@pytest.fixture
def lib(tmp_path):
    library = Library.open(tmp_path / "lib" / "library.sqlite3")
    yield library
    library.close()


@pytest.fixture
def content(lib):
    project = lib.create_project("Film")
    ball = lib.create_shot(project.id, "Ball")
    bird = lib.create_shot(project.id, "Bird")
    v1 = lib.create_variant(ball.id, "a yellow ball rolls from the left to the right")
    v2 = lib.create_variant(ball.id, "a yellow balloon floats from the left to the right", parent_id=v1.id)
    v3 = lib.create_variant(ball.id, "a red ball bounces in the center", parent_id=v2.id)
    v4 = lib.create_variant(bird.id, "a bird flies above the forest")
    takes = []
    for i, (variant, colour) in enumerate([(v1, (200, 40, 40)), (v1, (40, 200, 40)), (v2, (40, 40, 200)),
                                           (v4, (200, 200, 40))]):
        clip = make_clip(lib.new_media_path(".mp4"), colour)
        thumb = make_thumbnail(clip, clip.with_suffix(".png")) if i == 0 else None
        takes.append(lib.add_take(variant.id, clip, {"request": {"seed": 100 + i, "prompt": variant.prompt}},
                                  thumbnail=thumb))
    return {"project": project, "ball": ball, "bird": bird, "variants": (v1, v2, v3, v4), "takes": takes}


@pytest.fixture
def panel(qtbot, lib, content):
    p = LibraryPanel(lib)
    qtbot.addWidget(p)
    p.resize(520, 760)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p._thumbs.shutdown(wait=True)


def item_for(panel, kind, node_id):
    index = panel.index_of(kind, node_id)
    assert index.isValid(), (kind, node_id)
    return index


def children(panel, index):
    return [panel.tree_model.index(i, 0, index).data() for i in range(panel.tree_model.rowCount(index))]


def test_tree_lists_projects_shots_and_variant_history(panel, content):
    v1, v2, v3, v4 = content["variants"]
    project = item_for(panel, NodeKind.PROJECT, content["project"].id)
    assert project.data() == "Film"
    assert children(panel, project) == ["Ball", "Bird"]
    first = item_for(panel, NodeKind.VARIANT, v1.id)
    assert first.parent() == item_for(panel, NodeKind.SHOT, content["ball"].id)
    assert item_for(panel, NodeKind.VARIANT, v2.id).parent() == first  # a variant sits under its parent
    assert item_for(panel, NodeKind.VARIANT, v3.id).parent() == item_for(panel, NodeKind.VARIANT, v2.id)
    assert "yellow ball" in first.data() and "(2)" in first.data()
    assert item_for(panel, NodeKind.TRASH, 0).data() == "Trash (0)"


def test_selecting_shows_takes_with_lazily_loaded_thumbnails(qtbot, panel, content, monkeypatch):
    import shotsketch.ui.library_panel as lp

    threads = []
    real = lp._thumbnail_image
    monkeypatch.setattr(lp, "_thumbnail_image", lambda take: (threads.append(threading.current_thread()), real(take))[1])
    panel.select_shot(content["ball"].id)
    ids = [t.id for t in panel.shown_takes()]
    assert ids == [t.id for t in content["takes"][:3]]
    model = panel.takes_model
    qtbot.waitUntil(lambda: all(model.thumbnail_loaded(i) for i in ids), timeout=15000)
    assert threads and all(t is not threading.main_thread() for t in threads)
    pixmap = model.data(model.index(1), Qt.ItemDataRole.DecorationRole)
    assert not pixmap.isNull() and pixmap.width() <= 160
    colour = pixmap.toImage().pixelColor(pixmap.width() - 3, pixmap.height() - 3)
    assert colour.green() > 150 and colour.red() < 100  # take 2 is green: its own middle frame
    assert model.data(model.index(0)) == f"v{content['variants'][0].id} · take {content['takes'][0].id} · seed 100"

    with qtbot.waitSignal(panel.variantSelected) as sig:
        panel.tree.setCurrentIndex(item_for(panel, NodeKind.VARIANT, content["variants"][1].id))
    assert sig.args == [content["variants"][1].id]
    assert [t.id for t in panel.shown_takes()] == [content["takes"][2].id]


def test_search_filters_variants_and_takes(panel, content):
    v1, v2, v3, v4 = content["variants"]
    panel.select_shot(content["ball"].id)
    panel.set_search("balloon")
    assert panel.visible_variant_ids() == [v2.id]
    assert panel.is_hidden(item_for(panel, NodeKind.SHOT, content["bird"].id))
    assert not panel.is_hidden(item_for(panel, NodeKind.VARIANT, v1.id))  # shown (dimmed) as v2's ancestor
    assert [t.id for t in panel.shown_takes()] == [content["takes"][2].id]
    panel.set_search("forest")
    assert panel.visible_variant_ids() == [v4.id]
    panel.set_search("")
    assert panel.visible_variant_ids() == sorted(v.id for v in content["variants"])


def card(panel, row):
    index = panel.takes_model.index(row)
    rect = panel.take_view.visualRect(index)
    return panel.delegate.geometry(rect, panel.take_view.font())


def test_rating_and_favourite_by_clicking_persist(qtbot, panel, lib, content):
    panel.select_shot(content["ball"].id)
    take = panel.shown_takes()[0]
    g = card(panel, 0)
    viewport = panel.take_view.viewport()
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=g.stars[2].center())
    assert lib.get_take(take.id).rating == 3
    assert panel.shown_takes()[0].rating == 3
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=g.stars[2].center())  # the lit last star again
    assert lib.get_take(take.id).rating == 0
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=g.stars[4].center())
    assert lib.get_take(take.id).rating == 5
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=g.heart.center())
    assert lib.get_take(take.id).favourite is True
    panel.favourites_box.setChecked(True)
    assert [t.id for t in panel.shown_takes()] == [take.id]
    panel.set_favourite(take.id, False)
    assert lib.get_take(take.id).favourite is False and panel.shown_takes() == []


def test_delete_to_trash_and_undo(qtbot, panel, lib, content):
    panel.select_shot(content["ball"].id)
    doomed = content["takes"][1].id
    panel.select_takes([doomed])
    assert panel.trash_button.isEnabled()
    panel.trash_button.click()
    assert lib.get_take(doomed).deleted
    assert doomed not in [t.id for t in panel.shown_takes()]
    assert item_for(panel, NodeKind.TRASH, 0).data() == "Trash (1)"
    assert panel.notice.isVisible() and "trash" in panel.notice.label.text()
    panel.notice.action_button.click()  # "Undo"
    assert not lib.get_take(doomed).deleted
    assert doomed in [t.id for t in panel.shown_takes()]
    panel.undo_stack.redo()
    assert lib.get_take(doomed).deleted
    # the trash lists it and can restore it
    panel.tree.setCurrentIndex(item_for(panel, NodeKind.TRASH, 0))
    assert [t.id for t in panel.shown_takes()] == [doomed] and panel.restore_button.isVisible()
    panel.select_takes([doomed])
    panel.restore_button.click()
    assert not lib.get_take(doomed).deleted and panel.shown_takes() == []


def test_branch_from_here_and_other_signals(qtbot, panel, content):
    v2 = content["variants"][1]
    menu = panel.tree_menu(item_for(panel, NodeKind.VARIANT, v2.id))
    branch = next(a for a in menu.actions() if a.text() == "Branch from here")
    with qtbot.waitSignal(panel.branchRequested) as sig:
        branch.trigger()
    assert sig.args == [v2.id]

    shot_item = item_for(panel, NodeKind.SHOT, content["bird"].id)
    rect = panel.tree.visualRect(shot_item)
    with qtbot.waitSignal(panel.shotOpened) as sig:  # one click opens a shot (defect 1)
        QTest.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sig.args == [content["bird"].id]

    panel.select_shot(content["ball"].id)
    ids = [content["takes"][0].id, content["takes"][2].id]
    panel.select_takes(ids)
    with qtbot.waitSignal(panel.exportRequested) as sig:
        panel.export_button.click()
    assert sig.args == [ids]
    with qtbot.waitSignal(panel.takeActivated) as sig:
        panel.take_view.activated.emit(panel.takes_model.index(1))
    assert sig.args == [content["takes"][1].id]


def test_drag_offers_the_take_files_as_urls(qtbot, panel, content):
    panel.select_shot(content["ball"].id)
    take = content["takes"][0]
    offer = panel.take_drag_offer([take.id])
    assert offer.mime is not None and not offer.missing
    assert offer.mime.urls() == [QUrl.fromLocalFile(str(take.file.resolve()))]
    assert offer.mime.hasFormat("text/uri-list")
    assert bytes(offer.mime.data("text/uri-list")).decode().strip() == QUrl.fromLocalFile(str(take.file.resolve())).toString()
    # the model (what QListView's drag uses) gives the same for a selection
    panel.select_takes([take.id, content["takes"][1].id])
    mime = panel.takes_model.mimeData(panel.take_view.selectedIndexes())
    assert [u.toLocalFile() for u in mime.urls()] == [str(take.file.resolve()), str(content["takes"][1].file.resolve())]


def test_a_take_whose_file_was_deleted_offers_nothing_and_says_so(qtbot, panel, content):
    panel.select_shot(content["ball"].id)
    take = content["takes"][1]
    take.file.unlink()
    offer = panel.take_drag_offer([take.id])
    assert offer.mime is None and "missing" in offer.message
    panel.select_takes([take.id])
    with qtbot.waitSignal(panel.take_view.dragRefused) as sig:
        panel.take_view.startDrag(Qt.DropAction.CopyAction)
    assert "missing" in sig.args[0]
    assert panel.notice.isVisible() and "missing" in panel.notice.label.text()
    assert panel.takes_model.data(panel.takes_model.index(1), Qt.ItemDataRole.ToolTipRole).endswith(
        "(missing: deleted or moved)")


def test_delete_key_moves_the_selection_to_the_trash(qtbot, panel, lib, content):
    panel.select_shot(content["ball"].id)
    take = content["takes"][0]
    panel.select_takes([take.id])
    panel.take_view.setFocus()
    qtbot.waitUntil(panel.take_view.hasFocus)
    QTest.keyClick(panel.take_view, Qt.Key.Key_Delete)
    assert lib.get_take(take.id).deleted
    QTest.keyClick(panel.take_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not lib.get_take(take.id).deleted


def test_refresh_keeps_the_selected_node_and_shows_new_takes(qtbot, panel, lib, content):
    v2 = content["variants"][1]
    panel.select_variant(v2.id)
    clip = make_clip(lib.new_media_path(".mp4"), (10, 10, 10))
    new = lib.add_take(v2.id, clip, {})
    panel.refresh()
    assert panel._current_key() == (NodeKind.VARIANT, v2.id)
    assert [t.id for t in panel.shown_takes()] == [content["takes"][2].id, new.id]


def test_a_takes_attention_share_is_named_so_and_shown_whole(qtbot, panel, lib, content):
    """Defect 10: "fit 0.91" read as a quality score and was cut off in the card."""
    from PySide6.QtGui import QFontMetrics

    from shotsketch.media.heatmaps import adherence_summary

    v1 = content["variants"][0]
    recipe = {"request": {"seed": 123456}, "layout_guidance": {"adherence": {"ball": 0.93, "cube": 0.89}}}
    take = lib.add_take(v1.id, make_clip(lib.new_media_path(".mp4"), (9, 9, 9)), recipe)
    assert adherence_summary(recipe) == "91% attention in boxes"
    panel.refresh()
    panel.select_variant(v1.id)
    row = panel.takes_model.row_of(take.id)
    assert "fit" not in panel.takes_model.data(panel.takes_model.index(row))
    g = card(panel, row)
    font = panel.take_view.font()
    assert QFontMetrics(font).horizontalAdvance("91% attention in boxes") <= g.share.width()
    assert "attention" in panel.takes_model.data(panel.takes_model.index(row), Qt.ItemDataRole.ToolTipRole)


def test_the_tree_is_one_model_updated_in_place_when_a_take_is_saved(qtbot, panel, lib, content, monkeypatch):
    """One query for the whole tree; a saved take changes its variant's row, nothing is rebuilt."""
    v1, v2, v3, v4 = content["variants"]
    panel.select_variant(v2.id)
    panel.tree.collapse(item_for(panel, NodeKind.SHOT, content["bird"].id))
    per_variant = []
    monkeypatch.setattr(lib, "variant_tree", lambda *a: per_variant.append(a))
    resets = []
    panel.tree_model.modelReset.connect(lambda: resets.append(1))
    take = lib.add_take(v2.id, make_clip(lib.new_media_path(".mp4"), (1, 2, 3)), {})
    panel.take_saved(take)
    assert "(2)" in item_for(panel, NodeKind.VARIANT, v2.id).data()
    assert take.id in [t.id for t in panel.shown_takes()]
    # a take of a new variant inserts that variant under its parent; the rest stays as it was
    v5 = lib.create_variant(content["ball"].id, "a ball in the rain", parent_id=v3.id)
    inserted = []
    panel.tree_model.rowsInserted.connect(lambda parent, first, last: inserted.append((parent, first, last)))
    panel.take_saved(lib.add_take(v5.id, make_clip(lib.new_media_path(".mp4"), (3, 2, 1)), {}))
    assert inserted == [(item_for(panel, NodeKind.VARIANT, v3.id), 0, 0)]
    assert item_for(panel, NodeKind.VARIANT, v5.id).parent() == item_for(panel, NodeKind.VARIANT, v3.id)
    assert panel._current_key() == (NodeKind.VARIANT, v2.id)
    assert not panel.tree.isExpanded(item_for(panel, NodeKind.SHOT, content["bird"].id))
    assert resets == [] and per_variant == []


def test_the_open_shot_is_bold_and_selected_without_a_signal(qtbot, panel, content):
    opened = []
    panel.shotOpened.connect(opened.append)
    panel.set_open_shot(content["bird"].id)
    index = item_for(panel, NodeKind.SHOT, content["bird"].id)
    assert index.data(Qt.ItemDataRole.FontRole).bold()
    assert panel.tree.currentIndex() == index and opened == []
    panel.set_open_shot(content["ball"].id)
    assert item_for(panel, NodeKind.SHOT, content["ball"].id).data(Qt.ItemDataRole.FontRole).bold()
    assert item_for(panel, NodeKind.SHOT, content["bird"].id).data(Qt.ItemDataRole.FontRole) is None


def test_one_selected_take_shows_its_exports_below(qtbot, panel, lib, content, tmp_path):
    take = content["takes"][0]
    lib.add_export(take.id, "mp4", make_clip(tmp_path / "out.mp4", (5, 5, 5)))
    panel.select_shot(content["ball"].id)
    assert panel.exports_view.isHidden()  # no take selected
    panel.select_takes([take.id])
    assert panel.exports_view.take_id == take.id and not panel.exports_view.isHidden()
    assert panel.exports_view.tree.topLevelItemCount() == 1
    panel.select_takes([take.id, content["takes"][1].id])
    assert panel.exports_view.isHidden()
