"""Settings: memory plan, whether the model is step-distilled, default clip size / frames / steps /
guidance, layout guidance, output folder. Saved atomically through core.settings (the
step-distilled choice, per model, through app/model_options.py); invalid values are refused with
the reason."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
    QSpinBox, QVBoxLayout, QWidget,
)

from shotsketch.app.model_options import ModelOptions, save_model_options
from shotsketch.core import paths
from shotsketch.core.settings import MEMORY_PLANS, AppSettings, SettingsError, save_settings
from shotsketch.ui.ranged import spin_box

PLAN_LABELS = {
    "auto": "Automatic (chosen from free GPU memory)",
    "gpu": "Everything on the GPU (fastest, ~32 GB+)",
    "text-encoder-offload": "Text encoder streamed from system RAM (16–24 GB)",
    "model-offload": "One model on the GPU at a time (~12 GB, slower than streaming blocks)",
    "group-offload": "Stream transformer blocks from system RAM (leanest, 8–12 GB)",
}


DISTILLED_CHOICES = (
    (None, "As its folder says"),
    (True, "Step-distilled (its own 3 steps, DMD, no guidance)"),
    (False, "Not step-distilled (the shot's steps and guidance)"),
)
DISTILLED_TIP = ("A step-distilled checkpoint (FastWan2.2-TI2V-5B, DMD) runs its own 3 steps (timesteps 1000 / 757 / "
                 "522) without classifier-free guidance. Shotsketch recognises one from its folder; choose here when "
                 "the folder does not say so, or says so wrongly. The choice is kept for this model only.")


def distilled_box(current: bool | None) -> QComboBox:
    box = QComboBox()
    box.setObjectName("distilledChoice")
    for value, label in DISTILLED_CHOICES:
        box.addItem(label, value)
    box.setCurrentIndex(next(i for i, (value, _) in enumerate(DISTILLED_CHOICES) if value is current))
    box.setToolTip(DISTILLED_TIP)
    return box


def gpus_box(current: int) -> QSpinBox:
    """GPUs one clip renders on: 1 up to the NVIDIA GPUs found (engine/parallel_gpus.py)."""
    from shotsketch.engine.parallel_gpus import count_gpus, usable_counts

    found = count_gpus()
    box = QSpinBox()
    box.setRange(1, max(found, current, 1))
    box.setValue(current)
    usable = usable_counts(max(found, 1))
    if found < 2:
        box.setEnabled(current > 1)  # a saved count stays editable, so it can be set back to 1
        box.setToolTip("Rendering one clip on several GPUs needs a machine with 2 or more NVIDIA GPUs")
    else:
        box.setToolTip(f"Render each clip on several of this machine's {found} GPUs ({', '.join(map(str, usable[1:]))} work); "
                       "shotsketch doctor shows how they are linked")
    return box


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None, *, model: str | None = None,
                 model_options: ModelOptions | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.saved_settings: AppSettings | None = None
        self.model = model if model is not None else settings.model
        self.model_options = model_options or ModelOptions()
        self.saved_model_options: ModelOptions | None = None
        self.distilled_box = distilled_box(self.model_options.distilled_for(self.model))
        self.plan = QComboBox()
        for plan in MEMORY_PLANS:
            self.plan.addItem(PLAN_LABELS.get(plan, plan), plan)
        self.plan.setCurrentIndex(max(0, self.plan.findData(settings.memory_plan)))
        self.gpus_box = gpus_box(settings.gpus)
        # limits from the one table of ranges (core/ranges.py): what is accepted here is what the
        # toolbar shows and what generation uses
        self.width_box = spin_box("width", suffix=" px")
        self.height_box = spin_box("height", suffix=" px")
        self.frames_box = spin_box("frames", suffix=" frames")
        self.steps_box = spin_box("steps", suffix=" steps")
        self.guidance_box = spin_box("guidance")
        self.strength_box = spin_box("layout_strength")
        for box, value in ((self.width_box, settings.width), (self.height_box, settings.height),
                           (self.frames_box, settings.frames), (self.steps_box, settings.steps),
                           (self.guidance_box, settings.guidance), (self.strength_box, settings.layout_guidance_strength)):
            box.setValue(value)
        self.strength_box.setToolTip("How strongly the sketch steers where subjects appear (0 = off)")
        self.output = QLineEdit(settings.output_dir)
        self.output.setPlaceholderText("the folder used last time")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Memory plan:", self.plan)
        form.addRow("GPUs:", self.gpus_box)
        form.addRow("Step-distilled model:", self.distilled_box)
        form.addRow("Default width:", self.width_box)
        form.addRow("Default height:", self.height_box)
        form.addRow("Default length:", self.frames_box)
        form.addRow("Default steps:", self.steps_box)
        form.addRow("Default guidance:", self.guidance_box)
        form.addRow("Layout guidance strength:", self.strength_box)
        form.addRow("Export folder:", out_row)
        self.problem = QLabel()
        self.problem.setObjectName("problemText")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #e06c5a;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        note = QLabel("Sizes, length, steps and guidance are the defaults for new shots; the open shot keeps its "
                      "own values in the toolbar. Generated takes are kept in the library; the export folder "
                      "is where the library's Export… starts.")
        note.setWordWrap(True)
        note.setObjectName("placeholderNote")
        box = QVBoxLayout(self)
        box.addWidget(note)
        box.addLayout(form)
        box.addWidget(self.problem)
        box.addWidget(buttons)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.output.text() or str(paths.data_dir()))
        if folder:
            self.output.setText(folder)

    def edited(self) -> AppSettings:
        return self.settings.replace(
            memory_plan=self.plan.currentData(), gpus=self.gpus_box.value(), width=self.width_box.value(), height=self.height_box.value(),
            frames=self.frames_box.value(), steps=self.steps_box.value(), guidance=round(self.guidance_box.value(), 2),
            layout_guidance_strength=round(self.strength_box.value(), 2), output_dir=self.output.text().strip(),
        )

    def edited_model_options(self) -> ModelOptions:
        """The per-model choices with this model's step-distilled choice as the box has it."""
        return self.model_options.with_distilled(self.model, self.distilled_box.currentData())

    def save(self) -> None:
        try:
            new = self.edited()
            options = self.edited_model_options()
            save_settings(new)
            if options != self.model_options:
                save_model_options(options)
        except SettingsError as exc:
            self.problem.setText(f"Not saved: {exc}.")
            return
        except OSError as exc:
            self.problem.setText(f"Could not write the settings file: {exc.strerror or exc}.")
            return
        self.saved_settings = new
        self.saved_model_options = options
        self.accept()
