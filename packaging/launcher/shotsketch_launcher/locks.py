"""Lock files: which one installs the engine for this OS, backend and Python.

A lock is ``<os>-<backend>[-fast-attention]-py<XY>.txt`` in ``packaging/locks/`` (made by
``python packaging/make_locks.py``): every package pinned, with the index lines it was resolved
against. Beside each lock, ``<lock>.downloads.json`` lists its large wheels (URL, sha256, size) so
that the launcher can fetch them itself with resumable range requests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from shotsketch_launcher.gpu import Backend

FAST_ATTENTION = "fast-attention"
# The Python versions locks are made for, preferred first (uv-managed 3.12, else a system one).
PYTHON_VERSIONS = ("3.12", "3.11", "3.13")
LOCK_NAME = re.compile(r"^(?P<os>linux|windows|macos)-(?P<backend>[a-z0-9]+)(?P<fast>-fast-attention)?"
                       r"-py(?P<py>3\d+)\.txt$")


class LockMissing(Exception):
    """No lock for what was asked; the message is one line a person can act on."""


@dataclass(frozen=True)
class Lock:
    path: Path
    os: str
    backend: Backend
    python: str  # "3.12"
    fast_attention: bool = False

    @property
    def downloads_path(self) -> Path:
        return self.path.with_name(self.path.name + ".downloads.json")

    def large_wheels(self) -> list[dict]:
        """The manifest's entries (url, filename, sha256, size); empty when there is none."""
        try:
            data = json.loads(self.downloads_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return []
        files = data.get("files", []) if isinstance(data, dict) else []
        return [f for f in files if isinstance(f, dict) and _valid_entry(f)]


def _valid_entry(entry: dict) -> bool:
    return (isinstance(entry.get("url"), str) and entry["url"].startswith("https://")
            and isinstance(entry.get("filename"), str) and "/" not in entry["filename"] and "\\" not in entry["filename"]
            and isinstance(entry.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) is not None)


def all_locks(folder: Path) -> list[Lock]:
    locks = []
    for path in sorted(folder.glob("*.txt")):
        match = LOCK_NAME.match(path.name)
        if not match:
            continue
        try:
            backend = Backend(match["backend"])
        except ValueError:
            continue
        python = f"{match['py'][0]}.{match['py'][1:]}"
        locks.append(Lock(path, match["os"], backend, python, bool(match["fast"])))
    return locks


def available_backends(folder: Path, os_name: str) -> list[Backend]:
    """Backends that have a lock for this OS, in the enum's order (fastest first)."""
    present = {lock.backend for lock in all_locks(folder) if lock.os == os_name}
    return [b for b in Backend if b in present]


def pythons_for(folder: Path, os_name: str, backend: Backend) -> list[str]:
    """Python versions with a lock for this OS and backend, preferred first."""
    present = {lock.python for lock in all_locks(folder) if lock.os == os_name and lock.backend == backend}
    return [v for v in PYTHON_VERSIONS if v in present] + sorted(present - set(PYTHON_VERSIONS))


def choose_lock(folder: Path, os_name: str, backend: Backend, python: str, fast_attention: bool = False) -> Lock:
    """The lock to install from; the fast-attention one where asked and made, else the plain one."""
    candidates = [lock for lock in all_locks(folder)
                  if lock.os == os_name and lock.backend == backend and lock.python == python]
    if fast_attention:
        for lock in candidates:
            if lock.fast_attention:
                return lock
    for lock in candidates:
        if not lock.fast_attention:
            return lock
    made = pythons_for(folder, os_name, backend)
    if not made:
        raise LockMissing(f"this installer has no engine for {backend.label} on {os_name}: "
                          "choose another in the list, or get the installer for your system")
    raise LockMissing(f"the engine for {backend.label} needs Python {' or '.join(made)} (found {python})")
