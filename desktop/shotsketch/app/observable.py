"""Change events without Qt: one :class:`Event` per field, fired only on a real change.

An observer connects a callable; a bound method is held weakly (a closed view that forgot to
disconnect is simply dropped), a plain function or lambda strongly. ``connect`` returns a function
that disconnects; views keep those and call them all when they are given another model
(:class:`Subscriptions`). Events are emitted on the thread that changed the model: the app layer
changes its models on the window's main thread only (background work hands results back first).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Callback = Callable[[Any], None]


class Event(Generic[T]):
    """One kind of change (e.g. "the prompt changed"), carrying the new value."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[[], Callback | None]] = []
        self._blocked = 0

    def connect(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Call ``callback(value)`` on each emit; returns the function that disconnects it."""
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            ref: Callable[[], Callback | None] = weakref.WeakMethod(callback)  # type: ignore[arg-type]
        else:
            ref = lambda cb=callback: cb  # noqa: E731 - a strong reference for plain functions
        self._callbacks.append(ref)
        return lambda: self._remove(ref)

    def disconnect(self, callback: Callable[[T], None]) -> None:
        """Stop calling ``callback`` (no error when it was not connected)."""
        self._callbacks = [r for r in self._callbacks if r() not in (None, callback)]

    def _remove(self, ref: Callable[[], Callback | None]) -> None:
        self._callbacks = [r for r in self._callbacks if r is not ref]

    def emit(self, value: T) -> None:
        """Call every live observer with ``value``; one that raises is logged and the rest still run."""
        if self._blocked:
            return
        for ref in list(self._callbacks):
            callback = ref()
            if callback is None:
                continue
            try:
                callback(value)
            except Exception:  # noqa: BLE001 - one broken view must not stop the others
                log.exception("an observer of %s failed", self.name)
        self._callbacks = [r for r in self._callbacks if r() is not None]

    @property
    def observer_count(self) -> int:
        return sum(1 for r in self._callbacks if r() is not None)

    @contextmanager
    def blocked(self) -> Iterator[None]:
        """No emits inside the block."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1


class Subscriptions:
    """The disconnect functions a view collected; :meth:`clear` disconnects them all (call it
    before binding a view to another model, and when the view closes)."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def add(self, event: Event[T], callback: Callable[[T], None]) -> None:
        self._undo.append(event.connect(callback))

    def clear(self) -> None:
        undo, self._undo = self._undo, []
        for disconnect in undo:
            disconnect()

    def __len__(self) -> int:
        return len(self._undo)


__all__ = ["Event", "Subscriptions"]
