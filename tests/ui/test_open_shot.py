"""Issue 13, defect 1: the shot the library shows is the shot the editors hold and Generate queues."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest


def click_shot(window, shot_id: int) -> None:
    from shotsketch.ui.library_tree import NodeKind

    panel = window.library_panel
    index = panel.index_of(NodeKind.SHOT, shot_id)
    panel.tree.scrollTo(index)
    QTest.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=panel.tree.visualRect(index).center())


def test_one_click_on_a_shot_opens_it_and_generate_follows(qtbot, make_window, fake_engine):
    window = make_window(fake_engine)
    window.show()
    qtbot.waitExposed(window)
    example = window.current_shot()
    window.new_shot()  # an empty "Shot 2", now open
    other = window.current_shot()
    assert other.id != example.id
    window.prompt.set_prompt("A paper boat drifts from the left edge to the right edge")
    click_shot(window, example.id)
    assert window.current_shot().id == example.id  # opened by one click, not only its takes shown
    assert window.prompt.prompt().startswith("A yellow ball")
    assert "yellow ball" in window.sketch.sketch().names
    assert example.name in window.windowTitle()
    with qtbot.waitSignal(window.takeSaved, timeout=10_000) as saved:
        window.generate(1)
    assert fake_engine.requests[0].prompt.startswith("A yellow ball")
    assert window.library.get_variant(saved.args[0].variant_id).shot_id == example.id
    # the other shot kept what was typed into it
    click_shot(window, other.id)
    assert window.prompt.prompt() == "A paper boat drifts from the left edge to the right edge"


def test_new_shot_clears_the_preview_of_the_old_take(qtbot, make_window, fake_engine):
    window = make_window(fake_engine)
    with qtbot.waitSignal(window.takeSaved, timeout=10_000):
        window.generate(1)
    qtbot.waitUntil(lambda: window.timeline.frame_count() > 0, timeout=10_000)
    assert window.timeline.view.path is not None
    window.new_shot()
    assert window.timeline.frame_count() == 0 and window.timeline.view.path is None
    assert window.timeline.view.layout_shown() is None  # no boxes of the old take either


def test_file_export_opens_the_export_dialog_for_the_selected_takes(qtbot, make_window, fake_engine):
    """Defect 8: the window had no File ▸ Export."""
    from shotsketch.ui.export_dialog import ExportDialog

    window = make_window(fake_engine)
    export = window.window_actions.export
    assert export in window.menuBar().actions()[0].menu().actions()  # in the File menu
    export.trigger()  # nothing selected, nothing shown: one sentence, no dialog
    assert "Select the takes" in window.errors.history[-1].message
    with qtbot.waitSignal(window.takeSaved, timeout=10_000) as saved:
        window.generate(1)
    take = saved.args[0]
    window.library_panel.select_takes([take.id])
    export.trigger()
    dialogs = [d for d in window.findChildren(ExportDialog) if d.isVisible()]
    assert len(dialogs) == 1 and [item.take_id for item in dialogs[0].items] == [take.id]
    dialogs[0].close()
