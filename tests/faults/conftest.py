"""The fault suite: bad input, kill -9, races and a full disk. ``SHOTSKETCH_FAULTS_LONG=1`` runs the
long version (more fuzz examples, more kills and races); the default keeps CI to a few minutes."""

from __future__ import annotations

import os

LONG = os.environ.get("SHOTSKETCH_FAULTS_LONG", "") not in ("", "0")


def rounds(short: int, long: int) -> int:
    """How many times a kill or race trial runs: ``short`` in CI, ``long`` behind the flag."""
    return long if LONG else short
