"""The prompt panel: highlighting, lint with fixes, negative presets, clause merging, shortcuts."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCharFormat
from PySide6.QtTest import QTest

from shotsketch.core.examples import example_shot
from shotsketch.core.lint import DEFAULT_NEGATIVE, NEGATIVE_PRESETS
from shotsketch.core.phrasing import describe
from shotsketch.ui.prompt_editor import LINT_DELAY_MS, PromptPanel, compose_prompt


@pytest.fixture
def panel(qtbot):
    p = PromptPanel()
    p.resize(600, 500)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    return p


def _cursor_at(editor, pos):
    cursor = editor.textCursor()
    cursor.setPosition(pos)
    return cursor


def formats_at(editor, pos):
    block = editor.document().findBlock(pos)
    ranges = block.layout().formats()
    return [QTextCharFormat(r.format) for r in ranges if r.start <= pos - block.position() < r.start + r.length]


def test_typing_lints_after_a_pause_and_fix_replaces_near(panel, qtbot):
    editor = panel.editor
    editor.setFocus()
    QTest.keyClicks(editor, "A red car parked near the house")
    assert panel.findings() == []  # not yet: lint waits for typing to stop
    qtbot.waitUntil(lambda: any(f.code == "vague-spatial" for f in panel.findings()), timeout=LINT_DELAY_MS * 8)
    finding = next(f for f in panel.findings() if f.code == "vague-spatial")
    assert panel.prompt()[slice(*finding.span)] == "near"
    # hovering the word shows the message and the suggestion
    tip = editor.tooltip_at(editor.cursorRect(_cursor_at(editor, finding.span[0] + 1)).center())
    assert "does not say where" in tip and "to the left of" in tip
    # underlined with a wave, and listed with a Fix button
    fmt = formats_at(editor, finding.span[0] + 1)[0]
    assert fmt.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline
    row = next(r for r in panel.finding_rows() if r.finding == finding)
    assert row.fix_button is not None and row.isVisibleTo(panel)
    QTest.mouseClick(row.fix_button, Qt.MouseButton.LeftButton)
    assert panel.prompt() == "A red car parked " + finding.replacement + " the house"
    assert "near" not in panel.prompt()
    assert panel.editor.tooltip_at(editor.cursorRect(_cursor_at(editor, finding.span[0] + 1)).center()) == ""
    assert not any(f.code == "vague-spatial" for f in panel.findings())
    assert not any(r.finding.code == "vague-spatial" for r in panel.finding_rows())
    # the fix is one step of the editor's own undo
    editor.undo()
    assert panel.prompt() == "A red car parked near the house"


def test_fix_from_the_context_menu_entry(panel):
    panel.set_prompt("A dog sits somewhere in the frame.")
    finding = next(f for f in panel.findings() if f.code == "vague-spatial")
    assert panel.editor.findings_at(finding.span[0] + 2) == [finding]
    assert panel.editor.fix_actions(0, panel) == []  # nothing to fix at "A"
    (action,) = panel.editor.fix_actions(finding.span[0] + 2, panel)
    assert action.text() == 'Fix: use "in the center"'
    action.trigger()
    assert panel.prompt() == "A dog sits in the center."
    assert panel.findings() == []


def test_spatial_words_are_highlighted(panel):
    panel.set_prompt("A ball rolls from the left edge to the center.")
    panel.editor.highlighter.rehighlight()
    pos = panel.prompt().index("left edge") + 1
    assert any(f.fontWeight() >= 600 for f in formats_at(panel.editor, pos))
    assert not any(f.fontWeight() >= 600 for f in formats_at(panel.editor, panel.prompt().index("ball") + 1))


def test_negative_prompt_presets_and_default(panel):
    assert panel.negative_prompt() == DEFAULT_NEGATIVE  # empty field
    index = panel.preset_box.findData("minimal")
    panel.preset_box.activated.emit(index)
    assert panel.negative_prompt() == NEGATIVE_PRESETS["minimal"]
    panel.negative_edit.undo()
    assert panel.negative_prompt() == DEFAULT_NEGATIVE
    panel.set_negative_prompt("blurry")
    assert panel.negative_prompt() == "blurry"


def test_draft_button_emits_the_prompt(panel, qtbot):
    panel.set_prompt("A yellow ball on the left.")
    with qtbot.waitSignal(panel.draftRequested) as sig:
        QTest.mouseClick(panel.draft_button, Qt.MouseButton.LeftButton)
    assert sig.args == ["A yellow ball on the left."]


def test_spatial_clause_shows_in_the_final_prompt(panel):
    panel.set_prompt("A cinematic shot of a sunny park")
    clause = "The yellow ball moves from the left edge to the center."
    panel.set_spatial_clause(clause)
    assert clause in panel.clause_label.text()
    assert panel.final_prompt() == "A cinematic shot of a sunny park. " + clause
    # typing in the prompt keeps the final prompt live
    panel.editor.moveCursor(panel.editor.textCursor().MoveOperation.End)
    QTest.keyClicks(panel.editor, " at dusk")
    assert panel.final_prompt() == "A cinematic shot of a sunny park at dusk. " + clause


def test_a_clause_the_prompt_already_says_is_not_repeated(panel):
    shot = example_shot("yellow_ball")
    clause = describe(shot.layout)
    panel.set_prompt(shot.prompt)
    panel.set_spatial_clause(clause)
    assert panel.final_prompt() == shot.prompt
    assert compose_prompt("x. " + clause, clause) == "x. " + clause
    assert compose_prompt("", clause) == clause
    assert compose_prompt("A ball", "") == "A ball"


def test_hand_edited_final_prompt_is_kept_until_reset(panel):
    panel.set_prompt("A ball in a park")
    panel.set_spatial_clause("The ball moves from the left to the right.")
    panel.final_edit.setFocus()
    panel.final_edit.moveCursor(panel.final_edit.textCursor().MoveOperation.End)
    QTest.keyClicks(panel.final_edit, " Golden hour.")
    edited = panel.final_prompt()
    assert edited.endswith("Golden hour.") and panel.final_prompt_edited()
    assert panel.reset_button.isEnabled()
    panel.set_spatial_clause("The ball moves from the right to the left.")
    panel.set_prompt("A red ball in a park")
    assert panel.final_prompt() == edited
    QTest.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert panel.final_prompt() == "A red ball in a park. The ball moves from the right to the left."
    assert not panel.final_prompt_edited() and not panel.reset_button.isEnabled()


def test_ctrl_enter_emits_generate_requested(panel, qtbot):
    panel.set_prompt("A ball")
    panel.editor.setFocus()
    with qtbot.waitSignal(panel.generateRequested):
        QTest.keyClick(panel.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert panel.prompt() == "A ball"  # no newline typed
    panel.editor.moveCursor(panel.editor.textCursor().MoveOperation.End)
    QTest.keyClick(panel.editor, Qt.Key.Key_Return)
    assert panel.prompt() == "A ball\n"
