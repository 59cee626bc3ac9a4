"""The launcher's entry: straight to the app when the engine is installed and current (no Qt is
imported on that path), else the window that installs or updates it.

    shotsketch [APP ARGUMENTS]            start the app (the engine is set up first if needed)
    shotsketch --engine-settings          Repair, switch backend, Update, remove the engine
    shotsketch --engine-status            one line: the engine that runs, its folder and size
    shotsketch --backend cpu --install-now --wheelhouse DIR    unattended install (offline bundle, tests)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from shotsketch_launcher.engine import EngineFolder, InstalledEngine, child_environment
from shotsketch_launcher.gpu import Backend, detect
from shotsketch_launcher.locks import all_locks
from shotsketch_launcher.payload import Payload

PROGRAM = "shotsketch"


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog=PROGRAM, add_help=False)
    parser.add_argument("--engine-settings", action="store_true")
    parser.add_argument("--engine-status", action="store_true")
    parser.add_argument("--remove-engine", action="store_true")
    parser.add_argument("--backend", choices=[b.value for b in Backend])
    parser.add_argument("--install-now", action="store_true")
    parser.add_argument("--wheelhouse", type=Path)
    parser.add_argument("--launcher-screenshot", type=Path)
    parser.add_argument("--launcher-help", action="store_true")
    parser.add_argument("--install-desktop-entry", action="store_true")
    args, rest = parser.parse_known_args(list(argv))
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return args, rest


def up_to_date(engine: InstalledEngine, payload: Payload) -> bool:
    """The running engine was built from the lock and app this installer carries."""
    for lock in all_locks(payload.locks):
        if lock.path.name == engine.lock:
            try:
                return payload.identity(lock) == engine.payload
            except OSError:
                return False
    return False


def start_app(folder: EngineFolder, engine: InstalledEngine, app_args: list[str]) -> None:
    """Replace the launcher by the app (POSIX), or start it and leave (Windows)."""
    python = folder.python_of(engine)
    command = [str(python), "-m", "shotsketch", *app_args]
    env = child_environment()
    if os.name == "nt":
        pythonw = python.with_name("pythonw.exe")
        if not app_args and pythonw.exists():
            command[0] = str(pythonw)
        subprocess.Popen(command, env=env, creationflags=getattr(subprocess, "DETACHED_PROCESS", 0))
        raise SystemExit(0)
    os.execve(command[0], command, env)


def main(argv: Sequence[str] | None = None) -> int:
    args, app_args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.launcher_help:
        print(__doc__)
        return 0
    if args.install_desktop_entry:
        return install_desktop_entry()
    folder = EngineFolder()
    payload = Payload.find()
    engine = folder.current()
    if args.engine_status:
        print(status_line(folder, engine, payload))
        return 0
    if args.remove_engine:
        folder.remove()
        print(f"{PROGRAM}: the engine was removed ({folder.root}); your library and models were not touched")
        return 0
    wheelhouse = args.wheelhouse or payload.wheelhouse
    wants_window = args.engine_settings or args.install_now
    if engine is not None and not wants_window and up_to_date(engine, payload):
        start_app(folder, engine, app_args)
        return 0
    mode = "settings" if args.engine_settings else ("install" if engine is None else "update")
    return open_window(folder, payload, mode, engine, app_args, wheelhouse, args)


def open_window(folder: EngineFolder, payload: Payload, mode: str, engine: InstalledEngine | None,
                app_args: list[str], wheelhouse: Path | None, args: argparse.Namespace) -> int:
    from shotsketch.qtcheck import window_problem

    problem = window_problem(PROGRAM)
    if problem:
        print(problem, file=sys.stderr)
        return 3
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"
            or sys.platform == "darwin" or os.environ.get("QT_QPA_PLATFORM")):
        print(f"{PROGRAM}: the video engine is not set up yet: start Shotsketch once from the desktop menu",
              file=sys.stderr)
        return 2
    from shotsketch_launcher.window import run_window

    proposal = detect(child_environment())
    backend = Backend(args.backend) if args.backend else (Backend(engine.backend) if engine and mode == "update" else None)
    return run_window(folder, payload, proposal, mode, lambda e: start_app(folder, e, app_args), wheelhouse,
                      backend, args.install_now, args.launcher_screenshot)


def install_desktop_entry() -> int:
    """For the .tar.gz: a menu entry pointing at this folder (the .deb installs its own)."""
    here = Path(sys.executable).resolve().parent
    template = here / "shotsketch.desktop"
    if not template.exists():
        print(f"{PROGRAM}: no shotsketch.desktop beside the launcher in {here}", file=sys.stderr)
        return 2
    text = template.read_text(encoding="utf-8")
    text = text.replace("Exec=shotsketch", f"Exec={here / 'shotsketch'}").replace("Icon=shotsketch",
                                                                                f"Icon={here / 'shotsketch.png'}")
    apps = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    temp = apps / ".shotsketch.desktop.tmp"
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, apps / "shotsketch.desktop")
    print(f"{PROGRAM}: menu entry written to {apps / 'shotsketch.desktop'}")
    return 0


def status_line(folder: EngineFolder, engine: InstalledEngine | None, payload: Payload) -> str:
    if engine is None:
        return f"{PROGRAM}: no engine installed (folder {folder.root})"
    state = "current" if up_to_date(engine, payload) else "an update is ready to install"
    return (f"{PROGRAM}: engine {engine.id}: {engine.describe()} ({state}); {folder.size_bytes() / 1e9:.2f} GB "
            f"in {folder.root}")

