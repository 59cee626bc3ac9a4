"""The launcher's window: the proposed backend, progress in bytes and files, Cancel."""

import threading

import pytest

from shotsketch_launcher import window as launcher_window
from shotsketch_launcher.engine import Cancelled, EngineFolder, Step
from shotsketch_launcher.gpu import Backend, Gpu, Proposal
from shotsketch_launcher.payload import Payload


@pytest.fixture
def launcher(qtbot, tmp_path):
    root = tmp_path / "payload"
    (root / "locks").mkdir(parents=True)
    (root / "wheels").mkdir()
    for name in ("linux-cu130-py312.txt", "linux-cpu-py311.txt"):
        (root / "locks" / name).write_text("torch==2.13.0\n")
    (root / "wheels" / "shotsketch-0.1.0-py3-none-any.whl").write_bytes(b"app")
    proposal = Proposal(Backend.CUDA130, "test", gpu=Gpu("nvidia", "NVIDIA GeForce RTX 4090", (8, 9), "580.95"))
    started = []
    win = launcher_window.LauncherWindow(EngineFolder(tmp_path / "engine"), Payload(root, os="linux"), proposal,
                                         "install", started.append)
    qtbot.addWidget(win)
    win.started = started
    return win


def test_the_proposed_backend_is_chosen_and_can_be_changed(launcher):
    assert launcher.chosen_backend() is Backend.CUDA130
    assert "recommended" in launcher.backends.currentText()
    launcher.backends.setCurrentIndex(launcher.backends.findData(Backend.CPU.value))
    assert launcher.chosen_backend() is Backend.CPU
    assert launcher.install_button.text() == "Install"
    assert "RTX 4090" in launcher.hardware.text()


def test_the_cpu_engine_says_the_disk_it_was_measured_to_take(launcher):
    launcher.backends.setCurrentIndex(launcher.backends.findData(Backend.CPU.value))
    assert "downloads about 400.0 MB" in launcher._plan_text(None)
    assert "needs about 1.5 GB of disk" in launcher._plan_text(None)  # 1.49 GB in test-deb.sh


def test_progress_shows_bytes_then_files(launcher):
    launcher.show_step(Step("Downloading the large files", 1_250_000_000, 2_700_000_000, "bytes", "file 2 of 13"))
    assert launcher.progress.format() == "1.2 GB of 2.7 GB"
    assert launcher.progress.maximum() == 2700 and launcher.progress.value() == 1250
    launcher.show_step(Step("Installing packages", 12, 60, "files"))
    assert launcher.progress.format() == "12 of 60 files"


def test_cancel_stops_the_install_and_says_what_is_kept(launcher, qtbot, monkeypatch):
    entered = threading.Event()

    def waits_for_cancel(self, plan):
        self.on_step(Step("Downloading the large files", 1, 10, "bytes"))
        entered.set()
        self.cancel.wait(10)
        raise Cancelled()

    monkeypatch.setattr(launcher_window.Installer, "install", waits_for_cancel)
    launcher.start_install()
    assert entered.wait(5)
    assert launcher.cancel_button.text() == "Cancel" and not launcher.install_button.isEnabled()
    launcher.cancel()
    qtbot.waitUntil(lambda: launcher.worker is None, timeout=5000)
    assert launcher.status.text().startswith("Cancelled. What was downloaded is kept")
    assert launcher.install_button.isEnabled() and launcher.started == []


def test_the_details_get_one_line_per_phase(launcher):
    for done in (0, 0, 3, 7):
        launcher.show_step(Step("Installing packages", done, 60, "files", "torch, diffusers, Qt and the app"))
    launcher.show_step(Step("Checking the new engine"))
    assert launcher.details.toPlainText().splitlines() == [
        "Installing packages: torch, diffusers, Qt and the app", "Checking the new engine"]
