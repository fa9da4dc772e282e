"""Waiting for new events: a poll interval, cut short by a save in this process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def wait_or_timeout(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until `event` is set, at most `timeout_s`; a cancel always gets through.

    Python 3.11's `asyncio.wait_for` loses a cancel that lands as its awaitable finishes,
    which left a cancelled relay waiting forever; `asyncio.timeout` does not.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking work in a thread; a cancel waits for the thread to end before it goes on.

    A cancelled `asyncio.to_thread` leaves its thread running: a loop stopped that way could
    still be querying the store when the caller closes it, and closing an SQLite connection
    in use by another thread crashes the process.
    """
    work = asyncio.ensure_future(asyncio.to_thread(functools.partial(fn, *args, **kwargs)))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise


class Doorbell:
    """Rung from any thread after a save: a waiting loop wakes now, not at its next poll.

    Under load, wake-ups are spaced by as long as the last batch took (at most
    `max_gap_s`), so each finds a batch worth its transaction rather than one save's
    events; when idle a ring is answered at once.
    """

    def __init__(self, max_gap_s: float = 0.02) -> None:
        self.max_gap_s = max_gap_s
        self.busy_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._last = 0.0
        # Rung before the first `wait` made the event: that wait returns at once.
        self._early = False

    def ring(self) -> None:
        self._early = True  # first: a `wait` binding meanwhile sees it, or is bound below
        loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def worked(self, seconds: float) -> None:
        """Tell how long the last batch took."""
        self.busy_s = seconds

    async def wait(self, stop: asyncio.Event, timeout_s: float) -> bool:
        """Return when rung, when `stop` is set, or after `timeout_s`; whether it was rung."""
        if self._event is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
        if self._early:  # rung while unbound (a ring since is also sent to the event)
            self._early = False
            self._event.set()
        rung = asyncio.ensure_future(self._event.wait())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                {rung, stopped}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            rung.cancel()
            stopped.cancel()
        loop = asyncio.get_running_loop()
        gap = min(self.busy_s, self.max_gap_s) - (loop.time() - self._last)
        if gap > 0 and not stop.is_set():
            await asyncio.sleep(gap)
        rang = self._event.is_set()
        self._event.clear()
        self._early = False  # a ring from here on also reaches the event, set again later
        self._last = loop.time()
        return rang
