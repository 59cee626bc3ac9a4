"""The sketch canvas: boxes for subjects, drawn paths for how they move.

:class:`SketchCanvas` shows the frame at the shot's aspect ratio, letterboxed in the view, with
a rule-of-thirds grid. All pointer handling lives in the view, in normalized frame coordinates
(``x``, ``y`` in [0, 1], ``y`` down, as in :mod:`shotsketch.core.layout`); the scene's items only
paint. Every edit is one :class:`~shotsketch.ui.undo.LayoutEdit` pushed on the shared undo stack
when the drag ends; during a drag the canvas shows a preview layout and pushes nothing.

Gestures (all snap to the thirds lines, the frame's edges and its centre unless Alt is held):

- drag on empty space: a new subject box; its name comes from :attr:`SketchCanvas.name_provider`;
- drag a box: move it at the current time (a keyframe is created or updated at that time);
  with Ctrl held the whole path moves;
- drag a corner or edge handle of the selected box: resize it;
- Shift-drag from a box, or drag its small path handle: draw a motion path; the stroke is
  simplified to a few keyframes spread over clip time [0, 1];
- Delete: remove the selected keyframe, else the selected subject; arrow keys nudge (Shift: more).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from enum import Enum

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetricsF,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPolygonF,
    QResizeEvent,
    QTransform,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QColorDialog,
    QFrame,
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QInputDialog,
    QMenu,
    QStyleOptionGraphicsItem,
    QWidget,
)

from shotsketch.core.layout import (
    MAX_NAME_LENGTH,
    MIN_BOX_SIZE,
    Box,
    Easing,
    Keyframe,
    Layout,
    LayoutError,
    Subject,
    name_key,
)
from shotsketch.core.phrasing import PALETTE
from shotsketch.ui.sketch_layers import paint_groups, paint_regions
from shotsketch.ui.undo import LayoutEdit

SCENE_HEIGHT = 1000.0
"""The frame's height in scene units; its width is ``SCENE_HEIGHT * aspect``."""

SNAP_PX = 8.0
"""How close (in screen pixels) an edge or centre must come to a guide line to snap to it."""
SNAP_LINES = (0.0, 1 / 3, 0.5, 2 / 3, 1.0)
HANDLE_PX = 8.0
HIT_PX = 7.0
PATH_HANDLE_PX = 14.0
CLICK_PX = 4.0
"""A drag shorter than this (screen pixels) is a click."""
KEYFRAME_TOLERANCE = 0.01
"""Moving a box within this much clip time of a keyframe edits that keyframe."""
MAX_PATH_KEYFRAMES = 6
NUDGE = 0.01
NUDGE_LARGE = 0.05
MIN_KEYFRAME_GAP = 0.005

NameProvider = Callable[[], "str | None"]


class Handle(Enum):
    TOP_LEFT = (0, 0)
    TOP = (1, 0)
    TOP_RIGHT = (2, 0)
    RIGHT = (2, 1)
    BOTTOM_RIGHT = (2, 2)
    BOTTOM = (1, 2)
    BOTTOM_LEFT = (0, 2)
    LEFT = (0, 1)

    @property
    def cursor(self) -> Qt.CursorShape:
        if self in (Handle.TOP_LEFT, Handle.BOTTOM_RIGHT):
            return Qt.CursorShape.SizeFDiagCursor
        if self in (Handle.TOP_RIGHT, Handle.BOTTOM_LEFT):
            return Qt.CursorShape.SizeBDiagCursor
        if self in (Handle.LEFT, Handle.RIGHT):
            return Qt.CursorShape.SizeHorCursor
        return Qt.CursorShape.SizeVerCursor


class DragMode(Enum):
    NONE = "none"
    CREATE = "create"
    MOVE = "move"
    RESIZE = "resize"
    PATH = "path"


def qcolor(color: str) -> QColor:
    c = QColor(color)
    return c if c.isValid() else QColor("#dd3333")


def hex_color(color: QColor) -> str:
    return color.name(QColor.NameFormat.HexRgb)


def next_color(layout: Layout) -> str:
    """The first palette colour no subject uses yet (cycling when all are used)."""
    used = {hex_color(qcolor(s.color)) for s in layout.subjects}
    for c in PALETTE:
        if hex_color(qcolor(c)) not in used:
            return hex_color(qcolor(c))
    return hex_color(qcolor(PALETTE[len(layout.subjects) % len(PALETTE)]))


def unique_name(layout: Layout, name: str) -> str:
    name = " ".join(name.split())[:MAX_NAME_LENGTH]
    if not layout.has_name(name):
        return name
    n = 2
    while layout.has_name(f"{name} {n}"):
        n += 1
    return f"{name} {n}"


def keyframe_near(subject: Subject, t: float, tolerance: float = KEYFRAME_TOLERANCE) -> Keyframe | None:
    best = min(subject.keyframes, key=lambda k: abs(k.t - t))
    return best if abs(best.t - t) <= tolerance else None


def with_box_at(subject: Subject, t: float, box: Box) -> Subject:
    """The subject with its box at clip time ``t`` set: the keyframe at (about) that time is
    updated, or a keyframe is added there."""
    near = keyframe_near(subject, t)
    if near is not None:
        return subject.with_keyframe(Keyframe(near.t, box))
    return subject.with_keyframe(Keyframe(t, box))


def simplify(points: Sequence[tuple[float, float]], epsilon: float) -> list[tuple[float, float]]:
    """Ramer-Douglas-Peucker: the points of a polyline that keep its shape within ``epsilon``."""
    if len(points) < 3:
        return list(points)
    (ax, ay), (bx, by) = points[0], points[-1]
    dx, dy = bx - ax, by - ay
    length = math.hypot(dx, dy)
    far, index = -1.0, 0
    for i in range(1, len(points) - 1):
        px, py = points[i]
        d = abs(dy * px - dx * py + bx * ay - by * ax) / length if length > 1e-12 else math.hypot(px - ax, py - ay)
        if d > far:
            far, index = d, i
    if far <= epsilon:
        return [points[0], points[-1]]
    left = simplify(points[: index + 1], epsilon)
    right = simplify(points[index:], epsilon)
    return left[:-1] + right


def path_keyframes(
    points: Sequence[tuple[float, float]], width: float, height: float, max_keyframes: int = MAX_PATH_KEYFRAMES
) -> tuple[Keyframe, ...]:
    """Keyframes along a drawn stroke of box centres, spread over t in [0, 1] by distance along
    the simplified stroke (so the subject moves at an even speed). The first keyframe is at the
    stroke's start (t=0), the last where it ends (t=1); boxes keep ``width`` x ``height``."""
    epsilon = 0.01
    kept = simplify(points, epsilon)
    while len(kept) > max_keyframes:
        epsilon *= 1.5
        kept = simplify(points, epsilon)
    lengths = [0.0]
    for (ax, ay), (bx, by) in zip(kept, kept[1:]):
        lengths.append(lengths[-1] + math.hypot(bx - ax, by - ay))
    total = lengths[-1]

    def box(p: tuple[float, float]) -> Box:
        return Box.from_center(p[0], p[1], width, height).fitted()

    if total <= 0.0:
        return (Keyframe(0.0, box(kept[0])),)
    chosen: list[tuple[tuple[float, float], float]] = [(kept[0], 0.0)]
    for p, d in zip(kept[1:-1], lengths[1:-1]):
        t = d / total
        if t - chosen[-1][1] >= MIN_KEYFRAME_GAP and 1.0 - t >= MIN_KEYFRAME_GAP:
            chosen.append((p, t))
    chosen.append((kept[-1], 1.0))
    return tuple(Keyframe(t, box(p)) for p, t in chosen)


class SubjectItem(QGraphicsItem):
    """Paints one subject: its box at the current time, and when onion skin is on, ghost boxes at
    its keyframes and the path through them with arrows. Painting is in device pixels so lines,
    labels and handles keep their size at any zoom."""

    def __init__(self, canvas: SketchCanvas, subject: Subject) -> None:
        super().__init__()
        self._canvas = canvas
        self.subject = subject

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self._canvas.frame_rect().adjusted(-200, -200, 200, 200)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        canvas = self._canvas
        subject = self.subject
        world = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = qcolor(subject.color)
        selected = canvas.selected_subject() is not None and name_key(canvas.selected_subject() or "") == name_key(
            subject.name
        )
        t = canvas.current_time()
        # light colours (yellow) get a darker outline so they read on the light frame
        outline = color.darker(135) if _luminance(color) > 0.6 else color

        def dev(box: Box) -> QRectF:
            return world.mapRect(canvas.scene_rect_of(box))

        if canvas.onion_skin() and len(subject.keyframes) > 1:
            ghost = QColor(outline)
            ghost.setAlpha(150 if selected else 100)
            pen = QPen(ghost, 1.2, Qt.PenStyle.DashLine)
            fill = QColor(color)
            fill.setAlpha(18)
            for kf in subject.keyframes:
                painter.setPen(pen)
                painter.setBrush(fill)
                painter.drawRect(dev(kf.box))
            # the path through the keyframe centres, with an arrow on each leg
            centres = [world.map(canvas.scene_point(*kf.box.center)) for kf in subject.keyframes]
            line = QColor(outline)
            line.setAlpha(230 if selected else 170)
            painter.setPen(QPen(line, 2.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPolyline(QPolygonF(centres))
            painter.setBrush(line)
            for a, b in zip(centres, centres[1:]):
                _arrow(painter, a, b)
            # keyframe dots, the selected keyframe ringed
            sel_t = canvas.selected_keyframe() if selected else None
            for kf, c in zip(subject.keyframes, centres):
                painter.setPen(QPen(QColor("white"), 1.0))
                painter.setBrush(line)
                r = 4.0
                painter.drawEllipse(c, r, r)
                if sel_t is not None and abs(kf.t - sel_t) < 1e-9:
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                    painter.setPen(QPen(QColor("white"), 2.0))
                    painter.drawEllipse(c, 7.0, 7.0)

        box = subject.box_at(t)
        rect = dev(box)
        fill = QColor(color)
        fill.setAlpha(70 if selected else 45)
        painter.setPen(QPen(outline, 3.0 if selected else 2.0))
        painter.setBrush(fill)
        painter.drawRect(rect)
        on_keyframe = keyframe_near(subject, t) is not None
        if not on_keyframe and len(subject.keyframes) > 1:
            # between keyframes: the box is interpolated; a dotted inner line says so
            painter.setPen(QPen(QColor(0, 0, 0, 90), 1.0, Qt.PenStyle.DotLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect.adjusted(3, 3, -3, -3))

        # the name, on a chip in the subject's colour, above the box (inside if no room)
        frame_dev = world.mapRect(canvas.frame_rect())
        font = QFont(painter.font())
        font.setPixelSize(round(min(12.0, max(9.0, frame_dev.height() / 28))))
        font.setBold(True)
        painter.setFont(font)
        fm = QFontMetricsF(font)
        pad = 3.0 if font.pixelSize() < 11 else 5.0
        max_w = max(30.0, min(rect.width() + 60, frame_dev.width() - 2 * pad))
        label = fm.elidedText(subject.name, Qt.TextElideMode.ElideRight, max_w)
        chip = QRectF(0, 0, fm.horizontalAdvance(label) + 2 * pad, fm.height() + 2)
        chip.moveBottomLeft(QPointF(rect.left() - 1.5, rect.top() - 1.5))
        if chip.top() < frame_dev.top():
            chip.moveTopLeft(QPointF(rect.left() + 1.5, rect.top() + 1.5))
        if chip.right() > frame_dev.right():
            chip.moveRight(frame_dev.right())
        if chip.left() < frame_dev.left():
            chip.moveLeft(frame_dev.left())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(chip, 3, 3)
        painter.setPen(_text_color_on(color))
        painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, label)

        if selected:
            painter.setPen(QPen(QColor("#202020"), 1.0))
            painter.setBrush(QColor("white"))
            for handle in Handle:
                painter.drawRect(_handle_rect(rect, handle))
            c = canvas.path_handle_point(rect)
            mark = outline.darker(130)
            painter.setPen(QPen(mark, 1.5))
            painter.setBrush(QColor("white"))
            painter.drawEllipse(c, PATH_HANDLE_PX / 2 + 1, PATH_HANDLE_PX / 2 + 1)
            # a little wavy stroke with an arrowhead: "draw a path from here"
            squiggle = [QPointF(c.x() + dx, c.y() + dy) for dx, dy in ((-5, 3), (-2, -1), (1, 2), (4, -2))]
            painter.setPen(QPen(mark, 1.5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPolyline(QPolygonF(squiggle))
            painter.setBrush(mark)
            a, b = squiggle[-2], squiggle[-1]
            _arrow(painter, a, b, at=1.0, size=3.5, min_length=0.0)
        painter.restore()


def _luminance(color: QColor) -> float:
    return 0.299 * color.redF() + 0.587 * color.greenF() + 0.114 * color.blueF()


def _text_color_on(color: QColor) -> QColor:
    return QColor("#111111") if _luminance(color) > 0.6 else QColor("white")


def _handle_rect(rect: QRectF, handle: Handle) -> QRectF:
    hx, hy = handle.value
    x = (rect.left(), rect.center().x(), rect.right())[hx]
    y = (rect.top(), rect.center().y(), rect.bottom())[hy]
    return QRectF(x - HANDLE_PX / 2, y - HANDLE_PX / 2, HANDLE_PX, HANDLE_PX)


def _arrow(
    painter: QPainter, a: QPointF, b: QPointF, at: float = 0.55, size: float = 7.0, min_length: float | None = None
) -> None:
    line = QLineF(a, b)
    if line.length() < (2 * size if min_length is None else min_length):
        return
    tip = line.pointAt(at)
    angle = math.atan2(b.y() - a.y(), b.x() - a.x())
    left = QPointF(tip.x() - size * math.cos(angle - 0.45), tip.y() - size * math.sin(angle - 0.45))
    right = QPointF(tip.x() - size * math.cos(angle + 0.45), tip.y() - size * math.sin(angle + 0.45))
    painter.save()
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawPolygon(QPolygonF([tip, left, right]))
    painter.restore()


class SketchCanvas(QGraphicsView):
    """The drag-to-sketch canvas. See the module docstring for its gestures."""

    sketchChanged = Signal(object)  # Layout, after every committed edit, undo and redo
    previewChanged = Signal(object)  # Layout shown during a drag (not yet committed)
    timeChanged = Signal(float)
    selectionChanged = Signal(object)  # subject name or None
    keyframeSelected = Signal(object)  # t or None

    def __init__(self, undo_stack: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = undo_stack
        self.name_provider: NameProvider = self._ask_name
        self._layout = Layout()
        self._shown = self._layout
        self._time = 0.0
        self._selected: str | None = None
        self._selected_kf: float | None = None
        self._onion = True
        self._snapping = True
        # drag state
        self._mode = DragMode.NONE
        self._press_view = QPointF()
        self._press_norm = (0.0, 0.0)
        self._drag_subject: Subject | None = None
        self._drag_handle: Handle | None = None
        self._drag_whole_path = False
        self._create_rect: Box | None = None
        self._stroke: list[tuple[float, float]] = []
        self._guides: list[tuple[str, float]] = []

        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 100)
        self.setToolTip("")
        self._update_scene_rect()
        self._rebuild()

    # -- public API --------------------------------------------------------------------------
    def sketch(self) -> Layout:
        return self._layout

    def set_sketch(self, layout: Layout, undoable: bool = True, text: str = "Replace sketch") -> None:
        """Show ``layout``. Undoable: one command on the undo stack. Not undoable (loading another
        shot): the layout replaces the current one and the undo stack is cleared, so an undo can
        never bring back a layout from a different shot."""
        if not isinstance(layout, Layout):
            raise TypeError(f"set_sketch needs a Layout, not {type(layout).__name__}")
        self._cancel_drag()
        if undoable:
            self._push(layout, text)
        else:
            self.undo_stack.clear()
            self._apply(layout)

    def current_time(self) -> float:
        return self._time

    def set_time(self, t: float) -> None:
        t = min(1.0, max(0.0, float(t)))
        if t == self._time:
            return
        self._time = t
        self._scene.update()
        self.timeChanged.emit(t)

    def selected_subject(self) -> str | None:
        return self._selected

    def select_subject(self, name: str | None) -> None:
        if name is not None:
            name = self._layout.subject(name).name if self._layout.has_subject(name) else None
        if name == self._selected:
            return
        self._selected = name
        self._set_selected_keyframe(None)
        self._restack()
        self.selectionChanged.emit(name)

    def selected_keyframe(self) -> float | None:
        """The selected keyframe's t (of the selected subject), or None."""
        return self._selected_kf

    def select_keyframe(self, t: float | None) -> None:
        if t is not None:
            subject = self._selected_subject_value()
            kf = keyframe_near(subject, t, 1e-6) if subject is not None else None
            t = kf.t if kf is not None else None
        self._set_selected_keyframe(t)

    def onion_skin(self) -> bool:
        return self._onion

    def set_onion_skin(self, on: bool) -> None:
        self._onion = bool(on)
        self._scene.update()

    def snapping(self) -> bool:
        return self._snapping

    def set_snapping(self, on: bool) -> None:
        self._snapping = bool(on)

    # edits, each one undoable command
    def add_subject(self, subject: Subject) -> None:
        self._push(self._layout.with_subject(subject), f"Add {subject.name}")
        self.select_subject(subject.name)

    def remove_subject(self, name: str) -> None:
        self._push(self._layout.without_subject(name), f"Delete {name}")

    def rename_subject(self, name: str, new_name: str) -> None:
        new_name = " ".join(new_name.split())[:MAX_NAME_LENGTH]
        if not new_name or name_key(new_name) == name_key(name) and new_name == name:
            return
        if name_key(new_name) != name_key(name):
            new_name = unique_name(self._layout.without_subject(name), new_name)
        subject = self._layout.subject(name)
        was_selected = self._selected is not None and name_key(self._selected) == name_key(name)
        self._push(self._layout.with_subject(subject.renamed(new_name), replacing=name), f"Rename {name}")
        if was_selected:
            self.select_subject(new_name)

    def set_subject_color(self, name: str, color: str) -> None:
        subject = self._layout.subject(name)
        self._push(self._layout.with_subject(subject.with_color(hex_color(qcolor(color)))), f"Colour of {name}")

    def set_subject_easing(self, name: str, easing: Easing) -> None:
        subject = self._layout.subject(name)
        self._push(self._layout.with_subject(subject.with_easing(easing)), f"Easing of {name}")

    def set_box(self, name: str, box: Box, t: float | None = None) -> None:
        """Set a subject's box at clip time ``t`` (default: the current time)."""
        subject = self._layout.subject(name)
        t = self._time if t is None else t
        self._push(self._layout.with_subject(with_box_at(subject, t, box)), f"Move {name}")

    def clear_path(self, name: str) -> None:
        """Make the subject stationary, at its box at the current time."""
        subject = self._layout.subject(name)
        box = subject.box_at(self._time)
        self._push(self._layout.with_subject(subject.with_keyframes((Keyframe(0.0, box),))), f"Clear path of {name}")

    def remove_keyframe(self, name: str, t: float) -> bool:
        subject = self._layout.subject(name)
        if len(subject.keyframes) < 2:
            return False
        kf = keyframe_near(subject, t, 1e-6)
        if kf is None:
            return False
        self._push(self._layout.with_subject(subject.without_keyframe(kf.t)), f"Delete keyframe of {name}")
        self._set_selected_keyframe(None)
        return True

    def move_keyframe(self, name: str, t: float, new_t: float) -> float | None:
        """Move a keyframe in time, kept between its neighbours. Returns its new t."""
        subject = self._layout.subject(name)
        kf = keyframe_near(subject, t, 1e-6)
        if kf is None:
            return None
        i = subject.keyframes.index(kf)
        lo = subject.keyframes[i - 1].t + MIN_KEYFRAME_GAP if i > 0 else 0.0
        hi = subject.keyframes[i + 1].t - MIN_KEYFRAME_GAP if i + 1 < len(subject.keyframes) else 1.0
        new_t = min(hi, max(lo, float(new_t)))
        if abs(new_t - kf.t) < 1e-9:
            return kf.t
        kfs = list(subject.keyframes)
        kfs[i] = Keyframe(new_t, kf.box)
        self._push(self._layout.with_subject(subject.with_keyframes(kfs)), f"Move keyframe of {name}")
        if self._selected_kf is not None and abs(self._selected_kf - kf.t) < 1e-9:
            self._set_selected_keyframe(new_t)
        return new_t

    def delete_selection(self) -> None:
        """Delete the selected keyframe if there is one (and the subject keeps another), else the
        selected subject."""
        name = self._selected
        if name is None:
            return
        if self._selected_kf is not None and self.remove_keyframe(name, self._selected_kf):
            return
        self.remove_subject(name)

    def nudge(self, dx: float, dy: float) -> None:
        subject = self._selected_subject_value()
        if subject is None:
            return
        box = subject.box_at(self._time)
        dx = min(1.0 - box.right, max(-box.left, dx))
        dy = min(1.0 - box.bottom, max(-box.top, dy))
        if dx == 0 and dy == 0:
            return
        near = keyframe_near(subject, self._time)
        key = ("nudge", name_key(subject.name), near.t if near else self._time)
        moved = with_box_at(subject, self._time, box.translated(dx, dy))
        self._push(self._layout.with_subject(moved), f"Nudge {subject.name}", merge_key=key)

    # geometry -------------------------------------------------------------------------------
    def frame_rect(self) -> QRectF:
        return QRectF(0.0, 0.0, SCENE_HEIGHT * self._layout.aspect, SCENE_HEIGHT)

    def scene_point(self, x: float, y: float) -> QPointF:
        r = self.frame_rect()
        return QPointF(x * r.width(), y * r.height())

    def scene_rect_of(self, box: Box) -> QRectF:
        r = self.frame_rect()
        return QRectF(box.left * r.width(), box.top * r.height(), box.width * r.width(), box.height * r.height())

    def view_point(self, x: float, y: float) -> QPointF:
        """Where the normalized frame point (x, y) is in viewport pixels."""
        return self.viewportTransform().map(self.scene_point(x, y))

    def view_rect_of(self, box: Box) -> QRectF:
        return self.viewportTransform().mapRect(self.scene_rect_of(box))

    def frame_in_view(self) -> QRectF:
        return self.viewportTransform().mapRect(self.frame_rect())

    def normalized(self, view_pos: QPointF) -> tuple[float, float]:
        inverse, _ok = self.viewportTransform().inverted()
        p = inverse.map(QPointF(view_pos))
        r = self.frame_rect()
        return p.x() / r.width(), p.y() / r.height()

    def path_handle_point(self, box_rect_in_view: QRectF) -> QPointF:
        """Where the selected box's path handle is drawn: just off its bottom-right corner
        (mirrored to another corner when that would leave the frame)."""
        r = box_rect_in_view
        off = PATH_HANDLE_PX
        p = QPointF(r.right() + off, r.bottom() + off)
        frame = self.frame_in_view()
        if p.x() > frame.right() - 2:
            p.setX(r.left() - off)
        if p.y() > frame.bottom() - 2:
            p.setY(r.top() - off)
        return p

    # internals ------------------------------------------------------------------------------
    def _ask_name(self) -> str | None:
        suggestion = f"subject {len(self._layout.subjects) + 1}"
        text, ok = QInputDialog.getText(
            self, "New subject", "Name it with the words the prompt uses (e.g. \"yellow ball\"):", text=suggestion
        )
        return text if ok else None

    def _selected_subject_value(self) -> Subject | None:
        if self._selected is None or not self._layout.has_subject(self._selected):
            return None
        return self._layout.subject(self._selected)

    def _set_selected_keyframe(self, t: float | None) -> None:
        if t == self._selected_kf:
            return
        self._selected_kf = t
        self._scene.update()
        self.keyframeSelected.emit(t)

    def _push(self, after: Layout, text: str, merge_key: object | None = None) -> None:
        if after == self._layout:
            self._show(self._layout)
            return
        self.undo_stack.push(LayoutEdit(self._apply, self._layout, after, text, merge_key))

    def _apply(self, layout: Layout) -> None:
        aspect_changed = layout.aspect != self._layout.aspect
        self._layout = layout
        if self._selected is not None:
            if layout.has_subject(self._selected):
                self._selected = layout.subject(self._selected).name
            else:
                self._selected = None
                self.selectionChanged.emit(None)
        subject = self._selected_subject_value()
        if self._selected_kf is not None and (subject is None or keyframe_near(subject, self._selected_kf, 1e-6) is None):
            self._set_selected_keyframe(None)
        if aspect_changed:
            self._update_scene_rect()
            self._fit()
        self._show(layout)
        self.sketchChanged.emit(layout)

    def _show(self, layout: Layout) -> None:
        self._shown = layout
        self._rebuild()

    def _rebuild(self) -> None:
        self._scene.clear()
        for subject in self._shown.subjects:
            self._scene.addItem(SubjectItem(self, subject))
        self._restack()

    def _restack(self) -> None:
        order = {name_key(sub.name): i for i, sub in enumerate(self._shown.subjects)}
        selected = name_key(self._selected) if self._selected is not None else None
        for item in self._scene.items():
            if isinstance(item, SubjectItem):
                key = name_key(item.subject.name)
                item.setZValue(1000 if key == selected else order.get(key, 0))
        self._scene.update()
        self.viewport().update()

    def _update_scene_rect(self) -> None:
        r = self.frame_rect()
        self._scene.setSceneRect(r.adjusted(-r.width(), -r.height(), r.width(), r.height()))

    def _fit(self) -> None:
        """Letterbox: the whole frame, as large as fits, centred in the viewport."""
        vw, vh = self.viewport().width(), self.viewport().height()
        r = self.frame_rect()
        margin = 10.0
        scale = max(1e-3, min((vw - 2 * margin) / r.width(), (vh - 2 * margin) / r.height()))
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(r.center())
        self._scene.update()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event) -> None:  # noqa: N802, ANN001
        super().showEvent(event)
        self._fit()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        painter.fillRect(rect, QColor("#2b2b2e"))
        frame = self.frame_rect()
        painter.fillRect(frame, QColor("#f4f4f1"))
        painter.save()
        painter.resetTransform()
        dev = self.viewportTransform().mapRect(frame)
        paint_regions(painter, dev, self._layout)  # sky, ground, water, horizon bands
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        pen = QPen(QColor(0, 0, 0, 60), 1.0, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        for f in (1 / 3, 2 / 3):
            x = dev.left() + f * dev.width()
            y = dev.top() + f * dev.height()
            painter.drawLine(QPointF(x, dev.top()), QPointF(x, dev.bottom()))
            painter.drawLine(QPointF(dev.left(), y), QPointF(dev.right(), y))
        # centre mark (not under the empty-canvas hint)
        if self._layout.subjects:
            c = dev.center()
            painter.setPen(QPen(QColor(0, 0, 0, 70), 1.0))
            painter.drawLine(QPointF(c.x() - 6, c.y()), QPointF(c.x() + 6, c.y()))
            painter.drawLine(QPointF(c.x(), c.y() - 6), QPointF(c.x(), c.y() + 6))
        painter.setPen(QPen(QColor(0, 0, 0, 110), 1.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(dev)
        painter.restore()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = self.frame_in_view()
        guide = QPen(QColor("#1e88e5"), 1.0)
        painter.setPen(guide)
        for axis, v in self._guides:
            if axis == "x":
                x = frame.left() + v * frame.width()
                painter.drawLine(QPointF(x, frame.top()), QPointF(x, frame.bottom()))
            else:
                y = frame.top() + v * frame.height()
                painter.drawLine(QPointF(frame.left(), y), QPointF(frame.right(), y))
        if self._mode is DragMode.CREATE and self._create_rect is not None:
            painter.setPen(QPen(QColor("#1e88e5"), 1.5, Qt.PenStyle.DashLine))
            painter.setBrush(QColor(30, 136, 229, 40))
            painter.drawRect(self.view_rect_of(self._create_rect))
        if self._mode is DragMode.PATH and len(self._stroke) > 1:
            color = qcolor(self._drag_subject.color) if self._drag_subject else QColor("#1e88e5")
            painter.setPen(QPen(color, 2.0, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPolyline(QPolygonF([self.view_point(x, y) for x, y in self._stroke]))
        paint_groups(painter, frame, self._layout, self.current_time())  # several boxes under one name
        if self._layout.is_empty and self._mode is DragMode.NONE:
            painter.setPen(QColor(0, 0, 0, 120))
            font = QFont(painter.font())
            font.setPixelSize(13)
            painter.setFont(font)
            painter.drawText(
                frame.adjusted(10, 10, -10, -10),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "Drag to draw a box for each subject.\nShift-drag from a box to draw its path.",
            )
        painter.restore()

    # hit testing
    def _subject_at(self, pos: QPointF) -> Subject | None:
        ordered = list(self._layout.subjects)
        if self._selected is not None and self._layout.has_subject(self._selected):
            sel = self._layout.subject(self._selected)
            ordered.remove(sel)
            ordered.append(sel)
        for subject in reversed(ordered):
            if self.view_rect_of(subject.box_at(self._time)).adjusted(-2, -2, 2, 2).contains(pos):
                return subject
        return None

    def _handle_at(self, pos: QPointF) -> tuple[Subject, Handle | None] | None:
        """The selected subject's resize handle (or path handle: None) under ``pos``."""
        subject = self._selected_subject_value()
        if subject is None:
            return None
        rect = self.view_rect_of(subject.box_at(self._time))
        if QLineF(self.path_handle_point(rect), pos).length() <= PATH_HANDLE_PX / 2 + 2:
            return subject, None
        for handle in Handle:
            if _handle_rect(rect, handle).adjusted(-HIT_PX / 2, -HIT_PX / 2, HIT_PX / 2, HIT_PX / 2).contains(pos):
                return subject, handle
        return None

    # snapping
    def _snap_allowed(self, event: QMouseEvent | None) -> bool:
        if not self._snapping:
            return False
        return not (event is not None and event.modifiers() & Qt.KeyboardModifier.AltModifier)

    def _tolerance(self) -> tuple[float, float]:
        frame = self.frame_in_view()
        return SNAP_PX / max(frame.width(), 1.0), SNAP_PX / max(frame.height(), 1.0)

    def _snap_shift(self, values: Sequence[float], tol: float, axis: str) -> float:
        """The smallest shift that puts one of ``values`` on a snap line within ``tol``, or 0."""
        best: tuple[float, float] | None = None
        for v in values:
            for line in SNAP_LINES:
                d = line - v
                if abs(d) <= tol and (best is None or abs(d) < abs(best[0])):
                    best = (d, line)
        if best is None:
            return 0.0
        self._guides.append((axis, best[1]))
        return best[0]

    def _snap_point(self, x: float, y: float, snap: bool) -> tuple[float, float]:
        if snap:
            tx, ty = self._tolerance()
            x += self._snap_shift([x], tx, "x")
            y += self._snap_shift([y], ty, "y")
        return min(1.0, max(0.0, x)), min(1.0, max(0.0, y))

    # mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        self._press_view = QPointF(pos)
        self._press_norm = self.normalized(pos)
        self._guides = []
        hit = self._handle_at(pos)
        if hit is not None:
            subject, handle = hit
            self._drag_subject = subject
            if handle is None:
                self._start_path(subject)
            else:
                self._mode = DragMode.RESIZE
                self._drag_handle = handle
            event.accept()
            return
        subject = self._subject_at(pos)
        if subject is not None:
            self.select_subject(subject.name)
            near = keyframe_near(subject, self._time)
            self._set_selected_keyframe(near.t if near is not None and len(subject.keyframes) > 1 else None)
            self._drag_subject = subject
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self._start_path(subject)
            else:
                self._mode = DragMode.MOVE
                self._drag_whole_path = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            event.accept()
            return
        self.select_subject(None)
        self._mode = DragMode.CREATE
        x, y = self._snap_point(*self._press_norm, self._snap_allowed(event))
        self._press_norm = (x, y)
        self._create_rect = None
        event.accept()

    def _start_path(self, subject: Subject) -> None:
        self._mode = DragMode.PATH
        cx, cy = subject.box_at(self._time).center
        self._stroke = [(cx, cy)]
        self.select_subject(subject.name)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if self._mode is DragMode.NONE:
            self._update_cursor(pos)
            super().mouseMoveEvent(event)
            return
        self._guides = []
        preview = self._drag_result(pos, event)
        if preview is not None and preview != self._shown:
            self._show(preview)
            self.previewChanged.emit(preview)
        self.viewport().update()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or self._mode is DragMode.NONE:
            super().mouseReleaseEvent(event)
            return
        pos = event.position()
        mode = self._mode
        subject = self._drag_subject
        self._guides = []
        result = self._drag_result(pos, event, final=True)
        self._mode = DragMode.NONE
        self._drag_subject = None
        self._create_rect = None
        self._stroke = []
        self._guides = []
        event.accept()
        if result is None or result == self._layout:
            self._show(self._layout)
            self.viewport().update()
            return
        if mode is DragMode.CREATE:
            self._show(self._layout)
            self.viewport().update()
            name = self.name_provider()
            if name is None or not name.strip():
                return
            name = unique_name(self._layout, name)
            new = next(s for s in result.subjects if s.name == "\0new")
            self.add_subject(replace(new, name=name))
            return
        assert subject is not None
        text = {
            DragMode.MOVE: f"Move {subject.name}",
            DragMode.RESIZE: f"Resize {subject.name}",
            DragMode.PATH: f"Draw path of {subject.name}",
        }[mode]
        self._push(result, text)
        if mode is DragMode.PATH:
            self._set_selected_keyframe(None)
        elif mode in (DragMode.MOVE, DragMode.RESIZE) and not self._drag_whole_path:
            updated = self._layout.subject(subject.name)
            near = keyframe_near(updated, self._time)
            if near is not None and len(updated.keyframes) > 1:
                self._set_selected_keyframe(near.t)
        self._drag_whole_path = False
        self.viewport().update()

    def _drag_result(self, pos: QPointF, event: QMouseEvent, final: bool = False) -> Layout | None:
        """The layout the drag so far makes (or None when it is still a click)."""
        dragged = QLineF(self._press_view, pos).length() >= CLICK_PX
        snap = self._snap_allowed(event)
        x, y = self.normalized(pos)
        if self._mode is DragMode.CREATE:
            if not dragged:
                self._create_rect = None
                return None
            x, y = self._snap_point(x, y, snap)
            x0, y0 = self._press_norm
            box = Box(min(x0, x), min(y0, y), max(x0, x), max(y0, y))
            frame = self.frame_in_view()
            if box.width * frame.width() < CLICK_PX or box.height * frame.height() < CLICK_PX:
                self._create_rect = None
                return None
            self._create_rect = box
            subject = Subject.static("\0new", box.fitted(), next_color(self._layout))
            return replace(self._layout, subjects=self._layout.subjects + (subject,))
        subject = self._drag_subject
        if subject is None:
            return None
        if self._mode is DragMode.PATH:
            px, py = min(1.0, max(0.0, x)), min(1.0, max(0.0, y))
            if not self._stroke or QLineF(self.view_point(*self._stroke[-1]), self.view_point(px, py)).length() >= 2.0:
                self._stroke.append((px, py))
            elif final:
                self._stroke[-1] = (px, py) if len(self._stroke) > 1 else self._stroke[-1]
            if final and (len(self._stroke) < 2 or self._stroke[-1] != (px, py)):
                self._stroke.append((px, py))
            start_view = self.view_point(*self._stroke[0])
            if max(QLineF(start_view, self.view_point(*p)).length() for p in self._stroke) < CLICK_PX * 2:
                return None
            if not final:
                return None  # the stroke itself is the preview
            box = subject.box_at(self._time)
            kfs = path_keyframes(self._stroke, box.width, box.height)
            return self._layout.with_subject(subject.with_keyframes(kfs))
        if not dragged:
            return None
        x0, y0 = self._press_norm
        dx, dy = x - x0, y - y0
        box = subject.box_at(self._time)
        if self._mode is DragMode.MOVE:
            moved = box.translated(dx, dy)
            if snap:
                tx, ty = self._tolerance()
                dx += self._snap_shift([moved.left, moved.center_x, moved.right], tx, "x")
                dy += self._snap_shift([moved.top, moved.center_y, moved.bottom], ty, "y")
            if self._drag_whole_path:
                lo_x = max(-k.box.left for k in subject.keyframes)
                hi_x = min(1.0 - k.box.right for k in subject.keyframes)
                lo_y = max(-k.box.top for k in subject.keyframes)
                hi_y = min(1.0 - k.box.bottom for k in subject.keyframes)
                dx, dy = min(hi_x, max(lo_x, dx)), min(hi_y, max(lo_y, dy))
                return self._layout.with_subject(subject.translated(dx, dy))
            dx = min(1.0 - box.right, max(-box.left, dx))
            dy = min(1.0 - box.bottom, max(-box.top, dy))
            return self._layout.with_subject(with_box_at(subject, self._time, box.translated(dx, dy)))
        if self._mode is DragMode.RESIZE and self._drag_handle is not None:
            return self._layout.with_subject(with_box_at(subject, self._time, self._resized(box, dx, dy, snap)))
        return None

    def _resized(self, box: Box, dx: float, dy: float, snap: bool) -> Box:
        assert self._drag_handle is not None
        hx, hy = self._drag_handle.value
        frame = self.frame_in_view()
        min_w = max(MIN_BOX_SIZE, 6.0 / max(frame.width(), 1.0))
        min_h = max(MIN_BOX_SIZE, 6.0 / max(frame.height(), 1.0))
        tx, ty = self._tolerance()
        left, top, right, bottom = box.left, box.top, box.right, box.bottom
        if hx == 0:
            left = left + dx
            left += self._snap_shift([left], tx, "x") if snap else 0.0
            left = min(right - min_w, max(0.0, left))
        elif hx == 2:
            right = right + dx
            right += self._snap_shift([right], tx, "x") if snap else 0.0
            right = max(left + min_w, min(1.0, right))
        if hy == 0:
            top = top + dy
            top += self._snap_shift([top], ty, "y") if snap else 0.0
            top = min(bottom - min_h, max(0.0, top))
        elif hy == 2:
            bottom = bottom + dy
            bottom += self._snap_shift([bottom], ty, "y") if snap else 0.0
            bottom = max(top + min_h, min(1.0, bottom))
        return Box(left, top, right, bottom)

    def _cancel_drag(self) -> None:
        if self._mode is not DragMode.NONE:
            self._mode = DragMode.NONE
            self._drag_subject = None
            self._create_rect = None
            self._stroke = []
            self._guides = []
            self._show(self._layout)

    def _update_cursor(self, pos: QPointF) -> None:
        hit = self._handle_at(pos)
        if hit is not None:
            handle = hit[1]
            self.viewport().setCursor(handle.cursor if handle else Qt.CursorShape.CrossCursor)
            self.viewport().setToolTip("Drag to draw this subject's path" if handle is None else "")
            return
        subject = self._subject_at(pos)
        if subject is not None:
            self.viewport().setCursor(Qt.CursorShape.SizeAllCursor)
            self.viewport().setToolTip(
                f"{subject.name}: drag to move (Ctrl: whole path), Shift-drag to draw its path, right-click for more"
            )
        else:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            self.viewport().setToolTip("")

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        subject = self._subject_at(event.position())
        if subject is None:
            super().mouseDoubleClickEvent(event)
            return
        self._rename_interactively(subject.name)
        event.accept()

    def _rename_interactively(self, name: str) -> None:
        text, ok = QInputDialog.getText(self, "Rename subject", "Name (the words the prompt uses):", text=name)
        if ok and text.strip():
            try:
                self.rename_subject(name, text)
            except LayoutError:
                pass

    def _choose_color(self, name: str) -> None:
        current = qcolor(self._layout.subject(name).color)
        color = QColorDialog.getColor(current, self, f"Colour of {name}")
        if color.isValid():
            self.set_subject_color(name, hex_color(color))

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802
        subject = self._subject_at(QPointF(event.pos()))
        if subject is None:
            menu = QMenu(self)
            snap = QAction("Snap to grid", menu, checkable=True, checked=self._snapping)
            snap.toggled.connect(self.set_snapping)
            menu.addAction(snap)
            onion = QAction("Show paths (onion skin)", menu, checkable=True, checked=self._onion)
            onion.toggled.connect(self.set_onion_skin)
            menu.addAction(onion)
            menu.exec(event.globalPos())
            return
        name = subject.name
        self.select_subject(name)
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self._rename_interactively(name))
        menu.addAction("Colour…", lambda: self._choose_color(name))
        palette = menu.addMenu("Palette")
        for c in PALETTE:
            pix_action = palette.addAction(_swatch(c), hex_color(qcolor(c)))
            pix_action.triggered.connect(lambda _=False, c=c: self.set_subject_color(name, hex_color(qcolor(c))))
        easing = menu.addMenu("Easing")
        for e in Easing:
            act = easing.addAction(e.value.replace("_", " "))
            act.setCheckable(True)
            act.setChecked(subject.easing is e)
            act.triggered.connect(lambda _=False, e=e: self.set_subject_easing(name, e))
        clear = menu.addAction("Clear path", lambda: self.clear_path(name))
        clear.setEnabled(len(subject.keyframes) > 1)
        kf = keyframe_near(subject, self._time)
        if kf is not None and len(subject.keyframes) > 1:
            menu.addAction(f"Delete keyframe at {kf.t:.2f}", lambda: self.remove_keyframe(name, kf.t))
        menu.addSeparator()
        menu.addAction("Delete subject", lambda: self.remove_subject(name))
        menu.exec(event.globalPos())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self._selected is not None:
            self.delete_selection()
            event.accept()
            return
        if key == Qt.Key.Key_Escape:
            if self._mode is not DragMode.NONE:
                self._cancel_drag()
            else:
                self.select_subject(None)
            event.accept()
            return
        steps = {
            Qt.Key.Key_Left: (-1, 0),
            Qt.Key.Key_Right: (1, 0),
            Qt.Key.Key_Up: (0, -1),
            Qt.Key.Key_Down: (0, 1),
        }
        if key in steps and self._selected is not None:
            step = NUDGE_LARGE if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else NUDGE
            sx, sy = steps[key]
            self.nudge(sx * step, sy * step)
            event.accept()
            return
        super().keyPressEvent(event)


def _swatch(color: str):  # -> QIcon
    from PySide6.QtGui import QIcon, QPixmap

    pix = QPixmap(14, 14)
    pix.fill(qcolor(color))
    return QIcon(pix)


__all__ = [
    "SketchCanvas",
    "SubjectItem",
    "Handle",
    "DragMode",
    "next_color",
    "unique_name",
    "with_box_at",
    "keyframe_near",
    "simplify",
    "path_keyframes",
]
