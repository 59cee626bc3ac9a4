"""The sketch canvas, driven with real mouse and key events on its viewport."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QUndoStack
from PySide6.QtWidgets import QApplication
from PySide6.QtTest import QTest

from shotsketch.core.examples import example_shot
from shotsketch.core.layout import Box, Layout, Subject
from shotsketch.ui.canvas import SNAP_PX, SketchCanvas, path_keyframes, simplify
from shotsketch.ui.sketch_panel import SketchPanel

NO = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def _send(widget, kind, pos: QPointF, buttons, button, modifiers):
    event = QMouseEvent(kind, QPointF(pos), widget.mapToGlobal(QPointF(pos)), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def drag(widget, points, modifiers=NO):
    """Press at points[0], move through the rest, release at the last: real QMouseEvents."""
    points = [QPointF(p) for p in points]
    _send(widget, QEvent.Type.MouseButtonPress, points[0], LEFT, LEFT, modifiers)
    for p in points[1:]:
        _send(widget, QEvent.Type.MouseMove, p, LEFT, Qt.MouseButton.NoButton, modifiers)
    _send(widget, QEvent.Type.MouseButtonRelease, points[-1], Qt.MouseButton.NoButton, LEFT, modifiers)


def line(a: QPointF, b: QPointF, steps: int = 8):
    return [a + (b - a) * (i / steps) for i in range(steps + 1)]


@pytest.fixture
def canvas(qtbot):
    stack = QUndoStack()
    view = SketchCanvas(stack)
    view.resize(832 + 20, 480 + 20)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.name_provider = lambda: "yellow ball"
    view.set_sketch(Layout(aspect=832 / 480), undoable=False)
    return view


@pytest.fixture
def panel(qtbot):
    p = SketchPanel()
    p.resize(900, 560)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    p.canvas.name_provider = lambda: "ball"
    return p


def tol(view) -> tuple[float, float]:
    frame = view.frame_in_view()
    return SNAP_PX / frame.width() + 2 / frame.width(), SNAP_PX / frame.height() + 2 / frame.height()


def vp(view, x, y) -> QPointF:
    return view.view_point(x, y)


def make_box(view, box=(0.2, 0.2, 0.45, 0.55), modifiers=Qt.KeyboardModifier.AltModifier):
    l, t, r, b = box
    drag(view.viewport(), line(vp(view, l, t), vp(view, r, b)), modifiers)


def assert_box(actual: Box, expected, tx, ty):
    l, t, r, b = expected
    assert actual.left == pytest.approx(l, abs=tx)
    assert actual.right == pytest.approx(r, abs=tx)
    assert actual.top == pytest.approx(t, abs=ty)
    assert actual.bottom == pytest.approx(b, abs=ty)


def test_frame_is_letterboxed_at_the_shot_aspect(canvas):
    frame = canvas.frame_in_view()
    assert frame.width() / frame.height() == pytest.approx(832 / 480, rel=1e-3)
    vw, vh = canvas.viewport().width(), canvas.viewport().height()
    assert frame.left() >= 0 and frame.right() <= vw and frame.top() >= 0 and frame.bottom() <= vh
    canvas.resize(500, 500)  # taller than the frame: bars above and below
    QApplication.processEvents()
    frame = canvas.frame_in_view()
    assert frame.width() / frame.height() == pytest.approx(832 / 480, rel=1e-3)
    assert frame.top() > 50 and abs(frame.center().y() - canvas.viewport().height() / 2) < 2


def test_drag_on_empty_space_creates_a_named_box(canvas, qtbot):
    asked = []
    canvas.name_provider = lambda: asked.append(1) or "yellow ball"
    with qtbot.waitSignal(canvas.sketchChanged) as changed:
        make_box(canvas, (0.12, 0.2, 0.45, 0.55), NO)
    layout = changed.args[0]
    assert asked == [1]
    assert layout.names == ("yellow ball",)
    tx, ty = tol(canvas)
    assert_box(layout.subject("yellow ball").start, (0.12, 0.2, 0.45, 0.55), tx, ty)
    assert canvas.selected_subject() == "yellow ball"


def test_cancelled_name_creates_nothing_and_a_click_creates_nothing(canvas):
    canvas.name_provider = lambda: None
    make_box(canvas)
    assert canvas.sketch().subjects == ()
    canvas.name_provider = lambda: "x"
    p = vp(canvas, 0.5, 0.5)
    drag(canvas.viewport(), [p, p + QPointF(1, 1)])
    assert canvas.sketch().subjects == ()
    assert canvas.undo_stack.count() == 0


def test_create_move_resize_path_each_undo_and_redo_exactly(canvas):
    stack = canvas.undo_stack
    history = [canvas.sketch()]
    make_box(canvas, (0.1, 0.4, 0.2, 0.6))
    history.append(canvas.sketch())
    # move by dragging the box's middle
    a = vp(canvas, 0.15, 0.5)
    drag(canvas.viewport(), line(a, vp(canvas, 0.4, 0.45)), Qt.KeyboardModifier.AltModifier)
    moved = canvas.sketch().subject("yellow ball").start
    assert moved.center_x == pytest.approx(0.4, abs=0.01) and moved.center_y == pytest.approx(0.45, abs=0.01)
    assert moved.width == pytest.approx(0.1, abs=1e-9)
    history.append(canvas.sketch())
    # resize from the bottom-right handle
    br = vp(canvas, moved.right, moved.bottom)
    drag(canvas.viewport(), line(br, vp(canvas, 0.6, 0.7)), Qt.KeyboardModifier.AltModifier)
    resized = canvas.sketch().subject("yellow ball").start
    assert resized.left == pytest.approx(moved.left, abs=1e-9) and resized.top == pytest.approx(moved.top, abs=1e-9)
    assert resized.right == pytest.approx(0.6, abs=0.01) and resized.bottom == pytest.approx(0.7, abs=0.01)
    history.append(canvas.sketch())
    # a path: Shift-drag from the box along a curve
    cx, cy = resized.center
    stroke = line(vp(canvas, cx, cy), vp(canvas, 0.6, 0.3), 10) + line(vp(canvas, 0.6, 0.3), vp(canvas, 0.8, 0.5), 10)[1:]
    drag(canvas.viewport(), stroke, Qt.KeyboardModifier.ShiftModifier)
    subject = canvas.sketch().subject("yellow ball")
    assert 3 <= len(subject.keyframes) <= 6
    assert subject.keyframes[0].t == 0.0 and subject.keyframes[-1].t == 1.0
    assert subject.box_at(1.0).center_x == pytest.approx(0.8, abs=0.005)
    assert subject.box_at(1.0).center_y == pytest.approx(0.5, abs=0.005)
    assert subject.box_at(0.0).center == pytest.approx((cx, cy), abs=1e-6)
    history.append(canvas.sketch())
    assert stack.count() == 4  # one command per drag
    for expected in reversed(history[:-1]):
        stack.undo()
        assert canvas.sketch() == expected
    for expected in history[1:]:
        stack.redo()
        assert canvas.sketch() == expected


def test_path_from_the_path_handle(canvas):
    make_box(canvas, (0.1, 0.4, 0.2, 0.6))
    box = canvas.sketch().subject("yellow ball").start
    handle = canvas.path_handle_point(canvas.view_rect_of(box))
    drag(canvas.viewport(), line(handle, vp(canvas, 0.7, 0.5), 12))
    subject = canvas.sketch().subject("yellow ball")
    assert len(subject.keyframes) >= 2
    assert subject.box_at(1.0).center == pytest.approx((0.7, 0.5), abs=0.005)


def test_snapping_to_a_thirds_line_and_alt_disables_it(canvas):
    tx, _ = tol(canvas)
    near_third = 1 / 3 + 0.5 * SNAP_PX / canvas.frame_in_view().width()
    make_box(canvas, (near_third, 0.2, 0.6, 0.5), NO)
    assert canvas.sketch().subject("yellow ball").start.left == pytest.approx(1 / 3, abs=1e-9)
    canvas.name_provider = lambda: "cube"
    make_box(canvas, (near_third, 0.6, 0.6, 0.9), Qt.KeyboardModifier.AltModifier)
    assert canvas.sketch().subject("cube").start.left == pytest.approx(near_third, abs=1.5 / canvas.frame_in_view().width())
    # moving: the box's right edge lands on the right thirds line
    cube = canvas.sketch().subject("cube").start
    shift = 2 / 3 - cube.right + 0.4 * SNAP_PX / canvas.frame_in_view().width()
    a = vp(canvas, cube.center_x, cube.center_y)
    drag(canvas.viewport(), line(a, vp(canvas, cube.center_x + shift, cube.center_y)), NO)
    assert canvas.sketch().subject("cube").start.right == pytest.approx(2 / 3, abs=1e-9)


def test_delete_and_arrow_keys(canvas):
    make_box(canvas, (0.1, 0.4, 0.2, 0.6))
    before = canvas.sketch()
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Right)
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Right)
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    box = canvas.sketch().subject("yellow ball").start
    assert box.left == pytest.approx(0.12, abs=1e-6) and box.top == pytest.approx(before.subject("yellow ball").start.top + 0.05)
    assert canvas.undo_stack.count() == 2  # the nudges merged into one command
    canvas.undo_stack.undo()
    assert canvas.sketch() == before
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Delete)
    assert canvas.sketch().subjects == ()
    assert canvas.selected_subject() is None
    canvas.undo_stack.undo()
    assert canvas.sketch() == before


def test_set_sketch_undoable_and_not(canvas):
    shot = example_shot("yellow_ball")
    canvas.set_sketch(shot.layout)
    assert canvas.sketch() == shot.layout and canvas.undo_stack.count() == 1
    canvas.undo_stack.undo()
    assert canvas.sketch().subjects == ()
    canvas.set_sketch(shot.layout, undoable=False)
    assert canvas.sketch() == shot.layout and canvas.undo_stack.count() == 0


def test_move_at_another_time_on_the_slider_creates_a_keyframe(panel):
    canvas, slider = panel.canvas, panel.slider
    make_box(canvas, (0.1, 0.4, 0.2, 0.6))
    start = canvas.sketch()
    # click the slider at t = 0.5
    QTest.mouseClick(slider, LEFT, NO, QPoint(round(slider.x_of(0.5)), 15))
    assert canvas.current_time() == pytest.approx(0.5, abs=0.01)
    t = canvas.current_time()
    drag(canvas.viewport(), line(vp(canvas, 0.15, 0.5), vp(canvas, 0.55, 0.5)), Qt.KeyboardModifier.AltModifier)
    subject = canvas.sketch().subject("ball")
    assert [k.t for k in subject.keyframes] == [0.0, pytest.approx(t)]
    assert subject.box_at(0.0) == start.subject("ball").start
    assert subject.box_at(t).center_x == pytest.approx(0.55, abs=0.01)
    assert slider.keyframes() == [0.0, pytest.approx(t)]
    after_first = canvas.sketch()
    # moving again at the same time updates that keyframe, not a new one
    drag(canvas.viewport(), line(vp(canvas, 0.55, 0.5), vp(canvas, 0.65, 0.5)), Qt.KeyboardModifier.AltModifier)
    assert len(canvas.sketch().subject("ball").keyframes) == 2
    panel.undo_stack.undo()
    assert canvas.sketch() == after_first
    panel.undo_stack.undo()
    assert canvas.sketch() == start


def test_keyframes_on_the_slider_select_retime_delete(panel):
    canvas, slider = panel.canvas, panel.slider
    layout = Layout(832 / 480, (Subject.moving("ball", Box(0.1, 0.4, 0.2, 0.6), Box(0.7, 0.4, 0.8, 0.6)).with_keyframe(0.5, Box(0.4, 0.1, 0.5, 0.3)),))
    panel.set_sketch(layout, undoable=False)
    canvas.select_subject("ball")
    assert slider.keyframes() == [0.0, 0.5, 1.0]
    y = 15
    QTest.mouseClick(slider, LEFT, NO, QPoint(round(slider.x_of(0.5)), y))
    assert canvas.selected_keyframe() == 0.5 and canvas.current_time() == 0.5
    # drag the marker to t = 0.3
    drag(slider, line(QPointF(slider.x_of(0.5), y), QPointF(slider.x_of(0.3), y), 5))
    kfs = canvas.sketch().subject("ball").keyframes
    assert [k.t for k in kfs] == [0.0, pytest.approx(0.3, abs=0.01), 1.0]
    assert kfs[1].box == Box(0.4, 0.1, 0.5, 0.3)
    assert canvas.selected_keyframe() == kfs[1].t
    QTest.keyClick(slider, Qt.Key.Key_Delete)
    assert [k.t for k in canvas.sketch().subject("ball").keyframes] == [0.0, 1.0]
    panel.undo_stack.undo()
    panel.undo_stack.undo()
    assert canvas.sketch() == layout


def test_path_keyframes_and_simplify():
    pts = [(0.1 + 0.01 * i, 0.5) for i in range(50)]
    assert simplify(pts, 0.01) == [pts[0], pts[-1]]
    kfs = path_keyframes(pts, 0.1, 0.1)
    assert [k.t for k in kfs] == [0.0, 1.0]
    zigzag = [(0.1 + 0.04 * i, 0.3 if i % 2 else 0.6) for i in range(20)]
    kfs = path_keyframes(zigzag, 0.1, 0.1)
    assert len(kfs) <= 6 and kfs[-1].t == 1.0 and kfs[0].t == 0.0
    assert all(a.t < b.t for a, b in zip(kfs, kfs[1:]))


def test_colour_easing_clear_path_are_undoable(canvas):
    from shotsketch.core.layout import Easing

    layout = example_shot("yellow_ball").layout
    canvas.set_sketch(layout, undoable=False)
    canvas.set_subject_color("blue cube", "#00aa00")
    assert canvas.sketch().subject("blue cube").color == "#00aa00"
    canvas.set_subject_easing("yellow ball", Easing.EASE_IN_OUT)
    canvas.set_time(0.5)
    canvas.clear_path("yellow ball")
    ball = canvas.sketch().subject("yellow ball")
    eased = layout.subject("yellow ball").with_easing(Easing.EASE_IN_OUT)
    assert len(ball.keyframes) == 1 and ball.start == eased.box_at(0.5)
    for _ in range(3):
        canvas.undo_stack.undo()
    assert canvas.sketch() == layout


def test_delete_key_removes_the_selected_keyframe_first(canvas):
    layout = example_shot("yellow_ball").layout
    canvas.set_sketch(layout, undoable=False)
    canvas.set_time(1.0)
    end = layout.subject("yellow ball").end
    # click the ball where it is at t=1: it is selected with its keyframe at t=1
    p = vp(canvas, *end.center)
    drag(canvas.viewport(), [p, p])
    assert canvas.selected_subject() == "yellow ball" and canvas.selected_keyframe() == 1.0
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Delete)
    assert [k.t for k in canvas.sketch().subject("yellow ball").keyframes] == [0.0]
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Delete)
    assert canvas.sketch().names == ("blue cube",)
    canvas.undo_stack.undo()
    canvas.undo_stack.undo()
    assert canvas.sketch() == layout


def test_ctrl_drag_moves_the_whole_path_and_a_drag_pushes_once(canvas):
    layout = example_shot("yellow_ball").layout
    canvas.set_sketch(layout, undoable=False)
    previews = []
    canvas.previewChanged.connect(previews.append)
    start = layout.subject("yellow ball").start
    a = vp(canvas, *start.center)
    drag(canvas.viewport(), line(a, a + QPointF(0, 40), 6), Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    assert len(previews) >= 3 and canvas.undo_stack.count() == 1
    ball = canvas.sketch().subject("yellow ball")
    dy = ball.start.top - start.top
    assert dy > 0.05
    assert ball.end.top == pytest.approx(layout.subject("yellow ball").end.top + dy)
    assert [k.t for k in ball.keyframes] == [0.0, 1.0]
