"""The main window: dockable panels around the shot being made, menus and shortcuts, the queue.

Wiring (see CONTRACTS.md): the sketch's layout is phrased into the prompt's spatial clause; a
typed prompt can draft a layout; Generate builds one immutable GenerationRequest per seed on this
(UI) thread and hands it to the GpuWorker; engine events come back as signals and are handled in
one ``match`` (:meth:`MainWindow._on_event`); a finished job becomes a take on a background
thread (encode, sidecar, thumbnail, library) and is shown in the timeline and the library.
The open shot autosaves a moment after each change and is reopened at the next start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox,
    QDockWidget, QDoubleSpinBox, QGraphicsView, QInputDialog, QLabel, QLineEdit, QMainWindow, QPlainTextEdit,
    QSlider, QSpinBox, QTextEdit, QToolBar, QToolButton, QWidget,
)

from shotsketch import DEMO_LABEL, __version__
from shotsketch.core import paths
from shotsketch.core.examples import example_shot
from shotsketch.core.layout import Layout, LayoutError
from shotsketch.core.library import Library, LibraryError, Shot, Take
from shotsketch.core.settings import AppSettings, load_settings, save_settings
from shotsketch.engine.events import JobCancelled, JobEvent, JobFailed, JobFinished, JobStarted, JobStep
from shotsketch.engine.requests import FAST_MODE_STEPS, MAX_SEED, GenerationRequest, RequestError, validate_request
from shotsketch.media.heatmaps import adherence_summary, read_heatmaps
from shotsketch.ui import placeholders
from shotsketch.ui.errors import ErrorReporter, sentence
from shotsketch.ui.queue_panel import JobState, QueuedJob, QueuePanel
from shotsketch.ui.takes import TakeWriter, VariantSnapshot
from shotsketch.ui.worker import EngineFactory, GpuWorker, WorkerState, generator_factory, status_text

log = logging.getLogger(__name__)

AUTOSAVE_DELAY_MS = 700
PREPARE_PROMPT_DELAY_MS = 600  # after the last keystroke: encode the prompt ahead of Generate
LAYOUT_VERSION = 2  # bump when docks are added or renamed: old saved states are then ignored
STATE_VERSION = 1
COMPACT_BELOW = 1500  # window width (px) under which the preview goes above the sketch and prompt
SIZE_PRESETS = [(448, 256), (640, 352), (832, 480), (480, 832), (1280, 704), (704, 1280)]


def model_label(model: str) -> str:
    if model == "demo":
        return DEMO_LABEL
    if model.startswith("hf:"):
        return f"Wan2.2 TI2V-5B ({model[3:]}, Hugging Face cache)"
    return f"Wan2.2 TI2V-5B ({Path(model).name or model})"


@dataclass(frozen=True)
class ShotSettings:
    """The generation settings of the open shot (defaults come from AppSettings)."""

    width: int
    height: int
    frames: int
    steps: int
    guidance: float
    seed: int

    @classmethod
    def from_app(cls, s: AppSettings, seed: int = 0) -> ShotSettings:
        return cls(s.width, s.height, s.frames, s.steps, s.guidance, seed)

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "frames": self.frames, "steps": self.steps,
                "guidance": self.guidance, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: Any, fallback: ShotSettings) -> ShotSettings:
        if not isinstance(data, dict):
            return fallback
        out = fallback.to_dict()
        for key, default in out.items():
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = type(default)(value)
        return cls(**out)


@dataclass
class _Job:
    job_id: str
    request: GenerationRequest
    snapshot: VariantSnapshot
    layout: Layout | None


class _KeyRouter(QObject):
    """Leaves plain Space, arrows and Delete to the widget that has the focus when it uses them
    (text fields, the sketch canvas, lists, sliders, buttons), so the window's shortcuts for
    play/pause and frame step never steal them; inside the timeline they go to the shortcuts."""

    KEYS = {Qt.Key.Key_Space, Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Delete, Qt.Key.Key_Backspace}
    TAKERS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox, QGraphicsView, QAbstractItemView,
              QAbstractSlider, QComboBox)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(obj, QWidget):
            key = event.key()  # type: ignore[attr-defined]
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier  # type: ignore[attr-defined]
            if key in self.KEYS and mods == Qt.KeyboardModifier.NoModifier and self.widget_takes(obj, key):
                event.accept()
                return True  # handled: the key goes to the widget as a key press, not to a shortcut
        return False

    def widget_takes(self, widget: QWidget, key: int) -> bool:
        timeline = self._window.timeline
        if timeline.isAncestorOf(widget) or widget is timeline:
            return isinstance(widget, (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox))
        if isinstance(widget, self.TAKERS):
            return True
        return key == Qt.Key.Key_Space and isinstance(widget, QAbstractButton)


class MainWindow(QMainWindow):
    takeSaved = Signal(object)  # core.library.Take, once it is in the library and shown
    shotLoaded = Signal(int)

    def __init__(
        self,
        *,
        library: Library | None = None,
        settings: AppSettings | None = None,
        engine_factory: EngineFactory | None = None,
        demo: bool = False,
        show_error_dialogs: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.settings = settings or load_settings()
        self.model = "demo" if demo else self.settings.model
        self.demo = self.model == "demo"
        self.library = library or Library.open()
        self._owns_library = library is None
        self._io = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="shotsketch-io")
        self._take_writer = TakeWriter(self.library)
        self._jobs: dict[str, _Job] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._shot: Shot | None = None
        self._loading_state = False
        self._closed = False
        self.undo_stack = QUndoStack(self)

        self.status_model = QLabel()
        self.status_model.setObjectName("statusModel")
        self.status_worker = QLabel()
        self.statusBar().addPermanentWidget(self.status_worker)
        self.statusBar().addPermanentWidget(self.status_model)
        self.errors = ErrorReporter(self, self.statusBar(), show_dialogs=show_error_dialogs)

        self._build_panels()
        self._build_generate_bar()
        self._build_actions()
        self._build_menus()
        self._restore_window_layout()

        self.worker = GpuWorker(engine_factory or generator_factory(self.model, self.settings.memory_plan), self)
        self.worker.event.connect(self._on_event)
        self.worker.stateChanged.connect(self._on_worker_state)

        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_DELAY_MS)
        self._autosave.timeout.connect(self.autosave_now)
        # a pause in typing: the worker encodes the prompt ahead, so Generate finds it cached
        self._prepare_timer = QTimer(self)
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(PREPARE_PROMPT_DELAY_MS)
        self._prepare_timer.timeout.connect(self.prepare_prompt)
        self._connect_panels()
        self._key_router = _KeyRouter(self)
        app = QApplication.instance()
        app.installEventFilter(self._key_router)
        app.focusChanged.connect(self._on_focus_changed)

        self._open_initial_shot(demo)
        self._restore_queue()
        self._update_model_labels()
        self._on_worker_state(WorkerState.IDLE, "")

    # ------------------------------------------------------------------ panels
    def _build_panels(self) -> None:
        sketch_cls = placeholders.load_panel_class("shotsketch.ui.sketch_panel", "SketchPanel")
        prompt_cls = placeholders.load_panel_class("shotsketch.ui.prompt_editor", "PromptPanel")
        timeline_cls = placeholders.load_panel_class("shotsketch.ui.timeline", "TimelinePanel")
        library_cls = placeholders.load_panel_class("shotsketch.ui.library_panel", "LibraryPanel")
        if sketch_cls is not None:
            self.sketch = sketch_cls(self.undo_stack)
            stack = getattr(self.sketch, "undo_stack", None)
            if isinstance(stack, QUndoStack):
                self.undo_stack = stack
        else:
            self.sketch = placeholders.PlaceholderSketchPanel(self.undo_stack)
        self.prompt = (prompt_cls or placeholders.PlaceholderPromptPanel)()
        self.timeline = (timeline_cls or placeholders.PlaceholderTimelinePanel)()
        if self.timeline.focusPolicy() == Qt.FocusPolicy.NoFocus:
            self.timeline.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click on the video takes Space / arrows
        self.library_panel = (library_cls or placeholders.PlaceholderLibraryPanel)(self.library)
        self.queue = QueuePanel()
        self.queue.cancelRequested.connect(self.cancel_job)
        self.real_panels = {"sketch": sketch_cls is not None, "prompt": prompt_cls is not None,
                            "timeline": timeline_cls is not None, "library": library_cls is not None}

        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowNestedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.docks: dict[str, QDockWidget] = {}
        for key, title, widget in (
            ("library", "Library", self.library_panel),
            ("sketch", "Sketch", self.sketch),
            ("timeline", "Preview", self.timeline),
            ("prompt", "Prompt", self.prompt),
            ("queue", "Queue", self.queue),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{key}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetClosable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.docks[key] = dock
        # Every panel is a dock; the central area is left empty so the docks share the window.
        spacer = QWidget()
        spacer.setMaximumSize(0, 0)
        self.setCentralWidget(spacer)
        spacer.hide()

    def _compact(self) -> bool:
        return self.width() < COMPACT_BELOW

    def _arrange_default(self) -> None:
        """The shot in the middle, the library on the left.

        Wide windows: sketch and preview side by side, the prompt below both, the queue on the
        right. Narrower ones (below COMPACT_BELOW pixels): the preview across the top with sketch
        and prompt side by side below it, and the queue under the library, so the canvas keeps
        room to draw in.
        """
        d = self.docks
        for dock in d.values():
            dock.setFloating(False)
            self.removeDockWidget(dock)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["library"])
        if self._compact():
            self.splitDockWidget(d["library"], d["timeline"], Qt.Orientation.Horizontal)
            self.splitDockWidget(d["timeline"], d["sketch"], Qt.Orientation.Vertical)
            self.splitDockWidget(d["sketch"], d["prompt"], Qt.Orientation.Horizontal)
            self.splitDockWidget(d["library"], d["queue"], Qt.Orientation.Vertical)
        else:
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d["queue"])
            self.splitDockWidget(d["library"], d["sketch"], Qt.Orientation.Horizontal)
            self.splitDockWidget(d["sketch"], d["prompt"], Qt.Orientation.Vertical)
            self.splitDockWidget(d["sketch"], d["timeline"], Qt.Orientation.Horizontal)
        for dock in d.values():
            dock.show()
        self._size_docks()

    def _size_docks(self) -> None:
        d = self.docks
        width = max(self.width(), 1024)
        height = max(self.height(), 640)
        usable_h = height - 110  # menu, toolbar, status bar, dock titles
        if self._compact():
            side = 260
            middle = width - side - 12
            self.resizeDocks([d["library"], d["timeline"]], [side, middle], Qt.Orientation.Horizontal)
            self.resizeDocks([d["sketch"], d["prompt"]], [middle - middle // 2, middle // 2],
                             Qt.Orientation.Horizontal)
            top = int(usable_h * 0.48)
            self.resizeDocks([d["timeline"], d["sketch"]], [top, usable_h - top], Qt.Orientation.Vertical)
            self.resizeDocks([d["library"], d["queue"]], [usable_h - usable_h * 2 // 5, usable_h * 2 // 5],
                             Qt.Orientation.Vertical)
        else:
            side, queue = 280, 320
            middle = max(400, width - side - queue - 24)
            sketch_w = int(middle * 0.53)  # the sketch panel also holds its subject list
            self.resizeDocks([d["library"], d["sketch"], d["timeline"], d["queue"]],
                             [side, sketch_w, middle - sketch_w, queue], Qt.Orientation.Horizontal)
            # The top row as tall as a 16:9 picture of its width plus the panels' controls; the prompt
            # gets the rest (at least 240 px), so neither the canvas nor the preview floats in bars.
            top = max(int(usable_h * 0.55), min(usable_h - 240, int(middle / 2 * 9 / 16) + 170))
            self.resizeDocks([d["sketch"], d["prompt"]], [top, usable_h - top], Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        self._arrange_default()
        QTimer.singleShot(0, self._size_docks)

    def _build_generate_bar(self) -> None:
        bar = QToolBar("Generate")
        bar.setObjectName("toolbar_generate")
        bar.setMovable(False)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.size_box = QComboBox()
        self.size_box.setToolTip("Width × height of the clip, in pixels")
        for w, h in SIZE_PRESETS:
            self.size_box.addItem(f"{w} × {h} px", (w, h))
        self.frames_box = QSpinBox()
        self.frames_box.setRange(1, 241)
        self.frames_box.setSingleStep(4)
        self.frames_box.setSuffix(" frames")
        self.frames_box.setToolTip("Clip length: 4k+1 frames (17 frames ≈ 0.7 s at 24 fps)")
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, 200)
        self.steps_box.setSuffix(" steps")
        self.steps_box.setToolTip("Denoising steps: more is slower and usually cleaner")
        self.guidance_box = QDoubleSpinBox()
        self.guidance_box.setRange(1.0, 20.0)
        self.guidance_box.setSingleStep(0.5)
        self.guidance_box.setPrefix("guidance ")
        self.guidance_box.setToolTip("How closely the model follows the prompt (classifier-free guidance)")
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.seed_box.setPrefix("seed ")
        self.seed_box.setToolTip("Random seed: the same seed and settings give the same clip")
        dice = QToolButton()
        dice.setText("Random")
        dice.setToolTip("Pick a random seed")
        dice.clicked.connect(lambda: self.seed_box.setValue(random.randrange(0, 2**31 - 1)))
        self.generate_button = QToolButton()
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setText("Generate")
        self.generate_button.setToolTip("Queue a clip with these settings (Ctrl+Enter)")
        self.generate_button.clicked.connect(lambda: self.generate(1))
        self.variants_button = QToolButton()
        self.variants_button.setText("Queue 4 seeds")
        self.variants_button.setToolTip("Queue four clips with seeds s, s+1, s+2, s+3 (Ctrl+Shift+Enter)")
        self.variants_button.clicked.connect(lambda: self.generate(4))
        for button in (dice, self.variants_button):
            button.setAutoRaise(False)
        self._strength_save = QTimer(self)
        self._strength_save.setSingleShot(True)
        self._strength_save.setInterval(600)
        self._strength_save.timeout.connect(self._save_strength)
        self.strength_label = QLabel()
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setObjectName("layoutStrength")
        self.strength_slider.setRange(0, 30)  # tenths: 0.0 .. 3.0
        self.strength_slider.setFixedWidth(90)
        self.strength_slider.setToolTip(
            "Layout guidance: how strongly the sketch steers where each subject appears (0 = words only). "
            "It acts when the sketch has subjects whose names are in the prompt.")
        self.strength_label.setToolTip(self.strength_slider.toolTip())
        self.strength_slider.setValue(round(self.settings.layout_guidance_strength * 10))
        self._show_strength(self.strength_slider.value())
        self.strength_slider.valueChanged.connect(self._on_strength_changed)
        self.fast_button = QToolButton()
        self.fast_button.setText("Fast")
        self.fast_button.setCheckable(True)
        self.fast_button.setChecked(self.settings.fast_mode)
        self.fast_button.setToolTip(
            f"Fast mode: at most {FAST_MODE_STEPS} denoising steps, and 8-bit (FP8) matrix products on GPUs that have "
            "them. A full 1280x704 clip takes about a quarter of the time of 50 steps, with less fine detail. "
            "Turn it off to render the take you keep.")
        self.fast_button.toggled.connect(self._on_fast_toggled)
        for widget in (self.size_box, self.frames_box, self.steps_box, self.guidance_box, self.seed_box, dice,
                       self.strength_label, self.strength_slider, self.fast_button):
            bar.addWidget(widget)
        bar.addSeparator()
        bar.addWidget(self.generate_button)
        bar.addWidget(self.variants_button)
        self.generate_bar = bar

    def _show_strength(self, tenths: int) -> None:
        self.strength_label.setText(f"  layout {tenths / 10:.1f}" if tenths else "  layout off")

    def _on_strength_changed(self, tenths: int) -> None:
        self._show_strength(tenths)
        try:
            self.settings = self.settings.replace(layout_guidance_strength=tenths / 10)
        except ValueError:
            return
        self._strength_save.start()

    def _on_fast_toggled(self, on: bool) -> None:
        try:
            self.settings = self.settings.replace(fast_mode=on)
        except ValueError:
            return
        self.statusBar().showMessage(
            f"Fast mode on: at most {FAST_MODE_STEPS} steps." if on else "Fast mode off: the steps you set.", 4000)
        self._strength_save.start()

    def _save_strength(self) -> None:
        self._run_background(save_settings, self.settings)  # off the UI thread; a failure is logged

    def _build_actions(self) -> None:
        def action(text: str, slot: Callable[[], Any], shortcut: QKeySequence | str | None = None,
                   tip: str = "") -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            if tip:
                act.setStatusTip(tip)
            act.triggered.connect(lambda _checked=False: slot())
            self.addAction(act)
            return act

        self.act_new_project = action("&New project…", self.new_project, QKeySequence.StandardKey.New)
        self.act_new_shot = action("New &shot", self.new_shot, "Ctrl+Shift+N")
        self.act_open = action("&Open project…", self.open_project, QKeySequence.StandardKey.Open)
        self.act_settings = action("&Settings…", self.show_settings, QKeySequence.StandardKey.Preferences)
        self.act_model = action("Set up &model…", self.show_model_setup)
        self.act_quit = action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_undo = self.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_redo = self.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcut(QKeySequence.StandardKey.Redo)
        for act in (self.act_undo, self.act_redo):
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.sketch.addAction(act)
        self.act_delete = action("&Delete", self.delete_selection, QKeySequence.StandardKey.Delete,
                                 "Delete the selected subject")
        self.act_generate = action("&Generate", lambda: self.generate(1), "Ctrl+Return")
        self.act_generate.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.act_variants = action("Queue &4 seeds", lambda: self.generate(4), "Ctrl+Shift+Return")
        self.act_cancel_all = action("&Cancel all jobs", self.cancel_all)
        self.act_play = action("&Play / pause", self.toggle_play, "Space")
        self.act_prev = action("Previous &frame", lambda: self.step_frame(-1), "Left")
        self.act_next = action("&Next frame", lambda: self.step_frame(1), "Right")
        self.act_reset_layout = action("&Reset layout", self.reset_layout)
        self.act_about = action("&About Shotsketch", self.show_about)
        self.act_log = action("Show the &log file", self.show_log_location)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        for act in (self.act_new_project, self.act_new_shot, self.act_open):
            file.addAction(act)
        file.addSeparator()
        file.addAction(self.act_settings)
        file.addSeparator()
        file.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        edit.addAction(self.act_undo)
        edit.addAction(self.act_redo)
        edit.addSeparator()
        edit.addAction(self.act_delete)
        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(self.act_reset_layout)
        gen = bar.addMenu("&Generate")
        gen.addAction(self.act_generate)
        gen.addAction(self.act_variants)
        gen.addAction(self.act_cancel_all)
        play = bar.addMenu("&Playback")
        for act in (self.act_play, self.act_prev, self.act_next):
            play.addAction(act)
        model = bar.addMenu("&Model")
        model.addAction(self.act_model)
        help_ = bar.addMenu("&Help")
        help_.addAction(self.act_log)
        help_.addAction(self.act_about)

    def _connect_panels(self) -> None:
        self.sketch.sketchChanged.connect(self._on_sketch_changed)
        for name in ("promptChanged", "negativePromptChanged", "finalPromptChanged"):
            signal = getattr(self.prompt, name, None)
            if signal is not None:
                signal.connect(lambda _t: self._schedule_autosave())
                signal.connect(lambda _t: self._prepare_timer.start())
        self.prompt.draftRequested.connect(self.draft_layout_from_prompt)
        self.prompt.generateRequested.connect(lambda: self.generate(1))
        for box in (self.frames_box, self.steps_box, self.seed_box):
            box.valueChanged.connect(lambda _v: self._schedule_autosave())
        self.guidance_box.valueChanged.connect(lambda _v: self._schedule_autosave())
        self.size_box.currentIndexChanged.connect(lambda _i: self._schedule_autosave())
        for signal_name in ("shotOpened",):
            signal = getattr(self.library_panel, signal_name, None)
            if signal is not None:
                signal.connect(self.open_shot)
        take_signal = getattr(self.library_panel, "takeActivated", None)
        if take_signal is not None:
            take_signal.connect(self.show_take)
        for panel, name, slot in (
            (self.library_panel, "variantSelected", self.show_variant),
            (self.library_panel, "branchRequested", self.load_variant),
            (self.library_panel, "compareRequested", self.compare_takes),
            (self.library_panel, "exportRequested", self.export_takes),
            (self.library_panel, "errorOccurred", self._report_panel_error),
            (self.timeline, "errorOccurred", self._report_panel_error),
            (self.sketch, "errorOccurred", self._report_panel_error),
            (self.prompt, "errorOccurred", self._report_panel_error),
        ):
            signal = getattr(panel, name, None)
            if signal is not None:
                signal.connect(slot)

    def _report_panel_error(self, message: str) -> None:
        self.errors.report(message)

    # ------------------------------------------------------------------ window layout
    def _layout_file(self) -> Path:
        return paths.config_dir() / "window.ini"

    def _restore_window_layout(self) -> None:
        store = QSettings(str(self._layout_file()), QSettings.Format.IniFormat)
        geometry = store.value("geometry")
        state = store.value("state")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(self._default_size())
        self._arrange_default()
        if isinstance(state, QByteArray) and not state.isEmpty():
            if not self.restoreState(state, LAYOUT_VERSION):
                log.info("saved window layout is from another version; using the default")

    def _default_size(self) -> QSize:
        screen = QApplication.primaryScreen()
        if screen is None:
            return QSize(1280, 800)
        avail = screen.availableGeometry()
        return QSize(min(1600, max(1024, int(avail.width() * 0.9))), min(1000, max(700, int(avail.height() * 0.9))))

    def save_window_layout(self) -> None:
        store = QSettings(str(self._layout_file()), QSettings.Format.IniFormat)
        store.setValue("geometry", self.saveGeometry())
        store.setValue("state", self.saveState(LAYOUT_VERSION))
        store.sync()

    def resize_for_screenshot(self, size: QSize) -> None:
        """Resize and lay the panels out afresh for that size."""
        self.resize(size)
        self.reset_layout()

    # ------------------------------------------------------------------ shots
    def _open_initial_shot(self, demo: bool) -> None:
        shot = None
        try:
            shot = self.library.last_open_shot()
        except LibraryError as exc:
            self.errors.report(str(exc))
        if shot is None:
            shot = self.open_example_shot("yellow_ball")
        else:
            self.open_shot(shot.id)

    def open_example_shot(self, example_id: str = "yellow_ball", *, reset: bool = False) -> Shot:
        """Open the example's shot in the "Examples" project (created on first use)."""
        example = example_shot(example_id)
        project = next((p for p in self.library.list_projects() if p.name == "Examples"), None)
        if project is None:
            project = self.library.create_project("Examples")
        shot = next((s for s in self.library.list_shots(project.id) if s.name == example.name), None)
        fresh = shot is None
        if shot is None:
            shot = self.library.create_shot(project.id, example.name)
        if fresh or reset or self.library.load_shot_state(shot.id) is None:
            settings = ShotSettings.from_app(self.settings)
            if self.demo:
                settings = ShotSettings(448, 256, 17, 4, settings.guidance, 0)
            self.library.save_shot_state(shot.id, {
                "version": STATE_VERSION, "prompt": example.prompt, "negative_prompt": example.negative_prompt,
                "layout": example.layout.to_json(indent=None), "settings": settings.to_dict(),
            })
        self.open_shot(shot.id)
        return shot

    def open_shot(self, shot_id: int) -> None:
        if self._shot is not None and self._shot.id != shot_id:
            self.autosave_now()
        try:
            shot = self.library.get_shot(shot_id)
            state = self.library.load_shot_state(shot_id) or {}
            self.library.set_last_open_shot(shot_id)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        self._shot = shot
        self._apply_state(state)
        select = getattr(self.library_panel, "select_shot", None)
        if callable(select):
            select(shot_id)
        self._show_latest_take(shot_id)
        self._update_title()
        self.shotLoaded.emit(shot_id)

    def _apply_state(self, state: dict[str, Any]) -> None:
        self._loading_state = True
        try:
            layout = Layout()
            raw = state.get("layout")
            if raw:
                try:
                    layout = Layout.from_json(raw) if isinstance(raw, str) else Layout.from_dict(raw)
                except (LayoutError, ValueError) as exc:
                    self.errors.report(f"The saved sketch of this shot could not be read ({exc}); starting "
                                       "with an empty sketch.")
            self.sketch.set_sketch(layout, undoable=False)
            self.undo_stack.clear()
            self.prompt.set_prompt(str(state.get("prompt", "")))
            self.prompt.set_negative_prompt(str(state.get("negative_prompt", "")))
            self._update_clause(layout)
            self._set_final_prompt(state.get("final_prompt"))
            self.set_shot_settings(ShotSettings.from_dict(state.get("settings"), ShotSettings.from_app(self.settings)))
        finally:
            self._loading_state = False

    def shot_state(self) -> dict[str, Any]:
        edited = getattr(self.prompt, "final_prompt_edited", None)
        return {
            "version": STATE_VERSION,
            "prompt": self.prompt.prompt(),
            "negative_prompt": self.prompt.negative_prompt(),
            "final_prompt": self.prompt.final_prompt() if callable(edited) and edited() else None,
            "layout": self.sketch.sketch().to_json(indent=None),
            "settings": self.shot_settings().to_dict(),
        }

    def _set_final_prompt(self, text: Any) -> None:
        """Put back a final prompt the person had edited by hand (None: the compiled one)."""
        edit = getattr(self.prompt, "final_edit", None)
        if isinstance(text, str) and text and edit is not None and text != self.prompt.final_prompt():
            edit.setPlainText(text)
        elif text is None and callable(getattr(self.prompt, "reset_final_prompt", None)):
            self.prompt.reset_final_prompt()

    def current_shot(self) -> Shot | None:
        return self._shot

    def shot_settings(self) -> ShotSettings:
        w, h = self.size_box.currentData() or (self.settings.width, self.settings.height)
        return ShotSettings(int(w), int(h), self.frames_box.value(), self.steps_box.value(),
                            round(self.guidance_box.value(), 2), self.seed_box.value())

    def set_shot_settings(self, s: ShotSettings) -> None:
        index = self.size_box.findData((s.width, s.height))
        if index < 0:
            self.size_box.addItem(f"{s.width} × {s.height} px", (s.width, s.height))
            index = self.size_box.count() - 1
        self.size_box.setCurrentIndex(index)
        self.frames_box.setValue(s.frames)
        self.steps_box.setValue(s.steps)
        self.guidance_box.setValue(s.guidance)
        self.seed_box.setValue(min(s.seed, self.seed_box.maximum()))

    def _schedule_autosave(self) -> None:
        if not self._loading_state and self._shot is not None and not self._closed:
            self._autosave.start()

    def autosave_now(self, *, wait: bool = False) -> None:
        """Save the open shot's state (on the background thread unless ``wait``)."""
        self._autosave.stop()
        if self._shot is None:
            return
        shot_id, state = self._shot.id, self.shot_state()
        if wait:
            self._save_state(shot_id, state)
        else:
            self._run_background(self._save_state, shot_id, state)

    def _save_state(self, shot_id: int, state: dict[str, Any]) -> None:
        self.library.save_shot_state(shot_id, state)

    def new_project(self) -> None:
        name, ok = QInputDialog.getText(self, "New project", "Project name:", text="My project")
        if not ok or not name.strip():
            return
        try:
            project = self.library.create_project(name)
            shot = self.library.create_shot(project.id, "Shot 1")
            self.library.save_shot_state(shot.id, {"version": STATE_VERSION, "prompt": "", "negative_prompt": "",
                                                   "layout": Layout().to_json(indent=None),
                                                   "settings": self.shot_settings().to_dict()})
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        self._refresh_library()
        self.open_shot(shot.id)

    def new_shot(self) -> None:
        if self._shot is None:
            return self.new_project()
        shots = self.library.list_shots(self._shot.project_id)
        try:
            shot = self.library.create_shot(self._shot.project_id, f"Shot {len(shots) + 1}")
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        self._refresh_library()
        self.open_shot(shot.id)

    def open_project(self) -> None:
        choices: list[tuple[str, int]] = []
        for project in self.library.list_projects():
            for shot in self.library.list_shots(project.id):
                choices.append((f"{project.name} ▸ {shot.name}", shot.id))
        if not choices:
            return self.new_project()
        labels = [c[0] for c in choices]
        current = next((i for i, c in enumerate(choices) if self._shot and c[1] == self._shot.id), 0)
        label, ok = QInputDialog.getItem(self, "Open", "Shot:", labels, current, False)
        if ok:
            self.open_shot(choices[labels.index(label)][1])

    def show_variant(self, variant_id: int) -> None:
        """Selecting a variant in the history shows its latest take; the editors stay as they are
        (use "branch from here" to load it)."""
        try:
            takes = self.library.list_takes(variant_id)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        if takes:
            self.show_take(takes[-1].id, take=takes[-1])

    def _snapshot(self) -> VariantSnapshot:
        """The variant the editors hold now (the seed is not part of a variant)."""
        assert self._shot is not None
        layout = self.sketch.sketch()
        settings = self.shot_settings().to_dict()
        settings.pop("seed")
        return VariantSnapshot(self._shot.id, self.prompt.prompt(), self.prompt.negative_prompt(),
                               layout.to_json(indent=None) if layout.subjects else None,
                               json.dumps(settings, sort_keys=True))

    def load_variant(self, variant_id: int) -> None:
        """Put a variant back into the editors (the sketch change is undoable); the next takes with
        these values belong to it, and an edit of them makes a new variant whose parent it is."""
        try:
            variant = self.library.get_variant(variant_id)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        if self._shot is None or variant.shot_id != self._shot.id:
            self.open_shot(variant.shot_id)
        self.prompt.set_prompt(variant.prompt)
        self.prompt.set_negative_prompt(variant.negative_prompt)
        try:
            layout = variant.layout() or Layout()
        except (LayoutError, ValueError):
            layout = self.sketch.sketch()
        if layout != self.sketch.sketch():
            self.sketch.set_sketch(layout, undoable=True)
        if variant.settings:
            self.set_shot_settings(ShotSettings.from_dict({**variant.settings, "seed": self.seed_box.value()},
                                                          self.shot_settings()))
        self._io.submit(self._take_writer.adopt, self._snapshot(), variant.id)

    def _refresh_library(self) -> None:
        refresh = getattr(self.library_panel, "refresh", None)
        if callable(refresh):
            refresh()

    # ------------------------------------------------------------------ editing
    def _on_sketch_changed(self, layout: Layout) -> None:
        self._update_clause(layout)
        self._schedule_autosave()

    def _update_clause(self, layout: Layout) -> None:
        from shotsketch.core.phrasing import describe

        try:
            clause = describe(layout) if layout.subjects else ""
        except Exception:  # noqa: BLE001 - phrasing must never break editing
            log.exception("describing the layout failed")
            clause = ""
        self.prompt.set_spatial_clause(clause)

    def draft_layout_from_prompt(self, text: str) -> None:
        from shotsketch.core.phrasing import draft_layout

        aspect = self.sketch.sketch().aspect
        draft = draft_layout(text, aspect)
        if not draft.layout.subjects:
            self.statusBar().showMessage("No subjects with places were found in the prompt; sketch them instead.", 8000)
            return
        self.sketch.set_sketch(draft.layout, undoable=True)
        if draft.unplaced:
            self.statusBar().showMessage(f"Not placed: {', '.join(draft.unplaced)} — sketch them by hand.", 8000)

    def delete_selection(self) -> None:
        delete = getattr(self.sketch, "delete_selected", None)
        if callable(delete):
            delete()
            return
        canvas = getattr(self.sketch, "canvas", None)
        name = canvas.selected_subject() if canvas is not None and hasattr(canvas, "selected_subject") else None
        if name:
            self.sketch.set_sketch(self.sketch.sketch().without_subject(name), undoable=True)

    # ------------------------------------------------------------------ playback
    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        """Inside the timeline its own Space / arrow shortcuts apply; the window's step aside
        (two shortcuts for one key would cancel each other out as ambiguous)."""
        inside = new is not None and (new is self.timeline or self.timeline.isAncestorOf(new))
        for act, key in ((self.act_play, "Space"), (self.act_prev, "Left"), (self.act_next, "Right")):
            act.setShortcut(QKeySequence() if inside else QKeySequence(key))

    def toggle_play(self) -> None:
        self.timeline.toggle_play()

    def step_frame(self, n: int) -> None:
        self.timeline.pause()
        self.timeline.step(n)

    # ------------------------------------------------------------------ generation
    def build_request(self, seed: int | None = None) -> GenerationRequest:
        """The immutable request for what the editors hold now (read on the UI thread)."""
        s = self.shot_settings()
        layout = self.sketch.sketch()
        has_layout = bool(layout.subjects)
        return GenerationRequest(
            prompt=self.prompt.final_prompt().strip(),
            negative_prompt=self.prompt.negative_prompt().strip(),
            width=s.width, height=s.height, frames=s.frames, guidance=s.guidance,
            steps=min(s.steps, FAST_MODE_STEPS) if self.fast_button.isChecked() else s.steps,
            extra=(("mode", "fast"),) if self.fast_button.isChecked() else (),
            seed=s.seed if seed is None else seed,
            layout_json=layout.to_json(indent=None) if has_layout else None,
            guidance_strength=self.settings.layout_guidance_strength if has_layout else 0.0,
        )

    def prepare_prompt(self) -> None:
        """Have the worker encode the prompt as it stands now (when the model is loaded and idle)."""
        if self.worker.state in (WorkerState.READY, WorkerState.IDLE) and not self.worker.pending():
            self.worker.prepare_prompt(self.prompt.final_prompt().strip(), self.prompt.negative_prompt().strip())

    def generate(self, count: int = 1) -> list[str]:
        """Queue ``count`` jobs with seeds s, s+1, ...; returns their job ids."""
        if self._shot is None:
            self.errors.report("Open or create a shot first (File ▸ New project…).")
            return []
        base = self.build_request()
        try:
            validate_request(base, check_image=False)
        except RequestError as exc:
            self.errors.report(f"Cannot generate yet: {exc}.", title="Cannot generate")
            return []
        layout = self.sketch.sketch()
        snapshot = self._snapshot()
        ids = []
        for i in range(count):
            seed = (base.seed + i) % (MAX_SEED + 1)
            request = GenerationRequest(**{**base.to_dict(), "seed": seed, "extra": base.extra})
            job_id = uuid.uuid4().hex[:12]
            self._jobs[job_id] = _Job(job_id, request, snapshot, layout if layout.subjects else None)
            self.queue.add_job(QueuedJob(job_id, request, self._job_label(request)))
            self.worker.submit(job_id, request)
            ids.append(job_id)
        self._persist_queue()
        self.statusBar().showMessage(f"Queued {count} job{'s' if count > 1 else ''}.", 4000)
        return ids

    def _persist_queue(self) -> None:
        """Write the jobs not yet finished (off the UI thread), so a restart runs them again."""
        from shotsketch.ui.queue_store import PendingJob, queue_path, save_pending

        jobs = [PendingJob(j.job_id, j.request, j.snapshot) for j in self._jobs.values()]
        self._run_background(save_pending, jobs, queue_path())

    def _restore_queue(self) -> None:
        from shotsketch.ui.queue_store import load_pending

        jobs, problem = load_pending()
        if problem:
            self.errors.report(problem)
        restored = 0
        for job in jobs:
            try:
                self.library.get_shot(job.snapshot.shot_id)
            except LibraryError:
                log.info("dropping queued job %s: its shot is gone", job.job_id)
                continue
            try:
                layout = Layout.from_json(job.snapshot.layout_json) if job.snapshot.layout_json else None
            except (LayoutError, ValueError):
                layout = None
            if job.job_id in self._jobs:
                continue
            try:
                self.worker.submit(job.job_id, job.request)
            except ValueError as exc:
                log.warning("could not restore queued job %s: %s", job.job_id, exc)
                continue
            self._jobs[job.job_id] = _Job(job.job_id, job.request, job.snapshot, layout)
            self.queue.add_job(QueuedJob(job.job_id, job.request, self._job_label(job.request)))
            restored += 1
        if jobs:
            self._persist_queue()
        if restored:
            self.statusBar().showMessage(
                f"Restored {restored} job{'s' if restored > 1 else ''} queued before Shotsketch closed.", 8000)

    @staticmethod
    def _job_label(r: GenerationRequest) -> str:
        return f"Seed {r.seed}"

    def cancel_job(self, job_id: str) -> None:
        state = self.queue.state(job_id)
        if state is None or state.finished:
            return
        if self.worker.cancel(job_id):
            self.queue.set_state(job_id, JobState.CANCELLING)

    def cancel_all(self) -> None:
        for job_id in self.queue.job_ids():
            self.cancel_job(job_id)

    def _on_event(self, event: JobEvent) -> None:
        """Every engine event, on the UI thread, handled in one place."""
        if self._closed:
            return
        self.queue.apply(event)
        match event:
            case JobStarted(job_id=job_id):
                self.statusBar().showMessage(f"Generating job {job_id}…", 3000)
            case JobStep():
                pass
            case JobFinished(job_id=job_id):
                job = self._jobs.get(job_id)
                if job is not None:
                    self._spawn(self._save_take(job, event))
            case JobFailed(job_id=job_id, message=message, detail=detail, suggestion=suggestion):
                self._jobs.pop(job_id, None)
                self._persist_queue()
                hint = f" Suggested memory plan: {suggestion}." if suggestion else ""
                self.errors.report(sentence(message) + hint, detail, title="Generation failed")
            case JobCancelled(job_id=job_id):
                self._jobs.pop(job_id, None)
                self._persist_queue()
                self.statusBar().showMessage("Job cancelled.", 3000)

    async def _save_take(self, job: _Job, event: JobFinished) -> None:
        try:
            take = await self._in_background(self._take_writer.write, job.snapshot, event.frames, event.recipe,
                                             float(job.request.fps), event.heatmaps)
        except Exception as exc:  # noqa: BLE001 - one message, details in the log
            log.exception("saving the take of job %s failed", job.job_id)
            self.queue.set_state(job.job_id, JobState.FAILED, "The clip could not be saved.")
            self.errors.report(f"The clip was generated but could not be saved: {exc}", title="Saving failed")
            return
        finally:
            self._jobs.pop(job.job_id, None)
            if not self._closed:
                self._persist_queue()
        if self._closed:
            return
        self.queue.set_state(job.job_id, JobState.DONE, f"take {take.id}")
        self._refresh_library()
        if self._shot is not None and job.snapshot.shot_id == self._shot.id:
            self.show_take(take.id, take=take, layout=job.layout)
        self.statusBar().showMessage(f"Take {take.id} saved: {take.file.name}", 6000)
        self.takeSaved.emit(take)

    def show_take(self, take_id: int, take: Take | None = None, layout: Layout | None = None) -> None:
        try:
            take = take or self.library.get_take(take_id)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        if not take.file.exists():
            self.errors.report(f"The take's file {take.file} is missing (deleted or moved).")
            return
        if layout is None:
            raw = take.recipe.get("request", {}).get("layout_json") if isinstance(take.recipe, dict) else None
            try:
                layout = Layout.from_json(raw) if raw else None
            except (LayoutError, ValueError):
                layout = None
        fit = adherence_summary(take.recipe)
        self.timeline.load_take(take.file, layout, read_heatmaps(take.file) or None,
                                title=f"take {take.id}" + (f" · {fit}" if fit else ""))
        self.shown_take = take

    def compare_takes(self, first: int, second: int) -> None:
        try:
            a, b = self.library.get_take(first), self.library.get_take(second)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        self.show_take(a.id, take=a)
        self.timeline.compare_with(b.file)

    def export_takes(self, take_ids: list[int]) -> None:
        cls = placeholders.load_panel_class("shotsketch.ui.export_dialog", "ExportDialog")
        if cls is None:
            self.errors.report("Export is not available in this build.")
            return
        folder = Path(self.settings.output_dir) if self.settings.output_dir else None
        try:
            dialog = cls.for_takes(self.library, list(take_ids), self, folder=folder)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def _show_latest_take(self, shot_id: int) -> None:
        try:
            takes = [t for v in self.library.list_variants(shot_id) for t in self.library.list_takes(v.id)]
        except LibraryError:
            return
        if takes:
            self.show_take(takes[-1].id, take=takes[-1])

    # ------------------------------------------------------------------ background work
    def _in_background(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_event_loop()
        return loop.run_in_executor(self._io, fn, *args)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run_background(self, fn: Callable[..., Any], *args: Any) -> None:
        future = self._io.submit(fn, *args)

        def done(f: concurrent.futures.Future[Any]) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("background save failed: %s", exc, exc_info=exc)
        future.add_done_callback(done)

    # ------------------------------------------------------------------ model and settings
    def _update_model_labels(self) -> None:
        label = model_label(self.model)
        self.status_model.setText(f"Model: {label}")
        self.status_model.setToolTip(label)
        self._update_title()

    def _update_title(self) -> None:
        shot = f"{self._shot.name} — " if self._shot else ""
        self.setWindowTitle(f"{shot}Shotsketch — {model_label(self.model)}")

    def _on_worker_state(self, state: WorkerState, detail: str) -> None:
        self.status_worker.setText(status_text(state, self.worker.model_state))
        self.status_worker.setToolTip(detail)
        if state is WorkerState.BUSY:
            self._busy_job = detail
        elif state is WorkerState.IDLE:
            self._busy_job = None
        elif state is WorkerState.LOADING and getattr(self, "_busy_job", None):
            if self.queue.state(self._busy_job) is JobState.QUEUED:
                self.queue.set_state(self._busy_job, JobState.LOADING, "once per session; this can take a minute")

    def set_model(self, model: str) -> None:
        """Use another model (a folder, ``hf:ORG/NAME`` or ``demo``) from the next job on."""
        self.worker.forget_model_state()
        self.model = model
        self.demo = model == "demo"
        self.worker.set_engine_factory(generator_factory(model, self.settings.memory_plan))
        self._update_model_labels()

    def show_model_setup(self, first_run: bool = False) -> None:
        from shotsketch.ui.model_setup import ModelSetupDialog

        dialog = ModelSetupDialog(self.settings, self, first_run=first_run)
        if dialog.exec() and dialog.chosen_model:
            self.settings = dialog.saved_settings or self.settings
            self.set_model(dialog.chosen_model)
            self.worker.preload()

    def show_settings(self) -> None:
        from shotsketch.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() and dialog.saved_settings is not None:
            old = self.settings
            self.settings = dialog.saved_settings
            self.strength_slider.blockSignals(True)
            self.strength_slider.setValue(round(self.settings.layout_guidance_strength * 10))
            self.strength_slider.blockSignals(False)
            self._show_strength(self.strength_slider.value())
            if old.memory_plan != self.settings.memory_plan:
                self.worker.set_engine_factory(generator_factory(self.model, self.settings.memory_plan))

    def show_about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.about(self, "About Shotsketch",
                          f"<b>Shotsketch {__version__}</b><p>Sketch a shot, generate it locally with Wan2.2 "
                          f"TI2V-5B, hand it to your editor.</p><p>Model: {model_label(self.model)}</p>")

    def show_log_location(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        from shotsketch.logs import log_file

        QMessageBox.information(self, "Log file", f"The log file is {log_file()}")

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._closed:
            self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Save the shot and the layout, stop the worker, finish background writes."""
        if self._closed:
            return
        self._closed = True
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self._key_router)
            app.focusChanged.disconnect(self._on_focus_changed)
        try:
            self.autosave_now(wait=True)
            if self._shot is not None:
                self.library.set_last_open_shot(self._shot.id)
        except LibraryError as exc:
            log.error("could not save the shot on close: %s", exc)
        if self._strength_save.isActive():  # a slider change not yet written: write it now
            self._strength_save.stop()
            self._run_background(save_settings, self.settings)
        self.save_window_layout()
        self.errors.close_dialog()
        self.worker.shutdown()
        for task in list(self._tasks):
            task.cancel()
        self._io.shutdown(wait=True)
        if self._owns_library:
            self.library.close()

