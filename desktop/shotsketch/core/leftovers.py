"""Files the app names while it works (a clip being encoded, a library being created, a copy on
its way into the media folder, a screenshot's temporary folder) carry the id of the process that
owns them in their name. A kill leaves them behind; the next start removes the ones whose owner is
no longer running, and ``shotsketch doctor`` counts them. Age alone never decides: a running
command's file may be hours old."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

_OWNED = re.compile(r"^\..+\.(?P<kind>[a-z]+)-pid(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>(\.[A-Za-z0-9]+)*)$")


def owned_name(stem: str, kind: str, suffix: str = "", tag: str | None = None) -> str:
    """A hidden name for a file this process is making: ``.<stem>.<kind>-pid<pid>-<tag><suffix>``."""
    stem = stem.lstrip(".")
    return f".{stem}.{kind}-pid{os.getpid()}-{tag or uuid.uuid4().hex[:8]}{suffix}"


def owner(name: str) -> int | None:
    """The process id a leftover's name records, or ``None`` for a name the app did not give."""
    match = _OWNED.match(name)
    return int(match["pid"]) if match else None


def claim_owner(path: Path) -> int | None:
    """The process id written in an output claim (core/atomic.py ``claim_output``), if readable."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(32).decode("ascii").strip()
        return int(text) if text.isdigit() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would end the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True


def stale(folder: Path) -> list[Path]:
    """The leftovers in ``folder`` (not below it) whose owning process is gone."""
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        pid = owner(entry.name)
        if pid is None and entry.name.startswith(".") and entry.name.endswith(".claim") and entry.is_file():
            pid = claim_owner(entry) or 0  # an output claim of a killed run (or an unreadable one)
        if pid is not None and not is_running(pid):
            found.append(entry)
    return sorted(found)


def clean(folder: Path) -> list[Path]:
    """Remove the stale leftovers in ``folder``; returns what was removed."""
    removed = []
    for entry in stale(folder):
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass  # cannot be removed now (read-only folder): counted again next time
    return removed


def create_file(folder: Path, stem: str, kind: str, suffix: str = "", mode: int = 0o666) -> Path:
    """A new empty file with an owned name in ``folder`` (never an existing one)."""
    while True:
        path = Path(folder) / owned_name(stem, kind, suffix)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode))
            return path
        except FileExistsError:
            continue


def create_folder(folder: Path, stem: str, kind: str, suffix: str = "") -> Path:
    """A new empty folder with an owned name in ``folder``."""
    while True:
        path = Path(folder) / owned_name(stem, kind, suffix)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
