"""The fault suite: bad input, kill -9, races and a full disk. ``SHOTSKETCH_FAULTS_LONG=1`` runs the
long version (more fuzz examples, more kills and races); the default keeps CI to a few minutes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

LONG = os.environ.get("SHOTSKETCH_FAULTS_LONG", "") not in ("", "0")


def rounds(short: int, long: int) -> int:
    """How many times a kill or race trial runs: ``short`` in CI, ``long`` behind the flag."""
    return long if LONG else short


@pytest.fixture
def no_generation(monkeypatch):
    """``generate`` stops where the work would start: a run that gets there passed every check at
    the door. The list holds the requests that got there."""
    import shotsketch.cli.generate as generate

    started: list[tuple] = []
    monkeypatch.setattr(generate, "generate_to_file", lambda *a, **k: started.append(a) or 0)
    return started


# What the suite tried, by kind; written as JSON to $SHOTSKETCH_FAULTS_REPORT at the end of the run
# (the README's reliability table is filled from the long run's report).
COUNTS: dict[str, int] = {}


def count(kind: str, n: int = 1) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + n


def pytest_sessionfinish(session, exitstatus):  # noqa: ANN001
    import json

    report = os.environ.get("SHOTSKETCH_FAULTS_REPORT")
    if report and COUNTS:
        with open(report, "w", encoding="utf-8") as fh:
            json.dump({"long": LONG, "exit_status": int(exitstatus), "failed": session.testsfailed,
                       **dict(sorted(COUNTS.items()))}, fh, indent=2)


@pytest.fixture
def small_disk(tmp_path):
    """A real small file system (a tmpfs mounted here; root only): ``small_disk(size)`` gives its
    folder. Skips where mounting is refused."""
    import contextlib
    import subprocess

    mounted: list[Path] = []

    def mount(size: str = "512k") -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
