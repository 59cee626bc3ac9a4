"""The window's longest stall while the model loads and while a demo take is generated through the queue.

    QT_QPA_PLATFORM=offscreen python bench/ui_stall.py                 # 448x256, 17 frames, 4 steps
    QT_QPA_PLATFORM=offscreen python bench/ui_stall.py --steps 8 --frames 33

A 1 ms timer on the UI thread; the longest gap between two of its ticks is the longest time the
window could not answer. Two phases: loading the demo model right after the window opens (the
engine's packages are imported first, as the app does), then one take queued with Generate, until
it is saved and shown. Prints the figures; asserts nothing (the tests check what keeps the window
free, by thread: tests/ui/test_app.py, tests/ui/test_startup.py). The settings, library and media
go to a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=448)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--steps", type=int, default=4)
    return parser.parse_args()


def use_scratch_folders(base: Path) -> None:
    for name in ("DATA", "CONFIG", "CACHE", "LOG"):
        os.environ[f"SHOTSKETCH_{name}_DIR"] = str(base / name.lower())


def main() -> int:
    args = parse_args()
    base = Path(tempfile.mkdtemp(prefix="shotsketch-ui-stall-"))
    use_scratch_folders(base)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "desktop"))

    import qasync
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    from shotsketch.ui.app import _import_engine, make_application

    app = make_application()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    _import_engine()  # as run_app does, before the window takes input
    from shotsketch.app.shot import ShotSettings
    from shotsketch.ui.main_window import MainWindow
    from shotsketch.ui.worker import generator_factory

    window = MainWindow(engine_factory=generator_factory("demo", device="cpu"), demo=True, show_error_dialogs=False)
    window.show()

    clock = QElapsedTimer()
    meter = {"last": 0, "longest": 0, "ticks": 0}

    def tick() -> None:
        now = clock.elapsed()
        meter["longest"] = max(meter["longest"], now - meter["last"])
        meter["last"] = now
        meter["ticks"] += 1

    def restart_meter() -> None:
        clock.start()
        meter.update(last=0, longest=0, ticks=0)

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(1)
    timer.timeout.connect(tick)
    results: dict[str, tuple[int, int, float]] = {}
    exit_code = {"code": 0}

    def finish_phase(name: str) -> None:
        results[name] = (meter["longest"], meter["ticks"], clock.elapsed() / 1000)

    def load() -> None:
        restart_meter()
        timer.start()
        window.worker.preload()
        QTimer.singleShot(50, wait_for_model)

    def wait_for_model() -> None:
        state = window.worker.state.value
        if state == "failed":
            print("the demo model failed to load", file=sys.stderr)
            exit_code["code"] = 1
            app.quit()
        elif state != "ready":
            QTimer.singleShot(50, wait_for_model)
        else:
            finish_phase("model load after start")
            generate()

    def generate() -> None:
        window.shot.set_settings(ShotSettings(args.width, args.height, args.frames, args.steps, 5.0, 3))
        restart_meter()
        window.takeSaved.connect(lambda _take: window.timeline.loaded.connect(done))
        window.generate(1)

    def done() -> None:
        timer.stop()
        finish_phase(f"generate through the queue ({args.width}x{args.height}, {args.frames} frames, {args.steps} steps)")
        app.quit()

    QTimer.singleShot(200, load)
    with loop:
        loop.run_forever()
    window.shutdown()
    for name, (longest, ticks, seconds) in results.items():
        print(f"{name}: longest UI stall {longest} ms over {ticks} ticks in {seconds:.1f} s")
    return exit_code["code"]


if __name__ == "__main__":
    raise SystemExit(main())
