"""The main window end to end: a demo generation through the queue (its slow work off the UI
thread; bench/ui_stall.py measures the longest stall), autosave and reopen, the saved window layout, shortcuts, and --demo --screenshot."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from shotsketch import DEMO_LABEL
from shotsketch.core.layout import Box, Subject
from shotsketch.engine.events import JobFinished, JobStarted, JobStep
from shotsketch.app.shot import ShotSettings
from shotsketch.ui.main_window import MainWindow
from shotsketch.ui.queue_panel import JobState
from shotsketch.ui.worker import generator_factory


class ThreadLog:
    """Records, once :attr:`recording` is set, the threads that called each wrapped entry point; a call
    on the Qt main (UI) thread is kept with the shotsketch functions that made it."""

    def __init__(self, monkeypatch) -> None:  # noqa: ANN001
        self._monkeypatch = monkeypatch
        self.calls: dict[str, list[str]] = {}
        self.on_ui_thread: dict[str, list[str]] = {}
        self.recording = False

    def record(self, label: str) -> None:
        if not self.recording:
            return
        self.calls.setdefault(label, []).append(threading.current_thread().name)
        if QThread.currentThread() == QApplication.instance().thread() or threading.current_thread() is threading.main_thread():
            callers = [f.name for f in traceback.extract_stack()[:-2] if "shotsketch" in f.filename]
            self.on_ui_thread.setdefault(label, []).append(" < ".join(reversed(callers[-3:])))

    def wrap(self, label: str, owner: object, name: str) -> None:
        """Wrap ``owner.name``, and the same function wherever a shotsketch module imported it."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def recorded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self.record(label)
            return original(*args, **kwargs)

        self._monkeypatch.setattr(owner, name, recorded)
        for module in [m for n, m in sys.modules.items() if n.startswith("shotsketch.") and m is not None]:
            if getattr(module, name, None) is original:
                self._monkeypatch.setattr(module, name, recorded)

    def factory(self, label: str, make):  # noqa: ANN001, ANN201
        def recorded():  # noqa: ANN202
            self.record(label)
            return make()

        return recorded


def watch_slow_work(monkeypatch) -> ThreadLog:  # noqa: ANN001
    """Every library write, engine call, clip encode and file read a generation makes, recorded."""
    import shotsketch.app.takes  # noqa: F401 - imported before wrapping: its names are wrapped too
    import shotsketch.ui.library_panel as library_panel
    import shotsketch.ui.timeline as timeline
    from shotsketch.core.library import Library
    from shotsketch.engine.generator import Generator
    from shotsketch.media import encode, heatmaps, sidecar, thumbnail

    log = ThreadLog(monkeypatch)
    log.wrap("library write", Library, "_write")
    for name in ("load", "generate", "encode_prompts", "warm_up"):
        log.wrap(f"engine {name}", Generator, name)
    log.wrap("clip encode", encode, "write_clip")
    log.wrap("thumbnail write", thumbnail, "make_thumbnail")
    log.wrap("recipe write", sidecar, "write_sidecar")
    log.wrap("heatmaps write", heatmaps, "write_heatmaps")
    log.wrap("clip decode", timeline, "decode_clip")
    log.wrap("clip read", encode, "iter_frames")
    log.wrap("recipe read", sidecar, "read_sidecar")
    log.wrap("heatmaps read", heatmaps, "read_heatmaps")
    log.wrap("thumbnail read", library_panel, "_thumbnail_image")
    return log


@pytest.mark.slow
def test_demo_generation_through_the_queue_keeps_slow_work_off_the_ui_thread(qtbot, make_window, queue_takes,
                                                                              monkeypatch):
    """What keeps the window responsive (no timing: bench/ui_stall.py measures the stall): the model
    is made and loaded, prompts encoded, the clip generated, encoded, written and read back, and the
    library written, all off the UI thread."""
    log = watch_slow_work(monkeypatch)
    window = make_window(engine_factory=log.factory("engine factory", generator_factory("demo", device="cpu")))
    log.recording = True  # from here on (building the window opens the example shot: before it takes input)
    window.worker.preload()  # as the app does at start: load the model before the first Generate
    qtbot.waitUntil(lambda: window.worker.state.value == "ready", timeout=120_000)
    window.prepare_prompt()  # as a pause in typing does: the prompt is encoded ahead
    qtbot.waitUntil(lambda: "engine encode_prompts" in log.calls, timeout=60_000)
    events = []
    window.worker.event.connect(events.append)
    previews = []
    window.shot.set_settings(ShotSettings(448, 256, 17, 4, 5.0, 3))
    (job,) = queue_takes(window, 1)
    row = window.queue.row(job)
    window.worker.event.connect(lambda e: isinstance(e, JobStep) and previews.append(row.preview.pixmap().cacheKey()))
    with qtbot.waitSignal(window.takeSaved, timeout=240_000) as saved:
        pass
    take = saved.args[0]
    kinds = [type(e) for e in events]
    assert kinds == [JobStarted, JobStep, JobStep, JobStep, JobStep, JobFinished]
    assert [e.step for e in events if isinstance(e, JobStep)] == [1, 2, 3, 4]
    assert len(set(previews)) == 4  # the live preview changed with every step
    assert window.queue.state(job) is JobState.DONE
    assert take.file.is_file() and take.file.suffix == ".mp4"
    assert Path(str(take.file) + ".json").is_file() and take.thumbnail.is_file()
    shot = window.current_shot()
    assert [t.id for v in window.library.list_variants(shot.id) for t in window.library.list_takes(v.id)] == [take.id]
    assert take.recipe["request"]["seed"] == 3 and take.recipe["model"]["label"] == DEMO_LABEL
    qtbot.waitUntil(lambda: window.timeline.frame_count() == 17, timeout=30_000)
    assert window.timeline.view.path == take.file
    window.library_panel.select_shot(shot.id)
    thumbs = window.library_panel.takes_model
    thumbs.data(thumbs.index(thumbs.row_of(take.id)), Qt.ItemDataRole.DecorationRole)  # as painting the card does
    qtbot.waitUntil(lambda: thumbs.thumbnail_loaded(take.id), timeout=30_000)

    expected = {"engine factory", "engine load", "engine encode_prompts", "engine generate", "library write",
                "clip encode", "thumbnail write", "recipe write", "clip decode", "clip read", "recipe read",
                "heatmaps read", "thumbnail read"}
    assert expected <= set(log.calls), f"not reached: {expected - set(log.calls)}"
    assert log.on_ui_thread == {}, f"slow work ran on the UI thread (calls per entry point): {log.on_ui_thread}"


def test_reopening_restores_the_shot(qtbot, qloop, fake_engine):
    first = MainWindow(engine_factory=lambda: fake_engine, demo=True, show_error_dialogs=False)
    qtbot.addWidget(first)
    shot_id = first.current_shot().id
    first.prompt.set_prompt("A red kite rises from the bottom edge to the top")
    kite = Subject.static("red kite", Box.from_center(0.5, 0.7, 0.2, 0.2), "#dd3322")
    layout = first.sketch.sketch().with_subject(kite)
    first.sketch.set_sketch(layout, undoable=True)
    first.shot.set_settings(ShotSettings(640, 352, 33, 12, 6.5, 42))
    final_edit = getattr(first.prompt, "final_edit", None)
    if final_edit is not None:  # a final prompt edited by hand is kept as written
        final_edit.setPlainText("A red kite rises. Hand-edited.")
    # autosave a moment after the edit, without closing
    qtbot.waitUntil(lambda: (first.library.load_shot_state(shot_id) or {}).get("prompt", "").startswith("A red kite"),
                    timeout=5_000)
    first.close()
    second = MainWindow(engine_factory=lambda: fake_engine, demo=True, show_error_dialogs=False)
    qtbot.addWidget(second)
    try:
        assert second.current_shot().id == shot_id
        assert second.prompt.prompt() == "A red kite rises from the bottom edge to the top"
        assert second.sketch.sketch() == layout
        assert "red kite" in second.sketch.sketch().names
        assert second.shot.settings == ShotSettings(640, 352, 33, 12, 6.5, 42)
        assert second.undo_stack.count() == 0  # a reopened shot starts a fresh history
        if final_edit is not None:
            assert second.prompt.final_prompt() == "A red kite rises. Hand-edited."
    finally:
        second.close()


def test_window_layout_is_saved_and_reset(qtbot, qloop, fake_engine):
    first = MainWindow(engine_factory=lambda: fake_engine, demo=True, show_error_dialogs=False)
    qtbot.addWidget(first)
    first.show()
    first.docks["queue"].toggleViewAction().trigger()
    assert not first.docks["queue"].isVisible()
    first.close()
    second = MainWindow(engine_factory=lambda: fake_engine, demo=True, show_error_dialogs=False)
    qtbot.addWidget(second)
    second.show()
    try:
        assert not second.docks["queue"].isVisible()
        second.window_actions.reset_layout.trigger()
        assert all(d.isVisible() for d in second.docks.values())
        assert second.dockWidgetArea(second.docks["library"]) == Qt.DockWidgetArea.LeftDockWidgetArea
        queue_area = Qt.DockWidgetArea.LeftDockWidgetArea if second._compact() else Qt.DockWidgetArea.RightDockWidgetArea
        assert second.dockWidgetArea(second.docks["queue"]) == queue_area
    finally:
        second.close()


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_default_arrangement(qtbot, make_window, size):
    window = make_window()
    window.resize_for_screenshot(window.size().__class__(*size))
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(50)
    geo = {k: d.geometry() for k, d in window.docks.items()}
    assert (window.width(), window.height()) == size
    assert geo["library"].right() < min(geo["sketch"].left(), geo["timeline"].left())
    if size[0] >= 1500:  # sketch | preview, prompt below both, queue right (the LoRA list a tab beside it)
        assert max(geo["timeline"].right(), geo["prompt"].right()) < geo["queue"].left()
        assert window.tabifiedDockWidgets(window.docks["queue"]) == [window.docks["loras"]]
        assert geo["sketch"].right() < geo["timeline"].left()
        assert geo["prompt"].top() > geo["sketch"].bottom()
        assert geo["sketch"].width() + geo["timeline"].width() > 0.55 * window.width()
        assert geo["timeline"].height() > 0.5 * window.height()
    else:  # the same, with the queue and the LoRA list tabs beside the library: the preview keeps its size at 1280x720
        assert window.tabifiedDockWidgets(window.docks["library"]) == [window.docks["queue"], window.docks["loras"]]
        assert not window.docks["library"].visibleRegion().isEmpty()  # the library's tab is the one shown
        assert geo["sketch"].width() > 400 and geo["sketch"].right() < geo["timeline"].left()
        assert geo["prompt"].top() > max(geo["sketch"].bottom(), geo["timeline"].bottom())
        assert geo["sketch"].width() + geo["timeline"].width() > 0.7 * window.width()
        assert geo["timeline"].height() > 0.5 * window.height()


def test_demo_label_in_title_and_status_bar(qtbot, make_window):
    window = make_window()
    assert DEMO_LABEL in window.windowTitle()
    assert DEMO_LABEL in window.status_model.text()


def test_shortcuts_leave_text_fields_and_the_canvas_alone(qtbot, make_window):
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    toggles, steps = [], []
    window.timeline.toggle_play = lambda: toggles.append(1)  # type: ignore[method-assign]
    window.timeline.step = lambda n: steps.append(n)  # type: ignore[method-assign]
    from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QTextEdit

    text = next(iter(window.prompt.findChildren(QPlainTextEdit) or window.prompt.findChildren(QTextEdit)
                     or window.prompt.findChildren(QLineEdit)))
    text.setFocus()
    qtbot.waitUntil(text.hasFocus)
    qtbot.keyClick(text, Qt.Key.Key_Space)
    qtbot.keyClick(text, Qt.Key.Key_Left)
    assert toggles == [] and steps == []
    canvas = getattr(window.sketch, "canvas", None)
    if canvas is not None:
        canvas.setFocus()
        qtbot.waitUntil(canvas.hasFocus)
        qtbot.keyClick(canvas, Qt.Key.Key_Right)
        assert steps == []
    window.queue.setFocus()  # a panel that has no use for the keys: the window's shortcuts apply
    qtbot.waitUntil(window.queue.hasFocus)
    qtbot.keyClick(window.queue, Qt.Key.Key_Space)
    qtbot.keyClick(window.queue, Qt.Key.Key_Right)
    qtbot.keyClick(window.queue, Qt.Key.Key_Left)
    assert toggles == [1] and steps == [1, -1]
    window.timeline.setFocus()  # the timeline's own shortcuts apply; the window's step aside
    qtbot.waitUntil(window.timeline.hasFocus)
    assert window.window_actions.play.shortcut().isEmpty() and window.window_actions.next.shortcut().isEmpty()
    window.queue.setFocus()
    qtbot.waitUntil(window.queue.hasFocus)
    assert window.window_actions.play.shortcut().toString() == "Space"


def test_undo_and_redo_act_on_the_sketch(qtbot, make_window):
    window = make_window()
    before = window.sketch.sketch()
    kite = Subject.static("kite", Box.from_center(0.3, 0.3, 0.1, 0.1))
    window.sketch.set_sketch(before.with_subject(kite), undoable=True)
    assert window.window_actions.undo.isEnabled()
    window.window_actions.undo.trigger()
    assert window.sketch.sketch() == before
    window.window_actions.redo.trigger()
    assert "kite" in window.sketch.sketch().names


def test_new_shot_opens_empty_and_the_example_stays(qtbot, make_window):
    window = make_window()
    example = window.current_shot()
    window.new_shot()
    assert window.current_shot().id != example.id
    assert window.prompt.prompt() == "" and not window.sketch.sketch().subjects
    window.open_shot(example.id)
    assert window.prompt.prompt().startswith("A yellow ball")


@pytest.mark.slow
def test_screenshot_command(tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "shotsketch", "--demo", "--screenshot", str(out), "--size", "1280x800"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    image = QImage(str(out))
    assert not image.isNull()
    assert (image.width(), image.height()) == (1280, 800)
    assert "1280x800" in proc.stdout


# -- model setup and settings dialogs -------------------------------------------------------------


def test_model_setup_lists_every_problem_of_a_folder(qtbot, tmp_path):
    from PySide6.QtWidgets import QDialogButtonBox

    from shotsketch.core.settings import AppSettings
    from shotsketch.ui.model_setup import ModelSetupDialog

    bad = tmp_path / "bad"
    (bad / "transformer").mkdir(parents=True)
    (bad / "model_index.json").write_text('{"_class_name": "WanPipeline", "transformer": ["diffusers", '
                                          '"WanTransformer3DModel"]}')
    dialog = ModelSetupDialog(AppSettings(), first_run=True)
    qtbot.addWidget(dialog)
    dialog.radio_folder.setChecked(True)
    dialog.folder_edit.setText(str(bad))
    text = dialog.problems.text()
    for expected in ("transformer/config.json is missing", "does not name the vae component",
                     "does not name the text_encoder component", "does not name the tokenizer component"):
        assert expected in text
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert DEMO_LABEL in dialog.radio_demo.text()


@pytest.mark.slow
def test_model_setup_accepts_a_valid_folder_and_saves_it(qtbot, saved_demo_folder):
    from PySide6.QtWidgets import QDialogButtonBox

    from shotsketch.core.settings import AppSettings, load_settings
    from shotsketch.ui.model_setup import ModelSetupDialog

    dialog = ModelSetupDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.radio_folder.setChecked(True)
    dialog.folder_edit.setText(str(saved_demo_folder))
    assert dialog.problems.text() == ""
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.isEnabled()
    ok.click()
    assert dialog.chosen_model == str(saved_demo_folder)
    assert load_settings().model == str(saved_demo_folder)


def test_model_download_reports_progress_cancels_and_resumes_off_the_ui_thread(qtbot, monkeypatch, tmp_path):
    import threading

    from shotsketch.core.settings import AppSettings
    from shotsketch.engine import sources
    from shotsketch.ui.model_setup import ModelSetupDialog

    calls = []

    def fake_download(repo_id=sources.HUB_REPO_ID, revision=None, progress=None):  # noqa: ANN001, ANN202
        calls.append(threading.current_thread())
        first = len(calls) == 1
        done = 0 if first else 50  # the second call resumes where the first stopped
        try:
            while done <= 100:
                time.sleep(0.01)
                progress(done * 10**7, 10**9)
                if not (first and done >= 50):  # the first call stalls at half way until cancelled
                    done += 10
        except Exception as exc:  # noqa: BLE001 - the hub wraps whatever the callback raises
            raise sources.ModelError("interrupted") from exc
        return tmp_path / "never-valid"

    monkeypatch.setattr(sources, "download_model", fake_download)
    dialog = ModelSetupDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.radio_download.setChecked(True)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.progress.value() >= 500, timeout=5_000)
    assert "GB" in dialog.progress_text.text()
    with qtbot.waitSignal(dialog.download.cancelled, timeout=10_000):
        dialog.download_button.click()  # "Cancel download"
    assert dialog.download_button.text() == "Resume download"
    assert calls[0] is not threading.main_thread()
    with qtbot.waitSignal(dialog.download.finished, timeout=10_000):
        dialog.download_button.click()
    # the fake's folder is not a model: the dialog says so instead of accepting it
    assert "incomplete" in dialog.progress_text.text()


def test_settings_dialog_saves_valid_values_and_refuses_others(qtbot):
    from shotsketch.core.settings import AppSettings, load_settings
    from shotsketch.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.width_box.setValue(100)  # not a multiple of 32
    dialog.save()
    assert "multiple of 32" in dialog.problem.text() and dialog.saved_settings is None
    dialog.width_box.setValue(640)
    dialog.plan.setCurrentIndex(dialog.plan.findData("group-offload"))
    dialog.steps_box.setValue(30)
    dialog.save()
    saved = load_settings()
    assert (saved.width, saved.memory_plan, saved.steps) == (640, "group-offload", 30)
    assert dialog.saved_settings == saved


def test_the_sketch_is_phrased_into_the_prompt_and_a_prompt_drafts_a_sketch(qtbot, make_window):
    window = make_window()
    kite = Subject.static("red kite", Box.from_center(0.2, 0.2, 0.1, 0.1))
    window.sketch.set_sketch(window.sketch.sketch().with_subject(kite), undoable=True)
    assert "red kite" in window.prompt.final_prompt() or "red kite" in window.shot.request().prompt
    window.prompt.draftRequested.emit("A green boat floats on the left while a bird flies above it")
    names = window.sketch.sketch().names
    assert any("boat" in n for n in names)
    window.window_actions.undo.trigger()  # the draft is one undoable edit
    assert "red kite" in window.sketch.sketch().names


def test_branching_from_a_variant_makes_the_next_takes_its_children(qtbot, make_window, fake_engine):
    window = make_window(fake_engine)
    window.shot.set_settings(ShotSettings(96, 64, 5, 1, 5.0, 1))
    shot = window.current_shot().id
    with qtbot.waitSignal(window.takeSaved, timeout=10_000):
        window.generate(1)
    (first,) = window.library.list_variants(shot)
    window.prompt.set_prompt("A yellow ball bounces in the center")
    with qtbot.waitSignal(window.takeSaved, timeout=10_000):
        window.generate(1)
    variants = window.library.list_variants(shot)
    assert len(variants) == 2 and variants[1].parent_id == first.id
    window.load_variant(first.id)  # "branch from here"
    assert window.prompt.prompt() == first.prompt
    with qtbot.waitSignal(window.takeSaved, timeout=10_000) as saved:
        window.generate(1)
    assert window.library.get_take(saved.args[0].id).variant_id == first.id  # same content: same variant
    window.prompt.set_prompt(first.prompt + " Slowly.")
    with qtbot.waitSignal(window.takeSaved, timeout=10_000):
        window.generate(1)
    newest = window.library.list_variants(shot)[-1]
    assert newest.parent_id == first.id and len(window.library.list_variants(shot)) == 3


FIRST_RUN_DRIVER = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from shotsketch.ui.model_setup import ModelSetupDialog

def fake_exec(dialog):
    print("SHOWN:", dialog.windowTitle(), "|", dialog.radio_demo.text(), flush=True)
    QTimer.singleShot(0, QApplication.instance().quit)
    return 0

ModelSetupDialog.exec = fake_exec
from shotsketch.cli import main
sys.exit(main(["--size", "1280x800"]))
"""


def test_plain_start_without_a_configured_model_opens_model_setup(tmp_path):
    from shotsketch.core.settings import settings_path

    assert not settings_path().exists()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", FIRST_RUN_DRIVER], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"SHOWN: Set up the model | Use the {DEMO_LABEL}" in proc.stdout


def test_a_pause_in_typing_encodes_the_prompt_ahead(qtbot, make_window, fake_engine_cls):
    engine = fake_engine_cls()
    encoded: list[tuple[str, str]] = []
    engine.encode_prompts = lambda prompt, negative: encoded.append((prompt, negative))
    window = make_window(engine)
    window.worker.preload()
    qtbot.waitUntil(lambda: window.worker.state.value == "ready", timeout=5_000)
    window.prompt.set_prompt("A red kite rises from the bottom edge")
    window.prompt.set_prompt("A red kite rises from the bottom edge to the top")
    qtbot.waitUntil(lambda: bool(encoded), timeout=5_000)
    qtbot.wait(100)
    # once, after the pause, with what Generate would send
    assert encoded == [(window.shot.request().prompt, window.shot.request().negative_prompt)]
    assert encoded[0][0].startswith("A red kite rises from the bottom edge to the top")
