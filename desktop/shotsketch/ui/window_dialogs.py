"""The window's small dialogs: a new project's name, choosing a shot to open, About, the log file."""

from __future__ import annotations

from pathlib import Path

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from shotsketch import DEMO_LABEL, __version__
from shotsketch.core.library import Library


def model_label(model: str) -> str:
    """The model as a person names it (status bar, title, About)."""
    if model == "demo":
        return DEMO_LABEL
    if model.startswith("hf:"):
        return f"Wan2.2 TI2V-5B ({model[3:]}, Hugging Face cache)"
    return f"Wan2.2 TI2V-5B ({Path(model).name or model})"


def ask_project_name(parent: QWidget) -> str | None:
    name, ok = QInputDialog.getText(parent, "New project", "Project name:", text="My project")
    return name.strip() if ok and name.strip() else None


def choose_shot(parent: QWidget, library: Library, current: int | None) -> int | None:
    """"Project ▸ Shot" for every shot; the chosen shot's id, or None."""
    choices = [(f"{p.name} ▸ {s.name}", s.id) for p in library.list_projects() for s in library.list_shots(p.id)]
    if not choices:
        return None
    labels = [c[0] for c in choices]
    index = next((i for i, c in enumerate(choices) if c[1] == current), 0)
    label, ok = QInputDialog.getItem(parent, "Open", "Shot:", labels, index, False)
    return choices[labels.index(label)][1] if ok else None


def show_about(parent: QWidget, model: str) -> None:
    QMessageBox.about(parent, "About Shotsketch",
                      f"<b>Shotsketch {__version__}</b><p>Sketch a shot, generate it locally with Wan2.2 "
                      f"TI2V-5B, hand it to your editor.</p><p>Model: {model_label(model)}</p>")


def show_log_location(parent: QWidget) -> None:
    from shotsketch.logs import log_file

    QMessageBox.information(parent, "Log file", f"The log file is {log_file()}")


__all__ = ["ask_project_name", "choose_shot", "model_label", "show_about", "show_log_location"]
