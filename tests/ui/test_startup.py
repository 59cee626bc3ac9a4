"""Loading the model right after start keeps the window responsive (fresh process: cold imports).

No timing here (bench/ui_stall.py measures the stalls): the test checks what keeps the window free
while the model loads. The engine is made and loaded on the GPU worker, never on the UI thread; the
library is not written on the UI thread; and the big engine packages (torch, transformers,
diffusers' models and pipelines) were imported before the window took input, as the app does
(ui/app.py _import_engine): imported later on the worker, they hold Python's lock for long
stretches and freeze the window."""

import json
import os
import subprocess
import sys

SCRIPT = r'''
import asyncio, importlib.abc, json, sys, threading
import qasync
from PySide6.QtCore import QThread, QTimer
from shotsketch.ui.app import _import_engine, make_application
app = make_application()
loop = qasync.QEventLoop(app); asyncio.set_event_loop(loop)
_import_engine()  # as run_app does, before the window takes input
import shotsketch.ui.main_window as main_window
from shotsketch.core.library import Library
from shotsketch.engine.generator import Generator

calls = []  # [what, thread name, on the UI thread] from the moment the model is asked for
recording = threading.Event()

def note(what):
    if recording.is_set():
        ui = QThread.currentThread() == app.thread() or threading.current_thread() is threading.main_thread()
        calls.append([what, threading.current_thread().name, ui])

def recorded(what, fn):
    def call(*args, **kwargs):
        note(what)
        return fn(*args, **kwargs)
    return call

class ImportLog(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # asked only for modules not imported yet
        note("import " + name)
        return None

Library._write = recorded("library write", Library._write)
Generator.load = recorded("engine load", Generator.load)
make_factory = main_window.generator_factory
main_window.generator_factory = lambda *a, **k: recorded("engine factory", make_factory(*a, **k))
w = main_window.MainWindow(demo=True, show_error_dialogs=False); w.show()
def start():
    sys.meta_path.insert(0, ImportLog())
    recording.set()
    w.worker.preload()
def check():
    if w.worker.state.value in ("ready", "failed"):
        print("CALLS " + json.dumps({"state": w.worker.state.value, "calls": calls}), flush=True)
        w.shutdown(); app.quit()
    else:
        QTimer.singleShot(50, check)
QTimer.singleShot(200, start)
QTimer.singleShot(300, check)
with loop:
    loop.run_forever()
'''

BIG_PACKAGES = ("torch", "transformers", "diffusers.models", "diffusers.pipelines")


def test_loading_the_model_after_start_keeps_its_work_off_the_ui_thread(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for name in ("DATA", "CONFIG", "CACHE", "LOG"):
        env[f"SHOTSKETCH_{name}_DIR"] = str(tmp_path / name.lower())
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("CALLS ")), None)
    assert line is not None, out.stdout + out.stderr
    result = json.loads(line.removeprefix("CALLS "))
    assert result["state"] == "ready"
    calls = result["calls"]
    assert {"engine factory", "engine load"} <= {what for what, _thread, _ui in calls}
    on_ui = [(what, thread) for what, thread, ui in calls if ui]
    assert on_ui == [], f"ran on the UI thread while the model loaded: {on_ui}"
    late = [what for what, _thread, _ui in calls
            if what.startswith("import ") and what.removeprefix("import ").startswith(BIG_PACKAGES)]
    assert late == [], f"imported while the model loaded (import them before the window takes input): {late}"
