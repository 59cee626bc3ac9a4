"""The clip-time slider under the sketch canvas, with the selected subject's keyframes on it.

Click or drag on the track to set the time; click a keyframe marker to select it (the time jumps
to it), drag a marker to move that keyframe in time, Delete to remove it. The slider does not
edit anything itself: it emits requests and the canvas pushes the undoable commands.
"""

from __future__ import annotations

from collections.abc import Sequence

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

MARKER_HIT_PX = 7.0
MARGIN_PX = 14.0


class KeyframeSlider(QWidget):
    timeChanged = Signal(float)  # the user set the time (click or scrub)
    keyframeSelected = Signal(object)  # t of the clicked keyframe, or None
    keyframeMoveRequested = Signal(float, float)  # (old t, new t), on release of a marker drag
    keyframeDeleteRequested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._time = 0.0
        self._keyframes: list[float] = []
        self._others: list[tuple[float, QColor]] = []
        self._color = QColor("#1e88e5")
        self._selected: float | None = None
        self._drag_kf: float | None = None  # original t of the marker being dragged
        self._drag_to: float | None = None
        self._scrubbing = False
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setToolTip(
            "Clip time. Click to move the playhead; click a keyframe to select it, drag it to retime it, "
            "Delete to remove it. Moving a box at another time adds a keyframe there."
        )

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(300, 40)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, 40)

    # -- state set by the panel
    def time(self) -> float:
        return self._time

    def set_time(self, t: float) -> None:
        t = min(1.0, max(0.0, float(t)))
        if t != self._time:
            self._time = t
            self.update()

    def keyframes(self) -> list[float]:
        return list(self._keyframes)

    def set_keyframes(self, times: Sequence[float], color: str | QColor | None = None) -> None:
        self._keyframes = sorted(float(t) for t in times)
        if color is not None:
            self._color = QColor(color)
        if self._selected is not None and not any(abs(t - self._selected) < 1e-9 for t in self._keyframes):
            self._selected = None
        self.update()

    def set_other_keyframes(self, marks: Sequence[tuple[float, str]]) -> None:
        """Keyframes of the other subjects, drawn small and not editable."""
        self._others = [(float(t), QColor(c)) for t, c in marks]
        self.update()

    def selected_keyframe(self) -> float | None:
        return self._selected

    def set_selected_keyframe(self, t: float | None) -> None:
        if t != self._selected:
            self._selected = t
            self.update()

    # -- geometry
    def _track(self) -> QRectF:
        return QRectF(MARGIN_PX, 8.0, max(1.0, self.width() - 2 * MARGIN_PX), 14.0)

    def x_of(self, t: float) -> float:
        track = self._track()
        return track.left() + t * track.width()

    def t_of(self, x: float) -> float:
        track = self._track()
        return min(1.0, max(0.0, (x - track.left()) / track.width()))

    def _marker_at(self, x: float) -> float | None:
        best = None
        for t in self._keyframes:
            d = abs(self.x_of(t) - x)
            if d <= MARKER_HIT_PX and (best is None or d < best[0]):
                best = (d, t)
        return best[1] if best else None

    # -- events
    OWN_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End, Qt.Key.Key_Delete, Qt.Key.Key_Backspace)

    def event(self, event: QEvent) -> bool:
        # arrows, Home/End and Delete belong to the slider while it has the focus, not to the
        # window's shortcuts (frame step, delete)
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in self.OWN_KEYS:  # type: ignore[attr-defined]
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier  # type: ignore[attr-defined]
            if mods in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier):
                event.accept()
                return True
        return super().event(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        x = event.position().x()
        kf = self._marker_at(x)
        if kf is not None:
            self._selected = kf
            self._drag_kf = kf
            self._drag_to = kf
            self.keyframeSelected.emit(kf)
            self._emit_time(kf)
        else:
            if self._selected is not None:
                self._selected = None
                self.keyframeSelected.emit(None)
            self._scrubbing = True
            self._emit_time(self.t_of(x))
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        x = event.position().x()
        if self._drag_kf is not None:
            self._drag_to = self.t_of(x)
            self._emit_time(self._drag_to)
            self.update()
        elif self._scrubbing:
            self._emit_time(self.t_of(x))
        else:
            self.setCursor(Qt.CursorShape.SizeHorCursor if self._marker_at(x) is not None else Qt.CursorShape.ArrowCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self._drag_kf is not None:
            old, new = self._drag_kf, self.t_of(event.position().x())
            self._drag_kf = None
            self._drag_to = None
            if abs(new - old) > 1e-6:
                self.keyframeMoveRequested.emit(old, new)
        self._scrubbing = False
        self.update()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self._selected is not None:
            self.keyframeDeleteRequested.emit(self._selected)
            event.accept()
            return
        step = 0.1 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 0.01
        if key == Qt.Key.Key_Left:
            self._emit_time(self._time - step)
        elif key == Qt.Key.Key_Right:
            self._emit_time(self._time + step)
        elif key == Qt.Key.Key_Home:
            self._emit_time(0.0)
        elif key == Qt.Key.Key_End:
            self._emit_time(1.0)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def _emit_time(self, t: float) -> None:
        t = min(1.0, max(0.0, t))
        if t != self._time:
            self._time = t
            self.update()
            self.timeChanged.emit(t)

    # -- painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        track = self._track()
        mid = track.center().y()
        # track
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(pal.mid())
        p.drawRoundedRect(QRectF(track.left(), mid - 2, track.width(), 4), 2, 2)
        # ticks every 0.1, labels at 0, 0.5, 1
        font = QFont(self.font())
        font.setPixelSize(10)
        p.setFont(font)
        p.setPen(QPen(pal.text().color(), 1.0))
        for i in range(11):
            x = self.x_of(i / 10)
            h = 5 if i % 5 == 0 else 3
            p.drawLine(QPointF(x, track.bottom() + 1), QPointF(x, track.bottom() + 1 + h))
        for t, label, align in ((0.0, "0", Qt.AlignmentFlag.AlignLeft), (0.5, "½", Qt.AlignmentFlag.AlignHCenter),
                                (1.0, "end", Qt.AlignmentFlag.AlignRight)):
            x = self.x_of(t)
            r = QRectF(x - 30, track.bottom() + 6, 60, 12)
            if align is Qt.AlignmentFlag.AlignLeft:
                r.moveLeft(x - 3)
            elif align is Qt.AlignmentFlag.AlignRight:
                r.moveRight(x + 3)
            p.drawText(r, align | Qt.AlignmentFlag.AlignVCenter, label)
        # other subjects' keyframes: small dots under the track
        for t, c in self._others:
            c = QColor(c)
            c.setAlpha(150)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(c)
            p.drawEllipse(QPointF(self.x_of(t), mid + 6), 2.0, 2.0)
        # the selected subject's keyframes: diamonds
        for t in self._keyframes:
            shown = self._drag_to if self._drag_kf is not None and abs(t - self._drag_kf) < 1e-12 else t
            x = self.x_of(shown)
            s = 6.0
            diamond = QPolygonF([QPointF(x, mid - s), QPointF(x + s, mid), QPointF(x, mid + s), QPointF(x - s, mid)])
            selected = self._selected is not None and abs(t - self._selected) < 1e-9
            p.setPen(QPen(pal.highlight().color() if selected else QColor("#202020"), 2.0 if selected else 1.0))
            p.setBrush(self._color)
            p.drawPolygon(diamond)
        # playhead
        x = self.x_of(self._time)
        p.setPen(QPen(pal.highlight().color(), 2.0))
        p.drawLine(QPointF(x, track.top() - 5), QPointF(x, track.bottom() + 2))
        p.setBrush(pal.highlight())
        p.setPen(Qt.PenStyle.NoPen)
        p.drawPolygon(QPolygonF([QPointF(x - 5, 1), QPointF(x + 5, 1), QPointF(x, 7)]))
        if self.hasFocus():
            p.setPen(QPen(pal.highlight().color(), 1.0, Qt.PenStyle.DotLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
        p.end()
