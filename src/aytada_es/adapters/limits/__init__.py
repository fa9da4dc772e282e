"""Provider limits held in the event store's database, so every stage worker shares them.

A call of a limited provider first takes a slot: it waits until fewer than the provider's
`concurrency` calls are in flight, fewer than `per_minute` were granted in the last 60 s, and no
429 paused the provider; then it holds a lease until it ends. Leases expire unless renewed,
so a crashed process's slots come back after `lease_s`.

Waiters are served by start-time fair queueing over owners: a waiter's tag is its owner's
virtual time (calls served divided by the owner's weight), never below the tag last granted
(an owner that was idle earns no credit); the lowest tag goes first, ties by arrival. One
owner's waiters keep their order. All of it lives in four tables; a waiting process looks
again every `poll_s`, and at once when a call of its own ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..sql import SQLStore
from .slots import LEASE_S, WINDOW_S, Limit, NoLimit, SlotTables, Ticket

__all__ = ["Limit", "LimitCounts", "NoLimit", "ProviderLimits"]

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_S = 0.05


@dataclass
class LimitCounts:
    """What this process's calls are doing, per provider, for the metrics."""

    in_flight: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)
    slow_downs: dict[str, int] = field(default_factory=dict)

    def add(self, counts: dict[str, int], provider: str, n: int) -> None:
        counts[provider] = counts.get(provider, 0) + n


class ProviderLimits:
    """The gate in front of limited providers, shared through the database by every process."""

    def __init__(
        self,
        store: SQLStore,
        limits: Mapping[str, Limit],
        *,
        weights: Mapping[str, float] | None = None,
        poll_s: float = POLL_S,
        lease_s: float = LEASE_S,
        window_s: float = WINDOW_S,
        observe_wait: Callable[[str, float], None] | None = None,
    ) -> None:
        self.store = store
        self.limits = dict(limits)
        self.weights = dict(weights or {})
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.counts = LimitCounts()
        self._observe_wait = observe_wait
        self._calls: dict[str, Ticket] = {}
        self._passing: asyncio.Lock | None = None
        self._serial: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._last_pass = 0.0
        self._renewer: asyncio.Task[None] | None = None
        self.tables = SlotTables(store, self.limit, self.weight, lease_s=lease_s, window_s=window_s)

    def limit(self, provider: str) -> Limit:
        """The limits of a key; `ffmpeg@host` (one machine's) has those of `ffmpeg`."""
        return self.limits.get(provider.partition("@")[0]) or NoLimit()

    def weight(self, owner: str) -> float:
        return self.weights.get(owner, 1.0)

    def slot(self, provider: str, owner: str) -> AbstractAsyncContextManager[None]:
        """Wait until a call of `provider` may start for `owner`; hold its slot until exit."""
        return self._slot(provider, owner)

    async def slow_down(self, provider: str, seconds: float) -> None:
        """Pause every caller of `provider`, in every process, for `seconds` (a Retry-After)."""
        if seconds <= 0:
            return
        self.counts.add(self.counts.slow_downs, provider, 1)
        await self._db(self.tables.pause, provider, time.time() + seconds)

    async def paused_until(self, provider: str) -> float:
        """When the provider's pause ends (wall-clock seconds; in the past when not paused)."""
        return await asyncio.to_thread(self.tables.paused_until, provider)

    async def aclose(self) -> None:
        """Stop renewing leases (calls still held keep theirs until they expire)."""
        task, self._renewer = self._renewer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- a slot ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self, provider: str, owner: str) -> AsyncIterator[None]:
        limit = self.limit(provider)
        if not (limit.concurrency or limit.per_minute):
            began = time.monotonic()
            await self._unpaused(provider)
            if self._observe_wait is not None:
                self._observe_wait(provider, time.monotonic() - began)
            self.counts.add(self.counts.in_flight, provider, 1)
            try:
                yield
            finally:
                self.counts.add(self.counts.in_flight, provider, -1)
            return
        call = Ticket(uuid.uuid4().hex, provider, owner)
        began = time.monotonic()
        self.counts.add(self.counts.waiting, provider, 1)
        try:
            self._calls[call.id] = call
            self._renewing()
            granted = await self._db(self.tables.enqueue, call)
            self._resolve(granted)
            await self._until_granted(call)
        except BaseException:
            self.counts.add(self.counts.waiting, provider, -1)
            await self._forget(call)
            raise
        self.counts.add(self.counts.waiting, provider, -1)
        if self._observe_wait is not None:
            self._observe_wait(provider, time.monotonic() - began)
        self.counts.add(self.counts.in_flight, provider, 1)
        try:
            yield
        finally:
            self.counts.add(self.counts.in_flight, provider, -1)
            await self._forget(call)

    async def _unpaused(self, provider: str) -> None:
        """Return once the provider is not paused (a pause may be extended meanwhile)."""
        left = await self.paused_until(provider) - time.time()
        while left > 0:
            await asyncio.sleep(min(left, 1.0))
            left = await self.paused_until(provider) - time.time()

    async def _until_granted(self, call: Ticket) -> None:
        loop = asyncio.get_running_loop()
        if self._passing is None or self._wake is None:
            self._passing, self._wake = asyncio.Lock(), asyncio.Event()
        while not call.granted:
            wake = self._wake
            async with self._passing:
                if call.granted:
                    return
                if loop.time() - self._last_pass >= self.poll_s * 0.9:
                    self._resolve(await self._db(self.tables.grant_waiting, waiting=True))
                    self._last_pass = loop.time()
            if not call.granted:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await wake.wait()

    async def _forget(self, call: Ticket) -> None:
        """The call ended (or gave up waiting): free its slot and hand it on.

        A failure here must not fail a call that was made (it would be paid for again): the
        slot then comes back when its lease runs out.
        """
        self._calls.pop(call.id, None)
        # Shielded: a second cancel must not leave the slot taken until its lease runs out.
        task = asyncio.ensure_future(self._db(self.tables.release, call))
        try:
            granted = await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            raise
        except Exception:
            log.warning(
                "could not free a slot of %s; it comes back within %.0f s",
                call.provider,
                self.lease_s,
                exc_info=True,
            )
            return
        self._resolve(granted)

    def _resolve(self, granted: Iterable[str]) -> None:
        """Mark this process's calls that were granted, and wake their waiters."""
        woke = False
        for call_id in granted:
            call = self._calls.get(call_id)
            if call is not None and not call.granted:
                call.granted = woke = True
        if woke and self._wake is not None:
            self._wake.set()
            self._wake = asyncio.Event()

    def _renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(
                self._renew(), name="provider-limits-renewal"
            )

    async def _renew(self) -> None:
        """Push the expiry of this process's calls forward while it has any."""
        while self._calls:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self._db(self.tables.extend, list(self._calls.values()))
            except Exception:  # the database is away: try again, the leases have time left
                log.warning("could not renew the provider slots of this process", exc_info=True)

    async def _db(self, fn: Callable[..., T], *args: Any, waiting: bool = False) -> T:
        """Blocking database work, off the event loop and one at a time in this process (so a
        pass never sees a call half-queued or half-released); a cancel waits for it to finish.

        `waiting`: also pass the calls of this process that wait, as they are when it starts.
        """
        if self._serial is None:
            self._serial = asyncio.Lock()
        async with self._serial:
            if waiting:
                args = (*args, [c for c in self._calls.values() if c.queued and not c.granted])
            task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await task
                raise
