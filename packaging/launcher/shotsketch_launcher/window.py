"""The launcher's window (Qt widgets): first-run install, update, and the engine settings
(Repair, switch backend, Update, remove the engine). The work runs on a thread; its steps arrive
here by queued signals."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QApplication, QComboBox, QHBoxLayout, QLabel, QMessageBox, QPlainTextEdit,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from shotsketch_launcher.engine import (Cancelled, EngineError, EngineFolder, InstalledEngine, Installer,
                                        InstallPlan, Step)
from shotsketch_launcher.gpu import Backend, Proposal
from shotsketch_launcher.locks import LockMissing, available_backends
from shotsketch_launcher.payload import Payload


def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("bytes", "KB") else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _Signals(QObject):
    step = Signal(object)
    finished = Signal(object)
    failed = Signal(str)


class LauncherWindow(QWidget):
    """``mode`` is "install" (first run), "update" (the installer brought a new engine) or "settings"."""

    def __init__(self, folder: EngineFolder, payload: Payload, proposal: Proposal, mode: str,
                 start_app: Callable[[InstalledEngine], None], wheelhouse: Path | None = None,
                 backend: Backend | None = None):
        super().__init__()
        self.folder, self.payload, self.proposal, self.mode = folder, payload, proposal, mode
        self.start_app_callback = start_app
        self.wheelhouse = wheelhouse
        self.last_phase = ""
        self.screenshot: Path | None = None  # saved once the package install shows progress (package test)
        self.cancel_event = threading.Event()
        self.worker: threading.Thread | None = None
        self.signals = _Signals()
        self.signals.step.connect(self.show_step)
        self.signals.finished.connect(self.on_finished)
        self.signals.failed.connect(self.on_failed)
        self.setWindowTitle("Shotsketch — video engine")
        self.resize(680, 460)
        self._build(backend or proposal.backend)
        self.refresh()

    # -- layout ---------------------------------------------------------------------------------

    def _build(self, backend: Backend) -> None:
        layout = QVBoxLayout(self)
        self.title = QLabel()
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        layout.addWidget(self.title)
        self.hardware = QLabel()
        self.hardware.setWordWrap(True)
        layout.addWidget(self.hardware)
        row = QHBoxLayout()
        row.addWidget(QLabel("Engine for:"))
        self.backends = QComboBox()
        for b in available_backends(self.payload.locks, self.payload.os) or [Backend.CPU]:
            suffix = "  (recommended here)" if b == self.proposal.backend else ""
            self.backends.addItem(b.label + suffix, b.value)  # Qt would turn the enum into a plain str
        index = self.backends.findData(backend.value)
        self.backends.setCurrentIndex(max(index, 0))
        self.backends.currentIndexChanged.connect(self.refresh)
        row.addWidget(self.backends, 1)
        layout.addLayout(row)
        self.plan_text = QLabel()
        self.plan_text.setWordWrap(True)
        layout.addWidget(self.plan_text)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumBlockCount(2000)
        layout.addWidget(self.details, 1)
        buttons = QHBoxLayout()
        self.remove_button = QPushButton("Remove the engine…")
        self.remove_button.clicked.connect(self.remove_engine)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        self.start_button = QPushButton("Start Shotsketch")
        self.start_button.clicked.connect(self.start_current)
        buttons.addWidget(self.start_button)
        self.install_button = QPushButton()
        self.install_button.setDefault(True)
        self.install_button.clicked.connect(self.start_install)
        buttons.addWidget(self.install_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)

    def chosen_backend(self) -> Backend:
        return Backend(self.backends.currentData() or Backend.CPU.value)

    def refresh(self) -> None:
        current = self.folder.current()
        busy = self.worker is not None and self.worker.is_alive()
        titles = {"install": "Set up the video engine", "update": "Update the video engine",
                  "settings": "Video engine settings"}
        self.title.setText(titles.get(self.mode, titles["settings"]))
        gpu = self.proposal.gpu.describe() if self.proposal.gpu else ""
        self.hardware.setText(f"This computer: {gpu or self.proposal.reason}. "
                              f"Proposed: {self.proposal.backend.label}.")
        self.plan_text.setText(self._plan_text(current))
        if current is None:
            action = "Install"
        elif Backend(current.backend) != self.chosen_backend():
            action = "Switch engine"
        else:
            action = "Update" if self.mode == "update" else "Repair"
        self.install_button.setText(action)
        self.install_button.setEnabled(not busy)
        self.backends.setEnabled(not busy)
        self.start_button.setEnabled(not busy and current is not None)
        self.remove_button.setEnabled(not busy and self.folder.root.exists())
        self.cancel_button.setText("Cancel" if busy else "Close")

    def _plan_text(self, current: InstalledEngine | None) -> str:
        backend = self.chosen_backend()
        lines = []
        if current is not None:
            lines.append(f"Installed: {current.describe()}.")
        if self.wheelhouse is not None:
            lines.append("Installs from the offline bundle: nothing is downloaded.")
        else:
            from shotsketch_launcher.locks import all_locks

            sizes = [sum(int(f.get("size") or 0) for f in lock.large_wheels())
                     for lock in all_locks(self.payload.locks) if lock.os == self.payload.os and lock.backend == backend]
            big = max(sizes, default=0)
            estimate = {Backend.CPU: 0.4e9, Backend.MPS: 0.5e9}.get(backend, big + 0.5e9)
            # CPU: the engine test-deb.sh builds takes 1.49 GB (packaging/README.md); others not measured
            disk = {Backend.CPU: 1.5e9}.get(backend, estimate * 2.2)
            lines.append(f"The first install downloads about {human_size(estimate)} "
                         f"(torch and the GPU libraries) and needs about {human_size(disk)} of disk. "
                         "A broken download continues where it stopped.")
        if self.proposal.fast_attention and backend == self.proposal.backend:
            lines.append("This GPU gets FlashAttention-4 (fast attention) too.")
        lines.append(f"Engine folder: {self.folder.root}. Your library and models are never touched here.")
        return " ".join(lines)

    # -- actions -----------------------------------------------------------------------------

    def start_install(self) -> None:
        backend = self.chosen_backend()
        fast = self.proposal.fast_attention and backend == self.proposal.backend
        plan = InstallPlan(backend, fast, self.wheelhouse)
        self.cancel_event = threading.Event()
        self.details.clear()
        self.progress.setRange(0, 0)
        installer = Installer(self.folder, self.payload, self.signals.step.emit, self.cancel_event)
        self.worker = threading.Thread(target=self._run, args=(installer, plan), daemon=True)
        self.worker.start()
        self.refresh()

    def _run(self, installer: Installer, plan: InstallPlan) -> None:
        try:
            engine = installer.install(plan)
        except Cancelled:
            self.signals.failed.emit("Cancelled. What was downloaded is kept; the next install continues from there.")
        except (EngineError, LockMissing, FileNotFoundError) as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - one line here, the traceback in launcher.log
            installer.log(traceback.format_exc())
            self.signals.failed.emit(f"the install stopped: {type(exc).__name__}: {exc} "
                                     f"(details in {self.folder.root / 'launcher.log'})")
        else:
            self.signals.finished.emit(engine)
        finally:
            self._log_to_file(installer.log_lines)

    def _log_to_file(self, lines: list[str]) -> None:
        try:
            self.folder.root.mkdir(parents=True, exist_ok=True)
            with (self.folder.root / "launcher.log").open("a", encoding="utf-8") as log:
                log.write("\n".join(lines) + "\n")
        except OSError:
            pass

    def show_step(self, step: Step) -> None:
        if step.total > 0:
            scale = 1_000_000 if step.unit == "bytes" else 1
            self.progress.setRange(0, max(1, step.total // scale))
            self.progress.setValue(min(step.done, step.total) // scale)
            if step.unit == "bytes":
                self.progress.setFormat(f"{human_size(step.done)} of {human_size(step.total)}")
            else:
                self.progress.setFormat(f"{step.done} of {step.total} {step.unit}")
        else:
            self.progress.setRange(0, 0)
        self.status.setText(f"{step.phase}… {step.detail}".strip())
        if step.phase != self.last_phase:  # one line per phase; the numbers are on the bar
            self.last_phase = step.phase
            self.details.appendPlainText(f"{step.phase}: {step.detail}" if step.detail else step.phase)
        mid_install = step.unit == "files" and 0 < step.done < step.total
        if self.screenshot and (mid_install or step.phase.startswith("Checking")) and not self.screenshot.exists():
            self.grab().save(str(self.screenshot))

    def on_finished(self, engine: InstalledEngine) -> None:
        self.worker = None
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("Ready")
        self.status.setText(f"Ready: {engine.describe()}. Check passed ({engine.checked}).")
        self.refresh()
        if self.mode in ("install", "update"):
            QTimer.singleShot(300, lambda: self.start_app_callback(engine))

    def on_failed(self, message: str) -> None:
        self.worker = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Stopped")
        current = self.folder.current()
        keep = f" The engine that was there still runs ({current.describe()})." if current else ""
        self.status.setText(message + keep)
        self.details.appendPlainText(message + keep)
        self.refresh()

    def cancel(self) -> None:
        if self.worker is not None and self.worker.is_alive():
            self.cancel_event.set()
            self.status.setText("Cancelling…")
        else:
            self.close()

    def start_current(self) -> None:
        current = self.folder.current()
        if current is not None:
            self.start_app_callback(current)

    def remove_engine(self) -> None:
        size = human_size(self.folder.size_bytes())
        answer = QMessageBox.question(
            self, "Remove the engine",
            f"Remove the video engine ({size} in {self.folder.root})?\n\nYour library, your clips and your "
            "models stay where they are. Shotsketch sets the engine up again on its next start.")
        if answer == QMessageBox.StandardButton.Yes:
            try:
                self.folder.remove()
                self.status.setText("The engine was removed. Your library and models were not touched.")
            except OSError as exc:
                self.status.setText(f"Some engine files could not be removed: {exc}")
            self.refresh()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        if self.worker is not None and self.worker.is_alive():
            self.cancel_event.set()
            self.worker.join(15)
        super().closeEvent(event)


def run_window(folder: EngineFolder, payload: Payload, proposal: Proposal, mode: str,
               start_app: Callable[[InstalledEngine], None], wheelhouse: Path | None, backend: Backend | None,
               install_now: bool, screenshot: Path | None = None) -> int:
    app = QApplication.instance() or QApplication(["shotsketch"])
    app.setApplicationName("Shotsketch")
    app.setDesktopFileName("shotsketch")
    window = LauncherWindow(folder, payload, proposal, mode, start_app, wheelhouse, backend)
    window.screenshot = screenshot
    window.show()
    if install_now or mode == "update":
        QTimer.singleShot(100, window.start_install)
    return app.exec()

