"""Waiting for new events: a poll interval, cut short by a save in this process."""

from __future__ import annotations

import asyncio
import contextlib


class Doorbell:
    """Rung from any thread after a save: a waiting loop wakes now, not at its next poll."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def ring(self) -> None:
        loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def wait(self, stop: asyncio.Event, timeout_s: float) -> None:
        """Return when rung, when `stop` is set, or after `timeout_s`."""
        if self._event is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
        rung = asyncio.ensure_future(self._event.wait())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                {rung, stopped}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            rung.cancel()
            stopped.cancel()
            self._event.clear()
