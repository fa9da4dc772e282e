"""Waiting until read models have applied a position of the log: reading one's own writes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Collection

from .._waiting import in_thread, wait_or_timeout

Positions = Callable[[], dict[str, int]]


class AppliedPositions:
    """Where each read model stands, and a wait until some of them reach a position.

    The runner of this process calls `advanced()` after each batch it commits, which wakes
    every wait at once. Where another process applies the read models (`worker web`), nothing
    here is told: the waits read the positions again every `poll_s` instead.
    """

    def __init__(self, positions: Positions, *, poll_s: float = 0.05) -> None:
        self.positions = positions
        self.poll_s = poll_s
        self._waits: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def advanced(self) -> None:
        """The read models moved on (called from any thread): every wait looks again now."""
        with self._lock:
            waits = list(self._waits)
        for loop, woken in waits:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(woken.set)

    def reached(self, position: int, names: Collection[str]) -> bool:
        """Whether every named read model has applied `position` (blocking: one query)."""
        applied = self.positions()
        return all(applied.get(name, 0) >= position for name in names)

    async def reach(
        self, position: int, names: Collection[str], timeout_s: float, poll_s: float | None = None
    ) -> bool:
        """Wait until the named read models have applied `position`; False after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        woken = asyncio.Event()
        wait = (loop, woken)
        with self._lock:  # before the first look, so that no advance goes unseen
            self._waits.add(wait)
        try:
            while True:
                woken.clear()
                if await in_thread(self.reached, position, names):
                    return True
                left = deadline - loop.time()
                if left <= 0:
                    return False
                await wait_or_timeout(woken, min(poll_s or self.poll_s, left))
        finally:
            with self._lock:
                self._waits.discard(wait)
