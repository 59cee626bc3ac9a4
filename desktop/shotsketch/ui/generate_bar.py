"""The Generate toolbar: the open shot's size, length, steps, guidance and seed, the layout
strength, fast mode, and the Generate buttons. A view of the open shot's model (:attr:`model`):
it shows the model's values and writes the person's changes back; it holds no copy of its own.

When the loaded model is step-distilled (:meth:`GenerateBar.show_loaded_model`), it says so
("Distilled model: 3 steps (DMD 1000 / 757 / 522), no CFG") and the steps and guidance boxes are
disabled, their tooltips saying that the model's own schedule is used: the shot keeps its values
(they apply again with an ordinary model), the engine runs the model's steps without guidance."""

from __future__ import annotations

import random

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar, QToolButton, QWidget

from shotsketch.app.model_options import schedule_text
from shotsketch.app.shot import OpenShot, ShotSettings
from shotsketch.engine.events import ModelLoaded
from shotsketch.core.ranges import FAST_MODE_STEPS
from shotsketch.ui.ranged import SLIDER_STEPS_PER_UNIT, SeedEdit, spin_box, strength_slider
from shotsketch.ui.shot_view import ShotView

STEPS_TIP = "Denoising steps: more is slower and usually cleaner"
GUIDANCE_TIP = "How closely the model follows the prompt (classifier-free guidance)"
SIZE_PRESETS = [(448, 256), (640, 352), (832, 480), (480, 832), (1280, 704), (704, 1280)]
QUEUE_SEEDS = 4


class GenerateBar(QToolBar, ShotView):
    generateRequested = Signal(int)  # how many takes

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Generate", parent)
        self.setObjectName("toolbar_generate")
        self.setMovable(False)
        self._showing = False

        self.size_box = QComboBox()
        self.size_box.setToolTip("Width × height of the clip, in pixels")
        for w, h in SIZE_PRESETS:
            self.size_box.addItem(f"{w} × {h} px", (w, h))
        self.frames_box = spin_box("frames", suffix=" frames")
        self.frames_box.setToolTip("Clip length: 4k+1 frames (17 frames ≈ 0.7 s at 24 fps)")
        self.steps_box = spin_box("steps", suffix=" steps")
        self.steps_box.setToolTip(STEPS_TIP)
        self.guidance_box = spin_box("guidance", prefix="guidance ")
        self.guidance_box.setToolTip(GUIDANCE_TIP)
        self.distilled_label = QLabel()
        self.distilled_label.setObjectName("distilledLabel")
        self.distilled_label.setVisible(False)
        self.seed_box = SeedEdit()
        self.seed_box.setToolTip("Random seed: the same seed and settings give the same clip")
        dice = QToolButton()
        dice.setText("Random")
        dice.setToolTip("Pick a random seed")
        dice.clicked.connect(lambda: self.seed_box.setValue(random.randrange(0, 2**32)))
        self.strength_label = QLabel()
        self.strength_slider = strength_slider()
        self.strength_slider.setObjectName("layoutStrength")
        self.strength_slider.setFixedWidth(90)
        self.strength_slider.setToolTip(
            "Layout guidance: how strongly the sketch steers where each subject appears (0 = words only). "
            "It acts when the sketch has subjects whose names are in the prompt.")
        self.strength_label.setToolTip(self.strength_slider.toolTip())
        self.fast_button = QToolButton()
        self.fast_button.setText("Fast")
        self.fast_button.setCheckable(True)
        self.fast_button.setToolTip(
            f"Fast mode: at most {FAST_MODE_STEPS} denoising steps, and 8-bit (FP8) matrix products on GPUs that have "
            "them. A full 1280x704 clip takes about a quarter of the time of 50 steps, with less fine detail. "
            "Turn it off to render the take you keep.")
        self.generate_button = QToolButton()
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setText("Generate")
        self.generate_button.setToolTip("Queue a clip with these settings (Ctrl+Enter)")
        self.generate_button.clicked.connect(lambda: self.generateRequested.emit(1))
        self.variants_button = QToolButton()
        self.variants_button.setText(f"Queue {QUEUE_SEEDS} seeds")
        self.variants_button.setToolTip(f"Queue {QUEUE_SEEDS} clips with the next seeds this variant has not used "
                                        "(Ctrl+Shift+Enter)")
        self.variants_button.clicked.connect(lambda: self.generateRequested.emit(QUEUE_SEEDS))
        seed_label = QLabel(" seed ")
        seed_label.setToolTip(self.seed_box.toolTip())
        for widget in (self.size_box, self.frames_box, self.steps_box, self.guidance_box, seed_label, self.seed_box, dice,
                       self.strength_label, self.strength_slider, self.fast_button):
            self.addWidget(widget)
        self._distilled_action = self.addWidget(self.distilled_label)
        self._distilled_action.setVisible(False)
        self.addSeparator()
        self.addWidget(self.generate_button)
        self.addWidget(self.variants_button)

        self.size_box.currentIndexChanged.connect(lambda _i: self._write_settings())
        for box in (self.frames_box, self.steps_box, self.guidance_box, self.seed_box):
            box.valueChanged.connect(lambda _v: self._write_settings())
        self.strength_slider.valueChanged.connect(self._on_strength)
        self.fast_button.toggled.connect(self._on_fast)

    # -- the model
    def bind(self, shot: OpenShot) -> None:
        self.observe(shot.events.opened, lambda _s: self._show_all())
        self.observe(shot.events.settings, self.show_settings)
        self.observe(shot.events.layout_strength, self._show_strength)
        self.observe(shot.events.fast, self._show_fast)
        self._show_all()

    def _show_all(self) -> None:
        if self._model is None:
            return
        self.show_settings(self._model.settings)
        self._show_strength(self._model.layout_strength)
        self._show_fast(self._model.fast)

    def show_settings(self, s: ShotSettings) -> None:
        self._showing = True
        try:
            index = self.size_box.findData((s.width, s.height))
            if index < 0:
                self.size_box.addItem(f"{s.width} × {s.height} px", (s.width, s.height))
                index = self.size_box.count() - 1
            self.size_box.setCurrentIndex(index)
            self.frames_box.setValue(s.frames)
            self.steps_box.setValue(s.steps)
            self.guidance_box.setValue(s.guidance)
            self.seed_box.setValue(s.seed)
        finally:
            self._showing = False

    def _show_strength(self, value: float) -> None:
        tenths = round(value * SLIDER_STEPS_PER_UNIT)
        if self.strength_slider.value() != tenths:
            self.strength_slider.blockSignals(True)
            self.strength_slider.setValue(tenths)
            self.strength_slider.blockSignals(False)
        self.strength_label.setText(f"  layout {value:.1f}" if tenths else "  layout off")

    def _show_fast(self, on: bool) -> None:
        if self.fast_button.isChecked() != on:
            self.fast_button.blockSignals(True)
            self.fast_button.setChecked(on)
            self.fast_button.blockSignals(False)

    # -- the loaded model
    def show_loaded_model(self, loaded: ModelLoaded | None) -> None:
        """What the worker said of the model it loaded (None: none loaded, or the model changed)."""
        schedule = loaded.schedule if loaded is not None else None
        text = schedule_text(schedule)
        self.distilled_label.setText(f"  {text}" if text else "")
        self._distilled_action.setVisible(bool(text))
        self.distilled_label.setVisible(bool(text))
        own = (f"{text}: this model runs its own {len(schedule)} steps without classifier-free guidance, "
               "so the steps and guidance set here are not used (the shot keeps them for other models). "
               "Settings ▸ Step-distilled model changes whether it is treated as distilled.") if schedule else ""
        self.distilled_label.setToolTip(own)
        for box, tip in ((self.steps_box, STEPS_TIP), (self.guidance_box, GUIDANCE_TIP)):
            box.setEnabled(not schedule)
            box.setToolTip(own or tip)

    @property
    def uses_model_schedule(self) -> bool:
        """The steps and guidance boxes stand aside for a distilled model's own schedule."""
        return not self.steps_box.isEnabled()

    # -- the person's changes
    def _write_settings(self) -> None:
        if self._showing or self._model is None:
            return
        w, h = self.size_box.currentData() or (self._model.settings.width, self._model.settings.height)
        self._model.update_settings(width=int(w), height=int(h), frames=self.frames_box.value(),
                                    steps=self.steps_box.value(), guidance=round(self.guidance_box.value(), 2),
                                    seed=self.seed_box.value())

    def _on_strength(self, tenths: int) -> None:
        value = tenths / SLIDER_STEPS_PER_UNIT
        self.strength_label.setText(f"  layout {value:.1f}" if tenths else "  layout off")
        if self._model is not None:
            self._model.set_layout_strength(value)

    def _on_fast(self, on: bool) -> None:
        if self._model is not None:
            self._model.set_fast(on)


__all__ = ["GenerateBar", "QUEUE_SEEDS", "SIZE_PRESETS"]
