"""The window stays responsive while the model loads right after start (fresh process: cold imports)."""

import os
import subprocess
import sys

SCRIPT = r'''
import asyncio, sys, time
import qasync
from PySide6.QtCore import QTimer
from shotsketch.ui.app import _import_engine, make_application
app = make_application()
loop = qasync.QEventLoop(app); asyncio.set_event_loop(loop)
_import_engine()  # as run_app does, before the window takes input
from shotsketch.ui.main_window import MainWindow
w = MainWindow(demo=True, show_error_dialogs=False); w.show()
state = {"last": time.perf_counter(), "max": 0.0, "ticks": 0}
def tick():
    now = time.perf_counter(); state["max"] = max(state["max"], now - state["last"]); state["last"] = now
    state["ticks"] += 1
timer = QTimer(); timer.setInterval(1); timer.timeout.connect(tick)
def start():
    state["last"] = time.perf_counter(); timer.start(); w.worker.preload()
def check():
    if w.worker.state.value in ("ready", "failed"):
        print(f"STALL {state['max'] * 1000:.1f} {state['ticks']} {w.worker.state.value}", flush=True)
        w.shutdown(); app.quit()
    else:
        QTimer.singleShot(50, check)
QTimer.singleShot(200, start)
QTimer.singleShot(300, check)
with loop:
    loop.run_forever()
'''


def test_loading_the_model_after_start_does_not_stall_the_window(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for name in ("DATA", "CONFIG", "CACHE", "LOG"):
        env[f"SHOTSKETCH_{name}_DIR"] = str(tmp_path / name.lower())
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("STALL")), None)
    assert line is not None, out.stdout + out.stderr
    _, ms, ticks, state = line.split()
    assert state == "ready"
    assert int(ticks) > 10
    assert float(ms) < 100, f"the window froze for {ms} ms while the model loaded"
