"""Timeline preview: play a take (and a second one beside it, in sync) with its layout drawn over it.

Clips are decoded on a worker thread (``shotsketch.media.encode.iter_frames``) and handed back to
the UI thread by a queued signal; playback is a QTimer stepping one frame per tick; each view
paints its frame scaled to fit, aspect kept. Play, pause, step and scrub are not edits, so they
are not on any undo stack; the overlay switches are plain toggles.

Clip time for the layout: ``t = frame / (frames - 1)`` (0 for a one-frame clip). Attention
heatmaps are per latent frame; pixel frame ``p`` uses latent frame ``0`` for ``p == 0`` and
``(p + 3) // 4`` otherwise (Wan's VAE packs four frames into each latent after the first).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QObject, QPoint, QRect, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetrics, QImage, QKeySequence, QMouseEvent, QPainter,
                           QPaintEvent, QPen, QShortcut)
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QSizePolicy, QSlider, QStyle, QToolButton, QVBoxLayout, QWidget)

from shotsketch.core.layout import Layout
from shotsketch.media.encode import EncodeError, iter_frames
from shotsketch.media.heatmaps import read_heatmaps
from shotsketch.media.sidecar import read_sidecar
from shotsketch.ui.dragout import start_take_drag

log = logging.getLogger(__name__)

DEFAULT_FPS = 24.0
MIN_FPS = 1.0
MAX_FPS = 120.0


# ----------------------------------------------------------------------------- pure helpers
def clip_time(frame: int, frames: int) -> float:
    """Layout time of ``frame`` in a clip of ``frames`` frames: 0 at the first, 1 at the last."""
    if frames <= 1:
        return 0.0
    return min(1.0, max(0.0, frame / (frames - 1)))


def latent_index(frame: int, latent_frames: int) -> int:
    """The latent frame holding pixel frame ``frame`` (0 -> 0, then four pixel frames per latent)."""
    index = 0 if frame <= 0 else (frame + 3) // 4
    return max(0, min(latent_frames - 1, index))


def timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF`` of a frame index at ``fps`` (non-drop; the frame field counts whole frames)."""
    base = max(1, round(fps))
    ff = frame % base
    seconds = frame // base
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{ff:02d}"


def fit_rect(content: QSize, area: QRect) -> QRect:
    """The largest rectangle of ``content``'s aspect centred in ``area``."""
    if content.isEmpty() or area.isEmpty():
        return QRect()
    scale = min(area.width() / content.width(), area.height() / content.height())
    w = max(1, round(content.width() * scale))
    h = max(1, round(content.height() * scale))
    return QRect(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2, w, h)


def _heat_lut() -> np.ndarray:
    """256 RGBA entries: transparent dark purple -> red -> orange -> opaque pale yellow (inferno-like)."""
    anchors = np.array([[0.0, 20, 10, 60, 0], [0.25, 110, 20, 120, 70], [0.5, 210, 50, 60, 130],
                        [0.75, 250, 150, 20, 170], [1.0, 255, 250, 160, 200]], dtype=np.float64)
    x = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(x, anchors[:, 0], anchors[:, c]) for c in range(1, 5)], axis=1)
    return np.ascontiguousarray(lut.round().astype(np.uint8))


HEAT_LUT = _heat_lut()


def heat_rgba(values: np.ndarray, peak: float) -> np.ndarray:
    """A 2-D map as RGBA uint8 through :data:`HEAT_LUT`, 0 -> transparent, ``peak`` -> the brightest."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    v = np.clip(v / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(v)
    return np.ascontiguousarray(HEAT_LUT[(v * 255).astype(np.uint8)])


def rgb_image(frame: np.ndarray) -> QImage:
    """A QImage viewing a contiguous uint8 [h, w, 3] array (keep the array alive while it is used)."""
    h, w, _ = frame.shape
    return QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888)


# ----------------------------------------------------------------------------- decoding
@dataclass(frozen=True)
class DecodedClip:
    path: Path
    frames: np.ndarray  # uint8 [count, h, w, 3]
    fps: float
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # saved beside the clip

    @property
    def count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> QSize:
        return QSize(int(self.frames.shape[2]), int(self.frames.shape[1]))


def decode_clip(path: Path) -> DecodedClip:
    """Decode a whole take and read its heatmaps; its rate from the recipe sidecar, else the
    container, else 24."""
    meta, frames = iter_frames(path)
    data = [np.ascontiguousarray(f) for f in frames]
    if not data:
        raise EncodeError(f"{path.name} has no frames to show")
    fps = 0.0
    recipe = read_sidecar(path)
    output = recipe.get("output") if recipe else None
    if isinstance(output, dict) and isinstance(output.get("fps"), (int, float)):
        fps = float(output["fps"])
    if not fps and not path.is_dir():
        fps = float(meta.get("fps") or 0.0)
    if not math.isfinite(fps) or fps <= 0:
        fps = DEFAULT_FPS
    return DecodedClip(path, np.stack(data), fps, read_heatmaps(path))


class ClipLoader(QObject):
    """Decodes clips on worker threads; results come back on the UI thread, stale ones are dropped."""

    loaded = Signal(int, object)   # ticket, DecodedClip
    failed = Signal(int, str)      # ticket, message for a person

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ticket = 0
        self._threads: list[threading.Thread] = []

    def load(self, path: Path) -> int:
        self._ticket += 1
        ticket = self._ticket
        thread = threading.Thread(target=self._run, args=(ticket, Path(path)), name="shotsketch-decode",
                                  daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return ticket

    def cancel(self) -> None:
        """Forget any load in flight (its result will be ignored)."""
        self._ticket += 1

    def is_current(self, ticket: int) -> bool:
        return ticket == self._ticket

    def wait(self, timeout: float = 10.0) -> None:
        for t in list(self._threads):
            t.join(timeout)

    def _run(self, ticket: int, path: Path) -> None:
        try:
            try:
                clip = decode_clip(path)
            except EncodeError as exc:
                self.failed.emit(ticket, str(exc))
            except Exception as exc:  # noqa: BLE001 - a decode must never take the UI down; the log has the detail
                log.exception("decoding %s failed", path)
                self.failed.emit(ticket, f"{path.name} could not be decoded ({exc}); the details are in the log")
            else:
                self.loaded.emit(ticket, clip)
        except RuntimeError:  # the panel was deleted while decoding: nobody to tell
            log.debug("decode of %s finished after its panel was closed", path)


# ----------------------------------------------------------------------------- one video view
class VideoView(QWidget):
    """Paints one take's current frame, letterboxed, with the layout boxes and a heatmap over it."""

    dragMessage = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(160, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._clip: DecodedClip | None = None
        self._frame = 0
        self._layout: Layout | None = None
        self._overlay = True
        self._heatmaps: dict[str, np.ndarray] = {}
        self._heat_peaks: dict[str, float] = {}
        self._heat_name: str | None = None
        self._heat_cache: tuple[str, int, QImage] | None = None
        self._title = ""
        self._message = "No take loaded"
        self._press: QPoint | None = None
        self.path: Path | None = None

    # -- state
    def clear(self, message: str = "") -> None:
        self._clip = None
        self._frame = 0
        self._message = message
        self.update()

    def set_clip(self, clip: DecodedClip) -> None:
        self._clip = clip
        self.path = clip.path
        self._frame = min(self._frame, clip.count - 1)
        self._message = ""
        self._heat_cache = None
        self.update()

    def clip(self) -> DecodedClip | None:
        return self._clip

    def set_title(self, title: str) -> None:
        self._title = title
        self.update()

    def set_frame(self, frame: int) -> None:
        if self._clip is not None:
            frame = max(0, min(self._clip.count - 1, frame))
        if frame != self._frame:
            self._frame = frame
            self.update()

    def displayed_frame(self) -> int:
        return self._frame

    def set_layout(self, layout: Layout | None) -> None:
        self._layout = layout
        self.update()

    def layout_shown(self) -> Layout | None:
        return self._layout

    def set_overlay(self, on: bool) -> None:
        self._overlay = bool(on)
        self.update()

    def set_heatmaps(self, heatmaps: dict[str, np.ndarray] | None) -> None:
        self._heatmaps = {}
        self._heat_peaks = {}
        for name, arr in (heatmaps or {}).items():
            a = np.asarray(arr, dtype=np.float32)
            if a.ndim == 2:
                a = a[None]
            if a.ndim != 3 or a.shape[0] < 1 or a.shape[1] < 1 or a.shape[2] < 1:
                log.warning("ignoring heatmap %r shaped %s; expected [latent_frames, h, w]", name, a.shape)
                continue
            self._heatmaps[name] = a
            finite = a[np.isfinite(a)]
            self._heat_peaks[name] = float(finite.max()) if finite.size else 0.0
        if self._heat_name not in self._heatmaps:
            self._heat_name = None
        self._heat_cache = None
        self.update()

    def set_heatmap(self, name: str | None) -> None:
        self._heat_name = name if name in self._heatmaps else None
        self._heat_cache = None
        self.update()

    def video_rect(self) -> QRect:
        """Where the frame is painted, in widget coordinates (empty when nothing is loaded)."""
        if self._clip is None:
            return QRect()
        return fit_rect(self._clip.size, self._content_area())

    def _content_area(self) -> QRect:
        top = self._title_height() if self._title else 0
        return self.rect().adjusted(0, top, 0, 0)

    def _title_height(self) -> int:
        return QFontMetrics(self.font()).height() + 6

    # -- painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(16, 16, 18))
        if self._title:
            band = QRect(0, 0, self.width(), self._title_height())
            p.fillRect(band, QColor(36, 36, 40))
            p.setPen(QColor(225, 225, 225))
            text = QFontMetrics(self.font()).elidedText(self._title, Qt.TextElideMode.ElideMiddle, band.width() - 12)
            p.drawText(band.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        clip = self._clip
        if clip is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self._content_area().adjusted(12, 12, -12, -12),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
            return
        target = self.video_rect()
        frame = clip.frames[self._frame]
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(target, rgb_image(frame))
        if self._heat_name is not None:
            self._paint_heatmap(p, target, clip)
        if self._overlay and self._layout is not None:
            self._paint_boxes(p, target, clip_time(self._frame, clip.count))

    def _paint_heatmap(self, p: QPainter, target: QRect, clip: DecodedClip) -> None:
        name = self._heat_name
        assert name is not None
        maps = self._heatmaps[name]
        index = latent_index(self._frame, maps.shape[0])
        if self._heat_cache is None or self._heat_cache[:2] != (name, index):
            rgba = heat_rgba(maps[index], self._heat_peaks[name])
            h, w, _ = rgba.shape
            image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
            self._heat_cache = (name, index, image)
        p.drawImage(target, self._heat_cache[2])

    def _paint_boxes(self, p: QPainter, target: QRect, t: float) -> None:
        assert self._layout is not None
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        fm = QFontMetrics(font)
        pen_w = max(2, round(min(target.width(), target.height()) / 160))
        for subject in self._layout.subjects:
            box = subject.box_at(t)
            rect = QRectF(target.x() + box.left * target.width(), target.y() + box.top * target.height(),
                          box.width * target.width(), box.height * target.height())
            colour = QColor(subject.color)
            pen = QPen(colour, pen_w)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            inset = pen_w / 2
            p.drawRect(rect.adjusted(inset, inset, -inset, -inset))
            label = fm.elidedText(subject.name, Qt.TextElideMode.ElideRight, max(140, int(rect.width())))
            lw, lh = fm.horizontalAdvance(label) + 8, fm.height() + 2
            lx = rect.x()
            ly = rect.y() - lh if rect.y() - lh >= target.y() else rect.y()
            lx = min(lx, target.right() - lw)
            label_rect = QRectF(max(target.x(), lx), ly, lw, lh)
            p.fillRect(label_rect, QBrush(colour))
            p.setPen(QColor(0, 0, 0) if colour.lightnessF() > 0.6 else QColor(255, 255, 255))
            p.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, label)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, 300)

    # -- drag-out of the take's file
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.path is not None:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._press is not None and event.buttons() & Qt.MouseButton.LeftButton:
            if (event.position().toPoint() - self._press).manhattanLength() >= QApplication.startDragDistance():
                self._press = None
                self.start_drag()
                return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._press = None
        super().mouseReleaseEvent(event)

    def start_drag(self) -> None:
        if self.path is None:
            return
        offer = start_take_drag(self, [self.path], self.grab(self.video_rect()) if self._clip else None)
        if offer.message:
            self.dragMessage.emit(offer.message)


# ----------------------------------------------------------------------------- the panel
class TimelinePanel(QWidget):
    """Play a take with its layout over it; optionally a second take beside it, frame for frame."""

    frameChanged = Signal(int)
    loaded = Signal()                 # the take (and the compared one) are decoded and shown
    playingChanged = Signal(bool)
    errorOccurred = Signal(str)       # a message for a person (missing file, unreadable clip)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._frame = 0
        self._count = 0
        self._fps = DEFAULT_FPS
        self._fps_from_user = False
        self._heatmaps_given = False
        self._loop = True
        self._playing = False
        self._resume_after_scrub = False
        self._layout: Layout | None = None
        self._compare_layout: Layout | None = None
        self._compare_same_layout = True
        self._title = ""

        self._loader = ClipLoader(self)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_failed)
        self._compare_loader = ClipLoader(self)
        self._compare_loader.loaded.connect(self._on_compare_loaded)
        self._compare_loader.failed.connect(self._on_compare_failed)

        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

        self.view = VideoView(self)
        self.compare_view = VideoView(self)
        self.compare_view.hide()
        for v in (self.view, self.compare_view):
            v.dragMessage.connect(self.errorOccurred)

        style = self.style()
        self.play_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Play (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.back_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward),
                                      "Previous frame (Left)")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward),
                                         "Next frame (Right)")
        self.forward_button.clicked.connect(lambda: self.step(1))

        self.loop_box = QCheckBox("Loop")
        self.loop_box.setChecked(self._loop)
        self.loop_box.toggled.connect(self.set_loop)
        self.overlay_box = QCheckBox("Boxes")
        self.overlay_box.setToolTip("Draw the layout's subject boxes over the video")
        self.overlay_box.setChecked(True)
        self.overlay_box.toggled.connect(self.set_overlay)
        self.heatmap_combo = QComboBox()
        self.heatmap_combo.setToolTip("Show where a subject's words attended, frame by frame")
        self.heatmap_combo.addItem("Heatmap: off", None)
        self.heatmap_combo.hide()
        self.heatmap_combo.currentIndexChanged.connect(self._on_heatmap_choice)
        self.heatmap_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)

        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(MIN_FPS, MAX_FPS)
        self.fps_spin.setDecimals(2)
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setValue(self._fps)
        self.fps_spin.setToolTip("Playback rate (the take's own rate when it loads)")
        self.fps_spin.valueChanged.connect(self._on_fps_spin)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setMinimumWidth(60)
        self.slider.setPageStep(4)
        self.slider.valueChanged.connect(self.seek)
        self.slider.sliderPressed.connect(self._scrub_start)
        self.slider.sliderReleased.connect(self._scrub_end)

        self.frame_label = QLabel()
        self.frame_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        self.frame_label.setFont(mono)

        views = QHBoxLayout()
        views.setSpacing(4)
        views.addWidget(self.view, 1)
        views.addWidget(self.compare_view, 1)
        # two short rows rather than one long one, so the panel fits a narrow dock
        transport = QHBoxLayout()
        transport.setSpacing(4)
        for w in (self.back_button, self.play_button, self.forward_button):
            transport.addWidget(w)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.frame_label)
        options = QHBoxLayout()
        options.setSpacing(8)
        options.addWidget(self.loop_box)
        options.addWidget(self.overlay_box)
        options.addWidget(self.heatmap_combo)
        options.addStretch(1)
        options.addWidget(self.fps_spin)
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        root.setSpacing(4)
        root.addLayout(views, 1)
        root.addLayout(transport)
        root.addLayout(options)

        for keys, slot in ((Qt.Key.Key_Space, self.toggle_play), (Qt.Key.Key_Left, lambda: self.step(-1)),
                           (Qt.Key.Key_Right, lambda: self.step(1)), (Qt.Key.Key_Home, lambda: self.seek(0)),
                           (Qt.Key.Key_End, lambda: self.seek(self._count - 1))):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._set_enabled(False)
        self._update_label()

    @staticmethod
    def _tool(icon, tip: str) -> QToolButton:  # noqa: ANN001
        b = QToolButton()
        b.setIcon(icon)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setIconSize(QSize(20, 20))
        return b

    # -- loading
    def load_take(self, path: Path, layout: Layout | None = None,
                  heatmaps: dict[str, np.ndarray] | None = None, *, title: str | None = None) -> None:
        """Show ``path`` (decoded off the UI thread; :attr:`loaded` fires when it is ready).

        ``heatmaps`` maps a subject name to its attention, shaped [latent_frames, h, w] (None: the
        maps saved beside the clip, read with the decode);
        ``title`` names the take above the video when two are compared (default: the file name).
        """
        self.pause()
        path = Path(path)
        self._title = title or path.name
        self._layout = layout
        self._fps_from_user = False
        self._heatmaps_given = heatmaps is not None
        self.view.set_layout(layout)
        if self._compare_same_layout:
            self.compare_view.set_layout(layout)
        self.view.set_heatmaps(heatmaps)
        self._fill_heatmap_combo(heatmaps or {})
        self.view.path = path
        self.view.set_title(self._title if self.is_comparing() else "")
        self.view.clear(f"Loading {path.name}…")
        self._count = 0
        self._frame = 0
        self._set_enabled(False)
        self._loader.load(path)
        self._update_label()

    def clear(self, message: str = "") -> None:
        """Show no take (a shot without takes is open): no picture, no boxes, nothing to play."""
        self.pause()
        self._loader.cancel()
        self.compare_with(None)
        self._layout = None
        self._title = ""
        self.view.set_layout(None)
        self.view.set_heatmaps(None)
        self._fill_heatmap_combo({})
        self.view.path = None
        self.view.clear(message)
        self._count = 0
        self._frame = 0
        self._set_enabled(False)
        self._update_label()

    def compare_with(self, path: Path | None, layout: Layout | None = None, *, title: str | None = None) -> None:
        """Show a second take beside the first, frame for frame; None closes it.

        ``layout`` is the boxes drawn over the second take; None draws the first take's layout.
        """
        if path is None:
            self._compare_loader.cancel()
            self.compare_view.hide()
            self.compare_view.clear()
            self.compare_view.path = None
            self.view.set_title("")
            return
        path = Path(path)
        self._compare_same_layout = layout is None
        self.compare_view.set_layout(self._layout if layout is None else layout)
        self.compare_view.path = path
        self.compare_view.set_title(title or path.name)
        if self.view.path is not None:
            self.view.set_title(self._title)
        self.compare_view.clear(f"Loading {path.name}…")
        self.compare_view.set_overlay(self.overlay_box.isChecked())
        self.compare_view.show()
        self._compare_loader.load(path)

    def is_comparing(self) -> bool:
        return self.compare_view.isVisibleTo(self)

    @Slot(int, object)
    def _on_loaded(self, ticket: int, clip: DecodedClip) -> None:
        if not self._loader.is_current(ticket):
            return
        self.view.set_clip(clip)
        if not self._heatmaps_given and clip.heatmaps:
            self.view.set_heatmaps(clip.heatmaps)
            self._fill_heatmap_combo(clip.heatmaps)
        self._count = clip.count
        if not self._fps_from_user:
            self._set_fps_quietly(clip.fps)
        self.slider.blockSignals(True)
        self.slider.setRange(0, self._count - 1)
        self.slider.blockSignals(False)
        self._set_enabled(True)
        self._show_frame(0, force=True)
        self.loaded.emit()

    @Slot(int, str)
    def _on_failed(self, ticket: int, message: str) -> None:
        if not self._loader.is_current(ticket):
            return
        self.view.clear(message)
        self._count = 0
        self._set_enabled(False)
        self._update_label()
        self.errorOccurred.emit(message)

    @Slot(int, object)
    def _on_compare_loaded(self, ticket: int, clip: DecodedClip) -> None:
        if not self._compare_loader.is_current(ticket):
            return
        self.compare_view.set_clip(clip)
        self.compare_view.set_frame(self._frame)
        self.loaded.emit()

    @Slot(int, str)
    def _on_compare_failed(self, ticket: int, message: str) -> None:
        if self._compare_loader.is_current(ticket):
            self.compare_view.clear(message)
            self.errorOccurred.emit(message)

    # -- transport
    def play(self) -> None:
        if self._count < 2 or self._playing:
            return
        if self._frame >= self._count - 1 and not self._loop:
            self._show_frame(0)
        self._playing = True
        self._timer.start(max(1, round(1000.0 / self._fps)))
        self._sync_play_button()
        self.playingChanged.emit(True)

    def pause(self) -> None:
        if not self._playing:
            return
        self._playing = False
        self._timer.stop()
        self._sync_play_button()
        self.playingChanged.emit(False)

    def toggle_play(self) -> None:
        self.pause() if self._playing else self.play()

    def is_playing(self) -> bool:
        return self._playing

    def step(self, n: int) -> None:
        """Pause and move ``n`` frames (wrapping round when looping)."""
        self.pause()
        if self._count:
            target = self._frame + int(n)
            target = target % self._count if self._loop else max(0, min(self._count - 1, target))
            self._show_frame(target)

    def seek(self, frame: int) -> None:
        if self._count:
            self._show_frame(max(0, min(self._count - 1, int(frame))))

    def set_loop(self, on: bool) -> None:
        self._loop = bool(on)
        if self.loop_box.isChecked() != self._loop:
            self.loop_box.setChecked(self._loop)

    def loops(self) -> bool:
        return self._loop

    def set_fps(self, fps: float) -> None:
        """Playback rate (the take keeps its own; this only changes how fast the preview runs)."""
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"frame rate must be a positive number, got {fps!r}")
        self._fps_from_user = True
        self._set_fps_quietly(fps)

    def fps(self) -> float:
        return self._fps

    def set_overlay(self, on: bool) -> None:
        on = bool(on)
        self.view.set_overlay(on)
        self.compare_view.set_overlay(on)
        if self.overlay_box.isChecked() != on:
            self.overlay_box.setChecked(on)

    def overlay_shown(self) -> bool:
        return self.overlay_box.isChecked()

    def set_heatmap(self, name: str | None) -> None:
        """Show the attention heatmap of subject ``name`` over the video; None hides it."""
        index = self.heatmap_combo.findData(name) if name is not None else 0
        if index < 0:
            raise KeyError(f"no heatmap for {name!r}")
        self.heatmap_combo.setCurrentIndex(index)
        self.view.set_heatmap(name)

    def current_frame(self) -> int:
        return self._frame

    def frame_count(self) -> int:
        return self._count

    def take_path(self) -> Path | None:
        return self.view.path

    def wait_decoded(self, timeout: float = 10.0) -> None:
        """Block until decode threads end (for tests and shutdown; the UI itself never waits)."""
        self._loader.wait(timeout)
        self._compare_loader.wait(timeout)

    # -- internals
    def _tick(self) -> None:
        if self._count < 2:
            self.pause()
            return
        nxt = self._frame + 1
        if nxt >= self._count:
            if not self._loop:
                self._show_frame(self._count - 1)
                self.pause()
                return
            nxt = 0
        self._show_frame(nxt)

    def _show_frame(self, frame: int, force: bool = False) -> None:
        if frame == self._frame and not force:
            return
        self._frame = frame
        self.view.set_frame(frame)
        if self.compare_view.isVisibleTo(self):
            self.compare_view.set_frame(frame)
        if self.slider.value() != frame:
            self.slider.blockSignals(True)
            self.slider.setValue(frame)
            self.slider.blockSignals(False)
        self._update_label()
        self.frameChanged.emit(frame)

    def _set_fps_quietly(self, fps: float) -> None:
        self._fps = min(MAX_FPS, max(MIN_FPS, fps))
        self.fps_spin.blockSignals(True)
        self.fps_spin.setValue(self._fps)
        self.fps_spin.blockSignals(False)
        if self._playing:
            self._timer.setInterval(max(1, round(1000.0 / self._fps)))
        self._update_label()

    def _on_fps_spin(self, value: float) -> None:
        self.set_fps(value)

    def _scrub_start(self) -> None:
        self._resume_after_scrub = self._playing
        self.pause()

    def _scrub_end(self) -> None:
        if self._resume_after_scrub:
            self.play()
        self._resume_after_scrub = False

    def _fill_heatmap_combo(self, heatmaps: dict[str, np.ndarray]) -> None:
        self.heatmap_combo.blockSignals(True)
        self.heatmap_combo.clear()
        self.heatmap_combo.addItem("Heatmap: off", None)
        for name in heatmaps:
            self.heatmap_combo.addItem(f"Heatmap: {name}", name)
        self.heatmap_combo.setVisible(bool(heatmaps))  # only takes with attention maps offer them
        self.heatmap_combo.blockSignals(False)

    def _on_heatmap_choice(self, index: int) -> None:
        self.view.set_heatmap(self.heatmap_combo.itemData(index))

    def _set_enabled(self, on: bool) -> None:
        for w in (self.play_button, self.back_button, self.forward_button, self.slider):
            w.setEnabled(on)

    def _sync_play_button(self) -> None:
        pix = QStyle.StandardPixmap.SP_MediaPause if self._playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(pix))
        self.play_button.setToolTip("Pause (Space)" if self._playing else "Play (Space)")

    def _update_label(self) -> None:
        if not self._count:
            self.frame_label.setText("–/–  --:--:--:--")
            return
        width = len(str(self._count))
        self.frame_label.setText(f"{self._frame + 1:>{width}}/{self._count}  {timecode(self._frame, self._fps)}")
        self.frame_label.setToolTip(f"Frame {self._frame + 1} of {self._count} (timecode at {self._fps:g} fps)")

    def hideEvent(self, event) -> None:  # noqa: ANN001, N802
        self.pause()
        super().hideEvent(event)


__all__ = ["TimelinePanel", "VideoView", "DecodedClip", "ClipLoader", "clip_time", "latent_index", "timecode",
           "fit_rect", "heat_rgba"]
