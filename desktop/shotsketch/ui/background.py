"""The one way the window runs work off its main thread (GPU work stays on the GPU worker).

:class:`Background` owns one writer thread (library writes, encodes, thumbnails: work that must
not overlap) and the coroutines that await it on the qasync loop the app already runs. Every
coroutine goes through :meth:`Background.spawn`, which turns an exception into one sentence for
the person (``report``) with the details in the log; nothing runs unwrapped. Results come back to
the main thread, where the models are changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Report = Callable[[str, str], None]  # (sentence for the person, detail for the log)


class Background:
    """One writer thread plus the window's coroutines; see the module docstring."""

    def __init__(self, report: Report, name: str = "shotsketch-io") -> None:
        self._report = report
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closed = False

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the writer thread, awaited on the loop (the main thread stays free)."""
        loop = asyncio.get_event_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    def spawn(self, coro: Coroutine[Any, Any, Any], failure: str) -> asyncio.Future[Any] | None:
        """Run a coroutine on the loop; an exception in it is reported as ``failure`` + its message."""
        if self._closed:
            coro.close()
            return None

        async def reported() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one sentence for the person, the rest in the log
                log.exception("%s", failure)
                self._report(f"{failure}: {exc}", repr(exc))
                return None

        task = asyncio.ensure_future(reported())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def write(self, fn: Callable[[], Any]) -> None:
        """Fire and forget on the writer thread (autosave, settings); a failure is logged."""
        if self._closed:
            fn()  # closing: write on this thread rather than lose it
            return
        future = self._pool.submit(fn)
        future.add_done_callback(_log_failure)

    def shutdown(self) -> None:
        """Cancel the coroutines and finish the writes already queued."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        self._pool.shutdown(wait=True)


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("background write failed: %s", exc, exc_info=exc)


__all__ = ["Background"]
