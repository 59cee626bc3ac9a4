"""First-run model setup: a local Wan2.2 TI2V-5B diffusers folder, the Hugging Face cache, a
download (with progress, cancel and resume), or the demo model.

Nothing here blocks the window: folder checks are quick file reads; the cache lookup and the
download run on a background thread, reporting back through queued signals. A download that is
cancelled (or cut off) resumes where it stopped next time, because huggingface_hub keeps the
partial files in its cache and continues them.
"""

from __future__ import annotations

import enum
import logging
import threading
import traceback
from pathlib import Path

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
    QRadioButton, QVBoxLayout, QWidget,
)

from shotsketch import DEMO_LABEL
from shotsketch.core.settings import AppSettings, save_settings

log = logging.getLogger(__name__)
HUB_REPO_ID = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"  # engine.sources.HUB_REPO_ID (not imported: it pulls in torch)


class Choice(enum.Enum):
    FOLDER = "folder"
    CACHE = "cache"
    DOWNLOAD = "download"
    DEMO = "demo"


class _DownloadCancelled(Exception):
    pass


class Download(QObject):
    """Runs engine.sources.download_model on its own thread; cancel stops it between chunks."""

    progress = Signal(int, int)  # bytes done, bytes total (of the file being fetched)
    finished = Signal(str)  # folder
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, repo_id: str = HUB_REPO_ID, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.repo_id = repo_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="shotsketch-download", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        import os

        from shotsketch.engine.sources import download_model

        def on_progress(done: int, total: int) -> None:
            if self._stop.is_set():
                raise _DownloadCancelled()
            self.progress.emit(done, total)

        offline = os.environ.pop("HF_HUB_OFFLINE", None)  # the user asked for this download
        try:
            folder = download_model(self.repo_id, progress=on_progress)
        except Exception as exc:  # noqa: BLE001 - the hub raises many kinds
            if self._stop.is_set() or isinstance(exc.__cause__, _DownloadCancelled):
                self.cancelled.emit()
            else:
                log.error("download failed\n%s", traceback.format_exc())
                self.failed.emit(str(exc))
            return
        finally:
            if offline is not None:
                os.environ["HF_HUB_OFFLINE"] = offline
        if self._stop.is_set():
            self.cancelled.emit()
        else:
            self.finished.emit(str(folder))


class _CacheLookup(QObject):
    found = Signal(str)  # "" when not found

    def start(self) -> None:
        threading.Thread(target=self._run, name="shotsketch-cache-lookup", daemon=True).start()

    def _run(self) -> None:
        try:
            from shotsketch.engine.sources import check_model_folder, hf_cache_folder

            folder = hf_cache_folder(HUB_REPO_ID)
            self.found.emit(str(folder) if folder is not None and not check_model_folder(folder) else "")
        except Exception:  # noqa: BLE001
            log.exception("looking in the Hugging Face cache failed")
            self.found.emit("")


def folder_problems(path: str) -> list[str]:
    from shotsketch.engine.sources import check_model_folder

    return check_model_folder(Path(path).expanduser())


class ModelSetupDialog(QDialog):
    """Choose the model. On Accept, ``chosen_model`` is 'demo', a folder path or 'hf:ORG/NAME' and the
    settings have been saved (``saved_settings``)."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None, *, first_run: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set up the model")
        self.setMinimumWidth(620)
        self.settings = settings
        self.chosen_model: str | None = None
        self.saved_settings: AppSettings | None = None
        self._cache_folder: str = ""
        intro = QLabel(
            ("<b>Welcome to Shotsketch.</b> " if first_run else "")
            + "Shotsketch generates clips with <b>Wan2.2 TI2V-5B</b> on this computer. Choose where the model "
            "comes from. It needs about 32 GB of disk space and an NVIDIA GPU with 8 GB or more; a card with "
            "more memory keeps more of the model on it and runs faster."
        )
        intro.setWordWrap(True)
        self.group = QButtonGroup(self)
        self.radio_folder = QRadioButton("A folder on this computer (a diffusers download of the model)")
        self.radio_cache = QRadioButton("The Hugging Face cache (looking…)")
        self.radio_download = QRadioButton(f"Download it now from Hugging Face ({HUB_REPO_ID}, about 32 GB)")
        self.radio_demo = QRadioButton(f"Use the {DEMO_LABEL}. No download; its clips are coloured noise.")
        for i, radio in enumerate((self.radio_folder, self.radio_cache, self.radio_download, self.radio_demo)):
            self.group.addButton(radio, i)
        self.radio_cache.setEnabled(False)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("…/Wan2.2-TI2V-5B-Diffusers (the folder with model_index.json)")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.setContentsMargins(24, 0, 0, 0)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.problems = QLabel()
        self.problems.setObjectName("problemText")
        self.problems.setWordWrap(True)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress_text = QLabel()
        self.download_button = QPushButton("Start download")
        self.download_button.clicked.connect(self._toggle_download)
        self.download_button.setEnabled(False)
        dl_row = QHBoxLayout()
        dl_row.setContentsMargins(24, 0, 0, 0)
        dl_row.addWidget(self.progress, 1)
        dl_row.addWidget(self.download_button)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use this model")
        self.buttons.accepted.connect(self.accept_choice)
        self.buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(intro)
        box.addSpacing(8)
        box.addWidget(self.radio_folder)
        box.addLayout(folder_row)
        box.addWidget(self.radio_cache)
        box.addWidget(self.radio_download)
        box.addLayout(dl_row)
        box.addWidget(self.progress_text)
        box.addWidget(self.radio_demo)
        box.addWidget(self.problems)
        box.addStretch(1)
        box.addWidget(self.buttons)

        self.download = Download(parent=self)
        self.download.progress.connect(self._on_progress)
        self.download.finished.connect(self._on_downloaded)
        self.download.failed.connect(self._on_download_failed)
        self.download.cancelled.connect(self._on_download_cancelled)
        self.group.idToggled.connect(lambda _i, _on: self._update())
        self.folder_edit.textChanged.connect(lambda _t: self._update())
        current = settings.model
        if current == "demo":
            self.radio_demo.setChecked(True)
        elif current.startswith("hf:"):
            self.radio_cache.setChecked(True)
        else:
            self.radio_folder.setChecked(True)
            self.folder_edit.setText(current)
        self._lookup = _CacheLookup(self)
        self._lookup.found.connect(self._on_cache_found)
        self._lookup.start()
        self._update()

    def choice(self) -> Choice:
        return [Choice.FOLDER, Choice.CACHE, Choice.DOWNLOAD, Choice.DEMO][max(0, self.group.checkedId())]

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "The model folder (with model_index.json)",
                                                  self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)
            self.radio_folder.setChecked(True)

    def _on_cache_found(self, folder: str) -> None:
        self._cache_folder = folder
        if folder:
            self.radio_cache.setText(f"The Hugging Face cache — found {HUB_REPO_ID}")
            self.radio_cache.setEnabled(True)
        else:
            self.radio_cache.setText("The Hugging Face cache — the model is not there yet")
            if self.radio_cache.isChecked():
                self.radio_download.setChecked(True)
        self._update()

    def _update(self) -> None:
        choice = self.choice()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        problems: list[str] = []
        if choice is Choice.FOLDER:
            text = self.folder_edit.text().strip()
            problems = folder_problems(text) if text else ["Choose the model folder."]
        elif choice is Choice.CACHE:
            problems = [] if self._cache_folder else ["The model is not in the Hugging Face cache."]
        elif choice is Choice.DOWNLOAD:
            problems = [] if self._cache_folder else ["Start the download; when it has finished, use the model."]
        self.download_button.setEnabled(choice is Choice.DOWNLOAD)
        self.progress.setVisible(choice is Choice.DOWNLOAD or self.download.running)
        if problems and choice is Choice.FOLDER and self.folder_edit.text().strip():
            self.problems.setText("This folder cannot be used:\n" + "\n".join(f"• {p}" for p in problems))
        else:
            self.problems.setText("\n".join(problems))
        ok.setEnabled(not problems)

    # -- download
    def _toggle_download(self) -> None:
        if self.download.running:
            self.download.cancel()
            self.download_button.setEnabled(False)
            self.progress_text.setText("Stopping… (the part downloaded so far is kept)")
            return
        self.download_button.setText("Cancel download")
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress_text.setText("Connecting to Hugging Face…")
        self.download.start()

    def _on_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress_text.setText(f"Downloading: {done / 1e9:.2f} of {total / 1e9:.2f} GB")

    def _on_downloaded(self, folder: str) -> None:
        self.download_button.setText("Start download")
        problems = folder_problems(folder)
        if problems:
            self._on_download_failed("the downloaded model is incomplete: " + "; ".join(problems))
            return
        self._cache_folder = folder
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress_text.setText("Downloaded. Press “Use this model”.")
        self._update()

    def _on_download_failed(self, message: str) -> None:
        self.download_button.setText("Resume download")
        self.download_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress_text.setText(f"The download stopped: {message}. Check the connection and disk space, "
                                   "then resume; the part downloaded so far is kept.")

    def _on_download_cancelled(self) -> None:
        self.download_button.setText("Resume download")
        self.download_button.setEnabled(True)
        self.progress_text.setText("Download paused. Resume continues where it stopped.")

    # -- result
    def model_text(self) -> str:
        choice = self.choice()
        if choice is Choice.DEMO:
            return "demo"
        if choice is Choice.FOLDER:
            return str(Path(self.folder_edit.text().strip()).expanduser())
        return f"hf:{HUB_REPO_ID}"

    def accept_choice(self) -> None:
        model = self.model_text()
        try:
            new = self.settings.replace(model=model)
            save_settings(new)
        except (ValueError, OSError) as exc:
            self.problems.setText(f"The choice could not be saved: {exc}")
            return
        self.chosen_model = model
        self.saved_settings = new
        self.accept()

    def reject(self) -> None:
        if self.download.running:
            self.download.cancel()
        super().reject()
