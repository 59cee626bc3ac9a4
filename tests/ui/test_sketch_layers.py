"""Region bands and group boxes on the sketch canvas (drawn over the frame, kept through edits)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QUndoStack

from shotsketch.core.phrasing import draft_layout
from shotsketch.ui.canvas import SketchCanvas, unique_name


@pytest.fixture
def canvas(qtbot):
    view = SketchCanvas(QUndoStack())
    view.resize(852, 500)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def _pixel(view: SketchCanvas, x: float, y: float) -> QColor:
    image = view.viewport().grab().toImage()
    point = view.view_point(x, y)
    return image.pixelColor(int(point.x()), int(point.y()))


def test_regions_and_groups_are_drawn_and_survive_an_edit(canvas, qtbot, tmp_path):
    draft = draft_layout("A child stands in the middle of a circle of five adults under a blue sky.", 832 / 480)
    layout = draft.layout
    assert [r.kind.value for r in layout.regions] == ["sky"] and layout.group("adults").count == 5
    blank = _pixel(canvas, 0.5, 0.05)
    canvas.set_sketch(layout, undoable=False)
    qtbot.wait(20)
    sky = _pixel(canvas, 0.97, 0.05)  # a corner of the sky band no box covers
    assert sky.blue() > sky.red() + 10 and sky != blank  # tinted blue
    member = layout.group("adults").boxes_at(0.0)[1]
    inside = _pixel(canvas, member.center_x, member.center_y)
    outside = _pixel(canvas, member.center_x, min(0.99, member.bottom + 0.02))
    assert inside != outside  # the member box is filled with the group's colour
    canvas.viewport().grab().save(str(tmp_path / "regions_and_groups.png"))
    # editing a subject keeps the groups and regions; a new subject cannot take a group's name
    canvas.set_box("child", layout.subject("child").start.translated(0.01, 0.0))
    assert canvas.sketch().groups == layout.groups and canvas.sketch().regions == layout.regions
    assert unique_name(canvas.sketch(), "adults") == "adults 2"


def test_drafting_in_the_window_keeps_the_persons_edits(qtbot, make_window):
    window = make_window()
    window.prompt.draftRequested.emit("A red car drives from the left edge to the right edge. A dog sits on the right.")
    first = window.sketch.sketch()
    moved = first.subject("dog").translated(-0.3, 0.0)  # the person moves the dog by hand
    window.sketch.set_sketch(first.with_subject(moved), undoable=True)
    window.prompt.draftRequested.emit("A red car drives from the right edge to the left edge. A dog sits on the right.")
    sketch = window.sketch.sketch()
    assert sketch.subject("dog") == moved
    car = sketch.subject("red car")
    assert car.end.center_x < car.start.center_x  # untouched since the first draft: drafted again
    assert "Kept your boxes for: dog" in window.statusBar().currentMessage()
    window.prompt.draftRequested.emit("Three ducks swim in a line across the pond.")  # a group alone is a draft
    assert window.sketch.sketch().group("ducks").count == 3


def test_a_redraft_takes_off_the_last_drafts_boxes_the_new_prompt_drops_and_undo_puts_them_back(qtbot, make_window):
    window = make_window()
    window.new_shot()
    window.prompt.draftRequested.emit("A red fox runs from the right edge to the left edge. A cabin stands on the left.")
    assert window.sketch.sketch().names == ("red fox", "cabin")
    window.prompt.draftRequested.emit("A black dog sits on the right.")
    assert window.sketch.sketch().names == ("black dog",)
    assert "no longer in the prompt: red fox, cabin" in window.statusBar().currentMessage()
    assert "red fox" not in window.shot.final_prompt()
    window.sketch.undo_stack.undo()  # one edit: the fox and the cabin come back
    assert window.sketch.sketch().names == ("red fox", "cabin")
    # a prompt with nothing to place still takes the last draft's boxes off
    window.sketch.undo_stack.redo()
    window.prompt.draftRequested.emit("A quiet morning.")
    assert window.sketch.sketch().is_empty


def test_another_shots_draft_takes_nothing_off(qtbot, make_window):
    window = make_window()
    window.new_shot()
    window.prompt.draftRequested.emit("A red fox runs from the right edge to the left edge.")
    fox = window.sketch.sketch()
    assert fox.names == ("red fox",)
    window.new_shot()
    window.sketch.set_sketch(fox, undoable=True)  # the same box, drawn in another shot
    window.prompt.draftRequested.emit("A black dog sits on the right.")
    assert window.sketch.sketch().names == ("red fox", "black dog")
