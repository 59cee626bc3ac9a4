"""The fault suite: bad input, kill -9, races and a full disk. ``SHOTSKETCH_FAULTS_LONG=1`` runs the
long version (more fuzz examples, more kills and races); the default keeps CI to a few minutes."""

from __future__ import annotations

import os

LONG = os.environ.get("SHOTSKETCH_FAULTS_LONG", "") not in ("", "0")


def rounds(short: int, long: int) -> int:
    """How many times a kill or race trial runs: ``short`` in CI, ``long`` behind the flag."""
    return long if LONG else short


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
