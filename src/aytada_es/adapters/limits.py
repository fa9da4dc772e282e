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
from typing import Any, Protocol, TypeVar

from .sql import SQLStore, Transaction

log = logging.getLogger(__name__)
T = TypeVar("T")
WINDOW_S = 60.0
LEASE_S = 30.0
POLL_S = 0.05

DDL = [
    "CREATE TABLE IF NOT EXISTS {aytada_limit_providers} ("
    " provider TEXT PRIMARY KEY,"
    " vtime DOUBLE PRECISION NOT NULL,"
    " paused_until DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {aytada_limit_owners} ("
    " provider TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " finish DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (provider, owner))",
    "CREATE TABLE IF NOT EXISTS {aytada_limit_calls} ("
    " id TEXT PRIMARY KEY,"
    " provider TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " tag DOUBLE PRECISION NOT NULL,"
    " arrived_at DOUBLE PRECISION NOT NULL,"
    " granted_at DOUBLE PRECISION,"
    " expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS aytada_limit_calls_order"
    " ON {aytada_limit_calls} (provider, granted_at, tag, arrived_at)",
    "CREATE TABLE IF NOT EXISTS {aytada_limit_grants} ("
    " provider TEXT NOT NULL,"
    " granted_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS aytada_limit_grants_time"
    " ON {aytada_limit_grants} (provider, granted_at)",
]


_UNLOCKED = "SELECT vtime, paused_until FROM {aytada_limit_providers} WHERE provider = ?"
_LOCKED = _UNLOCKED + " FOR UPDATE"


class Limit(Protocol):
    """A provider's limits; 0 means none."""

    @property
    def concurrency(self) -> int: ...

    @property
    def per_minute(self) -> int: ...


@dataclass(frozen=True)
class NoLimit:
    concurrency: int = 0
    per_minute: int = 0


@dataclass
class _Call:
    """One call of this process, waiting for its slot or holding it."""

    id: str
    provider: str
    owner: str
    queued: bool = False  # its row was written
    granted: bool = False


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
        self.window_s = window_s  # of `per_minute`: a minute, but for tests
        self.counts = LimitCounts()
        self._observe_wait = observe_wait
        self._calls: dict[str, _Call] = {}
        self._passing: asyncio.Lock | None = None
        self._serial: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._last_pass = 0.0
        self._renewer: asyncio.Task[None] | None = None
        store.create(DDL)

    def limit(self, provider: str) -> Limit:
        return self.limits.get(provider) or NoLimit()

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
        await self._db(self._pause, provider, time.time() + seconds)

    async def paused_until(self, provider: str) -> float:
        """When the provider's pause ends (wall-clock seconds; in the past when not paused)."""
        rows = await asyncio.to_thread(
            self.store.query,
            "SELECT paused_until FROM {aytada_limit_providers} WHERE provider = ?",
            (provider,),
        )
        return float(rows[0]["paused_until"]) if rows else 0.0

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
        call = _Call(uuid.uuid4().hex, provider, owner)
        began = time.monotonic()
        self.counts.add(self.counts.waiting, provider, 1)
        try:
            self._calls[call.id] = call
            self._renewing()
            granted = await self._db(self._enqueue, call)
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

    async def _until_granted(self, call: _Call) -> None:
        loop = asyncio.get_running_loop()
        if self._passing is None or self._wake is None:
            self._passing, self._wake = asyncio.Lock(), asyncio.Event()
        while not call.granted:
            wake = self._wake
            async with self._passing:
                if call.granted:
                    return
                if loop.time() - self._last_pass >= self.poll_s * 0.9:
                    self._resolve(await self._db(self._pass, waiting=True))
                    self._last_pass = loop.time()
            if not call.granted:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await wake.wait()

    async def _forget(self, call: _Call) -> None:
        """The call ended (or gave up waiting): free its slot and hand it on.

        A failure here must not fail a call that was made (it would be paid for again): the
        slot then comes back when its lease runs out.
        """
        self._calls.pop(call.id, None)
        # Shielded: a second cancel must not leave the slot taken until its lease runs out.
        task = asyncio.ensure_future(self._db(self._release, call, waiting=True))
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
            ids = list(self._calls)
            try:
                await self._db(self._extend, ids)
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

    # ---- in the database (blocking) ----------------------------------------------------

    def _enqueue(self, call: _Call) -> list[str]:
        now = time.time()
        with self.store.transaction() as tx:
            vtime, paused_until = self._lock(tx, call.provider)
            self._queue(tx, call, vtime, now)
            granted = self._grant(tx, call.provider, now, paused_until)
        call.queued = True
        return granted

    def _queue(self, tx: Transaction, call: _Call, vtime: float, now: float) -> None:
        """Add a waiter, tagged with its owner's virtual time (never behind the provider's)."""
        rows = tx.query(
            "SELECT finish FROM {aytada_limit_owners} WHERE provider = ? AND owner = ?",
            (call.provider, call.owner),
        )
        tag = max(vtime, float(rows[0]["finish"])) if rows else vtime
        tx.execute(
            "INSERT INTO {aytada_limit_owners} (provider, owner, finish) VALUES (?, ?, ?)"
            " ON CONFLICT (provider, owner) DO UPDATE SET finish = excluded.finish",
            (call.provider, call.owner, round(tag + 1 / self.weight(call.owner), 9)),
        )
        tx.execute(
            "INSERT INTO {aytada_limit_calls}"
            " (id, provider, owner, tag, arrived_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (call.id, call.provider, call.owner, tag, now, now + self.lease_s),
        )

    def _pass(self, waiting: list[_Call]) -> list[str]:
        """Grant what may start now, for every provider this process waits for; ours granted."""
        now = time.time()
        granted: list[str] = []
        with self.store.transaction() as tx:
            for provider in sorted({c.provider for c in waiting}):
                _, paused_until = self._lock(tx, provider)
                # Only here are expired calls cleared: a full limit is what makes calls wait.
                tx.execute(
                    "DELETE FROM {aytada_limit_calls} WHERE provider = ? AND expires_at < ?",
                    (provider, now),
                )
                granted += self._grant(tx, provider, now, paused_until)
            return granted + self._granted(tx, waiting)

    def _release(self, call: _Call, waiting: list[_Call]) -> list[str]:
        now = time.time()
        with self.store.transaction() as tx:
            _, paused_until = self._lock(tx, call.provider)
            tx.execute("DELETE FROM {aytada_limit_calls} WHERE id = ?", (call.id,))
            granted = self._grant(tx, call.provider, now, paused_until)
            return granted + self._granted(tx, [c for c in waiting if c.provider != call.provider])

    def _granted(self, tx: Transaction, waiting: list[_Call]) -> list[str]:
        """Which of these waiting calls another process granted meanwhile.

        A waiter whose row expired (this process stalled longer than a lease) queues again.
        """
        if not waiting:
            return []
        rows = {
            r["id"]: r for r in tx.rows_with("aytada_limit_calls", "id", [c.id for c in waiting])
        }
        for call in waiting:
            if call.id not in rows:
                vtime, _ = self._lock(tx, call.provider)
                self._queue(tx, call, vtime, time.time())
        return [call_id for call_id, row in rows.items() if row["granted_at"] is not None]

    def _lock(self, tx: Transaction, provider: str) -> tuple[float, float]:
        """The provider's row, locked until the transaction ends: (vtime, paused_until)."""
        select = _LOCKED if self.store.dialect == "postgres" else _UNLOCKED
        rows = tx.query(select, (provider,))
        if not rows:
            tx.execute(
                "INSERT INTO {aytada_limit_providers} (provider, vtime, paused_until)"
                " VALUES (?, 0, 0) ON CONFLICT (provider) DO NOTHING",
                (provider,),
            )
            rows = tx.query(select, (provider,))
        return float(rows[0]["vtime"]), float(rows[0]["paused_until"])

    def _grant(self, tx: Transaction, provider: str, now: float, paused_until: float) -> list[str]:
        """Turn the first waiters into leases while the limits allow; the ids granted."""
        if paused_until > now:
            return []
        limit = self.limit(provider)
        free = 1 << 30
        if limit.concurrency:
            held = tx.query(
                "SELECT COUNT(*) AS n FROM {aytada_limit_calls}"
                " WHERE provider = ? AND granted_at IS NOT NULL",
                (provider,),
            )[0]["n"]
            free = min(free, limit.concurrency - int(held))
        if limit.per_minute:
            tx.execute(
                "DELETE FROM {aytada_limit_grants} WHERE provider = ? AND granted_at <= ?",
                (provider, now - self.window_s),
            )
            recent = tx.query(
                "SELECT COUNT(*) AS n FROM {aytada_limit_grants} WHERE provider = ?", (provider,)
            )[0]["n"]
            free = min(free, limit.per_minute - int(recent))
        if free <= 0:
            return []
        heads = tx.query(
            "SELECT id, tag FROM {aytada_limit_calls}"
            " WHERE provider = ? AND granted_at IS NULL ORDER BY tag, arrived_at, id LIMIT ?",
            (provider, free),
        )
        if not heads:
            return []
        ids = [row["id"] for row in heads]
        tx.executemany(
            "UPDATE {aytada_limit_calls} SET granted_at = ?, expires_at = ? WHERE id = ?",
            [(now, now + self.lease_s, call_id) for call_id in ids],
        )
        if limit.per_minute:
            tx.executemany(
                "INSERT INTO {aytada_limit_grants} (provider, granted_at) VALUES (?, ?)",
                [(provider, now)] * len(ids),
            )
        vtime = max(float(row["tag"]) for row in heads)
        tx.execute(
            "UPDATE {aytada_limit_providers} SET vtime = ? WHERE provider = ? AND vtime < ?",
            (vtime, provider, vtime),
        )
        # An owner whose next tag is behind the virtual time would start there anyway.
        tx.execute(
            "DELETE FROM {aytada_limit_owners} WHERE provider = ? AND finish <= ?",
            (provider, vtime),
        )
        return ids

    def _extend(self, ids: list[str]) -> None:
        expires = time.time() + self.lease_s
        with self.store.transaction() as tx:
            tx.executemany(
                "UPDATE {aytada_limit_calls} SET expires_at = ? WHERE id = ?",
                [(expires, call_id) for call_id in ids],
            )

    def _pause(self, provider: str, until: float) -> None:
        with self.store.transaction() as tx:
            self._lock(tx, provider)
            tx.execute(
                "UPDATE {aytada_limit_providers} SET paused_until = ?"
                " WHERE provider = ? AND paused_until < ?",
                (until, provider, until),
            )
