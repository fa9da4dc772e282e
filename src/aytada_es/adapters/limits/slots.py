"""The limits' tables and what is done in them, each in one transaction (blocking: run these
off the event loop).

Every transaction that writes calls first takes the rows of their providers in
`aytada_limit_providers`, in order (`FOR UPDATE` on PostgreSQL; SQLite has one writer), so
processes granting, releasing and renewing never pass each other or deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..sql import SQLStore, Transaction

WINDOW_S = 60.0
LEASE_S = 30.0

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
class Ticket:
    """One call of a process in the queue, waiting for its slot or holding it."""

    id: str
    provider: str
    owner: str
    queued: bool = False  # its row was written
    granted: bool = False


class SlotTables:
    """The calls waiting and in flight, the owners' virtual times, every provider's pause."""

    def __init__(
        self,
        store: SQLStore,
        limit: Callable[[str], Limit],
        weight: Callable[[str], float],
        *,
        lease_s: float = LEASE_S,
        window_s: float = WINDOW_S,
    ) -> None:
        self.store = store
        self.limit = limit
        self.weight = weight
        self.lease_s = lease_s
        self.window_s = window_s  # of `per_minute`: a minute, but for tests
        store.create(DDL)

    def paused_until(self, provider: str) -> float:
        """When the provider's pause ends (wall-clock seconds; in the past when not paused)."""
        rows = self.store.query(
            "SELECT paused_until FROM {aytada_limit_providers} WHERE provider = ?", (provider,)
        )
        return float(rows[0]["paused_until"]) if rows else 0.0

    def enqueue(self, call: Ticket) -> list[str]:
        """Queue a call, then grant what may start now (perhaps it); the ids granted."""
        now = time.time()
        with self.store.transaction() as tx:
            vtime, paused_until = self._lock(tx, call.provider)
            self._queue(tx, call, vtime, now)
            granted = self._grant(tx, call.provider, now, paused_until)
        call.queued = True
        return granted

    def _queue(self, tx: Transaction, call: Ticket, vtime: float, now: float) -> None:
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

    def grant_waiting(self, waiting: list[Ticket]) -> list[str]:
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

    def release(self, call: Ticket) -> list[str]:
        """End a call (or its wait) and hand its slot on; the ids granted."""
        now = time.time()
        with self.store.transaction() as tx:
            _, paused_until = self._lock(tx, call.provider)
            tx.execute("DELETE FROM {aytada_limit_calls} WHERE id = ?", (call.id,))
            return self._grant(tx, call.provider, now, paused_until)

    def _granted(self, tx: Transaction, waiting: list[Ticket]) -> list[str]:
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

    def extend(self, calls: list[Ticket]) -> None:
        """Push the leases of these calls `lease_s` ahead."""
        expires = time.time() + self.lease_s
        with self.store.transaction() as tx:
            # Every writer of calls takes their providers' rows first, in order: no deadlocks.
            for provider in sorted({c.provider for c in calls}):
                self._lock(tx, provider)
            tx.executemany(
                "UPDATE {aytada_limit_calls} SET expires_at = ? WHERE id = ?",
                [(expires, c.id) for c in calls],
            )

    def pause(self, provider: str, until: float) -> None:
        """Start nothing of the provider before `until` (a later pause wins)."""
        with self.store.transaction() as tx:
            self._lock(tx, provider)
            tx.execute(
                "UPDATE {aytada_limit_providers} SET paused_until = ?"
                " WHERE provider = ? AND paused_until < ?",
                (until, provider, until),
            )
