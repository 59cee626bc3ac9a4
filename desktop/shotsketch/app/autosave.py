"""Autosave: an observer of the open shot that saves its editor state a moment after the last change.

Kept apart from the model (the model knows nothing of saving). A change schedules a save
``delay_s`` later; another change before then moves it (debounce). :meth:`Autosave.flush` saves
at once (before opening another shot, and on close). Scheduling goes through ``call_later``,
by default the running asyncio loop's (the window's qasync loop); the write itself goes through
``run`` (by default on the calling thread; the window passes its background writer).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from shotsketch.app.observable import Subscriptions
from shotsketch.app.shot import OpenShot
from shotsketch.core.library import Library, LibraryError

log = logging.getLogger(__name__)

AUTOSAVE_DELAY_S = 0.7


class Handle(Protocol):
    def cancel(self) -> None: ...


def _loop_call_later(delay: float, callback: Callable[[], None]) -> Handle:
    return asyncio.get_event_loop().call_later(delay, callback)


class Autosave:
    """Saves ``shot``'s state into ``library`` a moment after it changes (and its open shot id
    as the one to reopen at the next start)."""

    def __init__(
        self,
        shot: OpenShot,
        library: Library,
        *,
        delay_s: float = AUTOSAVE_DELAY_S,
        call_later: Callable[[float, Callable[[], None]], Handle] = _loop_call_later,
        run: Callable[[Callable[[], None]], Any] = lambda fn: fn(),
    ) -> None:
        self.shot = shot
        self.library = library
        self.delay_s = delay_s
        self._call_later = call_later
        self._run = run
        self._pending: Handle | None = None
        self._write_lock = threading.Lock()
        self._taken = 0  # how many states were taken from the model (each save's number)
        self._stored: dict[int, int] = {}  # shot id -> the number of the state the library holds
        self._subs = Subscriptions()
        self._subs.add(shot.events.changed, self._on_changed)
        self._subs.add(shot.events.opened, self._on_opened)
        self.saves = 0
        """How many times the state was written (for tests and the log)."""

    @property
    def pending(self) -> bool:
        """A save is scheduled and has not run yet."""
        return self._pending is not None

    def _on_changed(self, _field: str) -> None:
        if self.shot.shot_id is None:
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self._call_later(self.delay_s, self.flush)

    def _on_opened(self, _shot: OpenShot) -> None:
        # whoever opens another shot flushes first (AppSession.open_shot); a save still waiting
        # would only write the new shot's unchanged state: drop it.
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def flush(self, *, wait: bool = False) -> None:
        """Save now (a waiting save runs at once instead of later); ``wait``: on this thread,
        done when this returns (on close)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        shot_id = self.shot.shot_id
        if shot_id is None:
            return
        state = self.shot.state()
        self.saves += 1
        self._taken += 1
        number = self._taken
        if wait:
            self._write(shot_id, state, number)
        else:
            self._run(lambda: self._write(shot_id, state, number))

    def _write(self, shot_id: int, state: dict[str, Any], number: int) -> None:
        """Store a state unless a newer one of the same shot is stored already (a background save
        that waited behind a long encode must not overwrite what a later save wrote)."""
        with self._write_lock:
            if self._stored.get(shot_id, 0) > number:
                log.debug("shot %d: an older autosave skipped", shot_id)
                return
            try:
                self.library.save_shot_state(shot_id, state)
            except LibraryError as exc:
                log.error("could not autosave shot %d: %s", shot_id, exc)
                return
            self._stored[shot_id] = number

    def close(self) -> None:
        """Save the open shot (on this thread) and stop observing."""
        self.flush(wait=True)
        self._subs.clear()


__all__ = ["AUTOSAVE_DELAY_S", "Autosave"]
