"""Starting the window: the QApplication, the qasync event loop (so asyncio work such as encodes
and downloads runs beside Qt's events), first-run model setup, and ``--demo --screenshot PATH``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QSize, QTimer
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_S = 300.0
DEFAULT_SCREENSHOT_SIZE = QSize(1280, 800)
SPLASH_PAINT_WAIT_MS = 1000  # at most this long for the window system to show the splash


def parse_size(text: str | None) -> QSize | None:
    if not text:
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 640 or int(h) < 480:
        raise ValueError(f"--size must be WIDTHxHEIGHT, at least 640x480 (got {text!r})")
    return QSize(int(w), int(h))


def make_application() -> QApplication:
    from shotsketch.ui.theme import apply_theme

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    app.setApplicationName("Shotsketch")
    app.setApplicationDisplayName("Shotsketch")
    app.setDesktopFileName("shotsketch")
    apply_theme(app)
    return app  # type: ignore[return-value]


def collect_garbage_on_the_ui_thread(app: QObject) -> QTimer:
    """Python's cyclic garbage collection runs on whichever thread happens to allocate, the GPU
    worker's included; a Qt object collected there is destroyed off its thread, and a timer of its
    can then fire on freed memory (seen as a segfault in QCoreApplication::notifyInternal2 when the
    test windows were left to the collector). So the automatic collection is off and the UI thread
    collects a few times a second instead (the approach pyqtgraph's GarbageCollector takes)."""
    import gc

    gc.disable()
    timer = QTimer(app)
    timer.setInterval(500)

    def collect() -> None:  # the generation the automatic collector would have taken
        counts, limits = gc.get_count(), gc.get_threshold()
        if counts[0] > limits[0]:
            gc.collect(2 if counts[2] > limits[2] else 1 if counts[1] > limits[1] else 0)

    timer.timeout.connect(collect)
    timer.start()
    return timer


def run_app(args: argparse.Namespace | None = None) -> int:
    """Open the window; returns the exit status."""
    import qasync

    args = args or argparse.Namespace(demo=False, screenshot=None)
    demo = bool(getattr(args, "demo", False))
    screenshot = getattr(args, "screenshot", None)
    try:
        size = parse_size(getattr(args, "size", None))
    except ValueError as exc:
        print(f"shotsketch: {exc}", file=sys.stderr)
        return 2
    if screenshot and not demo:
        print("shotsketch: --screenshot needs --demo", file=sys.stderr)
        return 2
    if screenshot:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
        _use_scratch_folders()  # a clean library and default layout, and nothing left in the user's

    app = make_application()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    collector = collect_garbage_on_the_ui_thread(app)  # noqa: F841 - lives as long as the app

    splash = _splash(app)
    _import_engine()
    from shotsketch.core.settings import settings_path
    from shotsketch.ui.main_window import MainWindow

    first_run = not demo and not settings_path().exists()
    library = open_library(interactive=has_a_person_at_the_screen(screenshot=screenshot))
    if library is None:
        return 1
    window = MainWindow(library=library, demo=demo, show_error_dialogs=not screenshot)
    if size is not None or screenshot:
        window.resize_for_screenshot(size or _screen_size())
    window.show()
    if splash is not None:
        splash.finish(window)
    result = {"code": 0}
    if screenshot:
        task = loop.create_task(_take_screenshot(window, Path(screenshot), result))
        task.add_done_callback(lambda _t: app.exit(result["code"]))
    elif first_run:
        QTimer.singleShot(0, lambda: window.show_model_setup(first_run=True))
    else:
        window.worker.preload()  # load on the worker thread now, so the first Generate starts at once
    app.aboutToQuit.connect(window.shutdown)
    with loop:
        loop.run_forever()
    window.shutdown()
    return result["code"]


def has_a_person_at_the_screen(*, screenshot: bool) -> bool:
    """Whether a modal window can be answered: not in a screenshot run, nor on Qt's offscreen or
    minimal platforms (a headless server, CI), where it would wait for a click that never comes."""
    return not screenshot and QApplication.platformName() not in ("offscreen", "minimal")


def open_library(interactive: bool = True):  # noqa: ANN201 - a Library, or None when it cannot be opened
    """The user's library. A damaged one has already been moved aside by core.library (never
    deleted): say so in a window, where a desktop user sees it, and start a fresh library."""
    from PySide6.QtWidgets import QMessageBox

    from shotsketch.core.library import Library, LibraryDamaged, LibraryError

    try:
        return Library.open()
    except LibraryDamaged as exc:
        log.error("library damaged: %s", exc)
        if interactive:
            QMessageBox.warning(None, "Shotsketch — library damaged",
                                f"{exc}\n\nShotsketch starts a new library with what could still be read of it. "
                                "Your clips' files are untouched.")
        try:
            return Library.open(recover=True, salvage_from=exc.kept_at)
        except LibraryError as again:
            exc = again
    except LibraryError as exc2:
        exc = exc2
    log.error("library could not be opened: %s", exc)
    if interactive:
        QMessageBox.critical(None, "Shotsketch", f"The library could not be opened: {exc}")
    print(f"shotsketch: the library could not be opened: {exc}", file=sys.stderr)
    return None


def _splash(app: QApplication):  # noqa: ANN202 - a Splash
    """A small 'Loading…' window while the engine's libraries are imported; shown painted before
    this returns (the imports that follow hold the interpreter for seconds)."""
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    from PySide6.QtGui import QColor, QPaintEvent, QPixmap
    from PySide6.QtWidgets import QSplashScreen

    class Splash(QSplashScreen):
        painted = False

        def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
            super().paintEvent(event)
            handle = self.windowHandle()
            self.painted = handle is not None and handle.isExposed()  # on screen, not only in memory

    pixmap = QPixmap(420, 120)
    pixmap.fill(QColor("#22262e"))
    splash = Splash(pixmap)
    splash.showMessage("Shotsketch\nLoading the video engine (torch, diffusers)…",
                       Qt.AlignmentFlag.AlignCenter, QColor("#e8e8e8"))
    splash.show()
    splash.raise_()
    deadline = QDeadlineTimer(SPLASH_PAINT_WAIT_MS)
    while not splash.painted and not deadline.hasExpired():  # mapped and painted by the window system
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if splash.windowHandle() is not None and splash.windowHandle().isExposed():
            splash.repaint()
    return splash


def _import_engine() -> None:
    """Import torch, diffusers and the Wan classes now, before the window takes input.

    An import holds Python's lock for long stretches of compiled code, so doing it later on the GPU
    worker thread froze the window for a few hundred milliseconds right after start."""
    import shotsketch.engine  # noqa: F401 - first: it quiets the libraries' import-time logging
    import diffusers.pipelines.wan.pipeline_wan  # noqa: F401
    import diffusers.pipelines.wan.pipeline_wan_i2v  # noqa: F401
    import transformers.models.umt5.modeling_umt5  # noqa: F401

    import shotsketch.engine.generator  # noqa: F401


def _screen_size() -> QSize:
    screen = QApplication.primaryScreen()
    if screen is not None and QApplication.platformName() != "offscreen":
        avail = screen.availableGeometry().size()
        if avail.width() >= 1024 and avail.height() >= 700:
            return avail
    return DEFAULT_SCREENSHOT_SIZE


def _use_scratch_folders() -> None:
    from shotsketch.core import leftovers

    temp = Path(tempfile.gettempdir())
    leftovers.clean(temp)  # scratch folders of earlier screenshot runs (named for their process)
    base = leftovers.create_folder(temp, "shotsketch-screenshot", "scratch")
    for name in ("DATA", "CONFIG", "CACHE"):
        os.environ[f"SHOTSKETCH_{name}_DIR"] = str(base / name.lower())


def _export_for_screenshot(library, take) -> Path:  # noqa: ANN001 - a Library and its Take
    """Export a take into the scratch folder through the export service (the library records it)."""
    from shotsketch.app.exports import ExportRequest, export_clip
    from shotsketch.core import paths
    from shotsketch.media.encode import ClipFormat

    folder = paths.data_dir() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    request = ExportRequest(take.file, folder / f"yellow ball take {take.id}.mp4", ClipFormat.MP4,
                            take_id=take.id, recipe=take.recipe)
    return export_clip(request, library=library).path


async def _take_screenshot(window, path: Path, result: dict) -> None:  # noqa: ANN001 - a MainWindow
    """Generate the yellow-ball example with the demo model, export the take as a creator would,
    show both, and save the window's picture."""
    from shotsketch.app.shot import ShotSettings

    loop = asyncio.get_running_loop()
    saved: asyncio.Future = loop.create_future()
    window.takeSaved.connect(lambda take: saved.done() or saved.set_result(take))
    window.errors.reported.connect(lambda p: saved.done() or saved.set_exception(RuntimeError(p.message)))
    try:
        window.open_example_shot("yellow_ball", reset=True)
        window.shot.set_settings(ShotSettings(448, 256, 17, 4, 5.0, 0))
        queued: asyncio.Future = loop.create_future()
        window.jobsQueued.connect(lambda ids: queued.done() or queued.set_result(ids))
        if not window.generate(2):
            raise RuntimeError("the example shot could not be queued")
        first, second = await asyncio.wait_for(queued, SCREENSHOT_TIMEOUT_S)
        take = await asyncio.wait_for(saved, SCREENSHOT_TIMEOUT_S)
        await loop.run_in_executor(None, _export_for_screenshot, window.library, take)
        window.docks["library"].raise_()
        window.library_panel.select_takes([take.id])
        # Let the second job show its live preview, and the timeline decode and paint the take.
        for _ in range(400):
            row = window.queue.row(second)
            previewed = row is None or row.preview.pixmap() is not None and not row.preview.pixmap().isNull()
            decoded = window.timeline.frame_count() > 0
            if previewed and decoded:
                break
            await asyncio.sleep(0.05)
        window.timeline.seek(window.timeline.frame_count() // 2)
        await asyncio.sleep(0.3)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(path)):
            raise RuntimeError(f"could not write {path}")
        print(f"screenshot saved to {path} ({window.width()}x{window.height()})")
    except Exception as exc:  # noqa: BLE001 - one line on stderr, exit status 1
        log.exception("screenshot failed")
        print(f"shotsketch: the screenshot failed: {exc}", file=sys.stderr)
        result["code"] = 1
