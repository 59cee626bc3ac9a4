"""Application-layer tests: no Qt, no display, no GPU."""

from __future__ import annotations

import pytest

from shotsketch.core.library import Library


@pytest.fixture
def library(tmp_path):
    with Library.open(tmp_path / "library.sqlite3") as lib:
        yield lib


class FakeTimers:
    """A ``call_later`` that runs nothing by itself: the test fires what is due with :meth:`run_due`."""

    def __init__(self) -> None:
        self.scheduled: list[list] = []  # [delay, callback, cancelled]

    def __call__(self, delay, callback):
        entry = [delay, callback, False]
        self.scheduled.append(entry)

        class _Handle:
            def cancel(self_inner) -> None:
                entry[2] = True

        return _Handle()

    def live(self) -> int:
        return sum(1 for e in self.scheduled if not e[2])

    def run_due(self) -> int:
        due = [e for e in self.scheduled if not e[2]]
        self.scheduled = []
        for e in due:
            e[1]()
        return len(due)


@pytest.fixture
def timers():
    return FakeTimers()
