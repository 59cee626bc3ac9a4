"""Issue 13, defect 11: text a person must read is shown whole, and the window is usable at 1280x720."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QApplication, QLabel, QScrollArea

from shotsketch.core.lint import DEFAULT_NEGATIVE


def shown_whole(label: QLabel) -> bool:
    """The label's text fits inside it (wrapped when it wraps)."""
    area = label.contentsRect()
    flags = Qt.TextFlag.TextWordWrap if label.wordWrap() else 0
    need = label.fontMetrics().boundingRect(QRect(0, 0, area.width(), 10_000), flags, label.text())
    return need.width() <= area.width() and need.height() <= area.height()


def test_the_negative_prompt_shows_all_its_lines(qtbot):
    from shotsketch.ui.prompt_editor import PromptPanel

    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.resize(500, 320)  # the prompt dock at 1280x720
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_negative_prompt(DEFAULT_NEGATIVE)
    qtbot.waitUntil(lambda: panel.negative_edit.document().blockCount() >= 1)
    QApplication.processEvents()
    assert panel.negative_edit.verticalScrollBar().maximum() == 0  # nothing scrolled out of sight


def test_queue_cards_show_size_and_frames_whole(qtbot, make_request):
    from shotsketch.ui.queue_panel import QueuedJob, QueuePanel

    panel = QueuePanel()
    qtbot.addWidget(panel)
    panel.resize(250, 260)  # the queue dock under the library
    panel.show()
    qtbot.waitExposed(panel)
    panel.add_job(QueuedJob("a", make_request(width=1280, height=704, frames=121), "Seed 12345678"))
    for other in "bcd":  # more cards than fit: the list scrolls, its scroll bar takes room
        panel.add_job(QueuedJob(other, make_request(), "Seed 1"))
    row = panel.row("a")
    assert "121 frames" in row.detail.text()
    qtbot.waitUntil(lambda: shown_whole(row.detail) and shown_whole(row.title), timeout=2000)
    viewport = panel.findChild(QScrollArea).viewport()
    button = row.cancel_button
    qtbot.waitUntil(lambda: 0 < button.mapTo(viewport, QPoint(button.width(), 0)).x() <= viewport.width(),
                    timeout=2000)  # the ✕ is not cut off


def test_long_library_names_are_not_cut(qtbot, library):
    from shotsketch.ui.library_panel import LibraryPanel
    from shotsketch.ui.library_tree import NodeKind

    project = library.create_project("Commercial for the regional tourism board, spring campaign")
    shot = library.create_shot(project.id, "Opening aerial over the harbour at sunrise, slow push in")
    panel = LibraryPanel(library)
    qtbot.addWidget(panel)
    panel.resize(260, 600)
    panel.show()
    qtbot.waitExposed(panel)
    index = panel.index_of(NodeKind.SHOT, shot.id)
    rect = panel.tree.visualRect(index)
    text_width = panel.tree.fontMetrics().horizontalAdvance(index.data())
    assert rect.width() >= text_width  # the row is as wide as its name (the tree scrolls sideways)
    assert panel.tree.horizontalScrollBar().maximum() > 0


def test_the_colour_buttons_arrow_is_part_of_it(qtbot):
    from shotsketch.ui.sketch_panel import SketchPanel

    panel = SketchPanel()
    qtbot.addWidget(panel)
    button = panel.color_button
    assert button.text().endswith("▾")  # drawn with the word, not in a corner of its own
    assert "menu-indicator" in button.styleSheet()


def test_the_splash_is_painted_before_the_engine_is_imported(qtbot, qapp):
    from shotsketch.ui.app import _splash

    splash = _splash(qapp)
    assert splash is not None
    try:
        assert splash.painted  # painted at once, not when the imports are done
    finally:
        splash.close()


def test_the_preview_is_large_at_1280x720(make_window, qtbot):
    window = make_window()
    window.resize_for_screenshot(QSize(1280, 720))
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(50)
    preview = window.timeline.view
    # the picture area: at least 500 px wide and 280 px high (a 16:9 clip shown at 500x281)
    assert preview.width() >= 500 and preview.height() >= 280, (preview.width(), preview.height())


def test_new_shot_puts_the_cursor_in_the_prompt(make_window, qtbot):
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.library_panel.search_edit.setFocus()
    window.new_shot()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.prompt.editor, timeout=3000)


def test_settings_and_the_toolbar_offer_one_layout_strength_range(make_window, qtbot):
    """Defect 5: Settings took 5.0 (0-10) while the slider showed 3.0 (0-3)."""
    from shotsketch.core.ranges import RANGES
    from shotsketch.core.settings import AppSettings
    from shotsketch.ui.settings_dialog import SettingsDialog

    strength = RANGES["layout_strength"]
    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    assert (dialog.strength_box.minimum(), dialog.strength_box.maximum()) == (strength.low, strength.high)
    dialog.strength_box.setValue(5.0)
    assert dialog.strength_box.value() == strength.high  # 5.0 cannot be entered
    window = make_window()
    slider = window.generate_bar.strength_slider
    assert (slider.minimum() / 10, slider.maximum() / 10) == (strength.low, strength.high)
    window.shot.set_layout_strength(2.5)
    assert slider.value() == 25 and "2.5" in window.generate_bar.strength_label.text()


def test_the_seed_field_holds_any_seed_of_the_range(make_window):
    """Defect 7 in the window: a 64-bit seed is shown and generated as it is, not cut to 2^31-1."""
    window = make_window()
    big = 2**63 + 12345
    window.shot.update_settings(seed=big)
    assert window.generate_bar.seed_box.text() == str(big)
    assert window.shot.request().seed == big
    window.generate_bar.seed_box.setValue(2**40)
    assert window.shot.settings.seed == 2**40
