"""The webhook endpoints users register and the outbox of their deliveries, on SQLite and
PostgreSQL (times are seconds since the epoch, so they compare as numbers)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from ..domain.errors import TooManyWebhooks
from .sql import Row, SQLStore, from_json, to_json

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
DDL = [
    "CREATE TABLE IF NOT EXISTS {aytada_webhook_endpoints} ("
    " id TEXT PRIMARY KEY,"
    " owner_id TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " events TEXT NOT NULL,"
    " secret TEXT NOT NULL,"
    " created_at DOUBLE PRECISION NOT NULL,"
    " deleted_at DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS aytada_webhook_endpoints_by_owner"
    " ON {aytada_webhook_endpoints} (owner_id, deleted_at)",
    "CREATE TABLE IF NOT EXISTS {aytada_webhook_deliveries} ("
    " webhook_id TEXT PRIMARY KEY,"
    " endpoint_id TEXT NOT NULL,"
    " event_id TEXT NOT NULL,"
    " event_type TEXT NOT NULL,"
    " project_id TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " next_attempt_at DOUBLE PRECISION,"
    " first_attempt_at DOUBLE PRECISION,"
    " lease_until DOUBLE PRECISION,"
    " last_status_code INTEGER,"
    " last_error TEXT,"
    " created_at DOUBLE PRECISION NOT NULL,"
    " updated_at DOUBLE PRECISION NOT NULL,"
    " delivered_at DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS aytada_webhook_deliveries_due"
    " ON {aytada_webhook_deliveries} (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS aytada_webhook_deliveries_by_endpoint"
    " ON {aytada_webhook_deliveries} (endpoint_id, created_at)",
]


class Webhooks:
    """Endpoints (soft-deleted) and deliveries (pending, then delivered, failed or cancelled)."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        store.create(DDL)

    def add_endpoint(self, endpoint: Row, *, limit: int) -> None:
        """Register an endpoint unless its owner already has `limit` of them."""
        with self.store.transaction() as tx:
            count = tx.query(
                "SELECT COUNT(*) AS n FROM {aytada_webhook_endpoints}"
                " WHERE owner_id = ? AND deleted_at IS NULL",
                (endpoint["owner_id"],),
            )[0]["n"]
            if count >= limit:
                raise TooManyWebhooks(limit)
            tx.execute(
                "INSERT INTO {aytada_webhook_endpoints}"
                " (id, owner_id, url, events, secret, created_at, deleted_at)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    endpoint["id"],
                    endpoint["owner_id"],
                    endpoint["url"],
                    to_json(list(endpoint["events"])),
                    endpoint["secret"],
                    endpoint["created_at"],
                ),
            )

    def endpoints_of(self, owner_id: UUID) -> list[Row]:
        """A user's endpoints, oldest first (deleted ones left out)."""
        rows = self.store.query(
            "SELECT * FROM {aytada_webhook_endpoints} WHERE owner_id = ? AND deleted_at IS NULL"
            " ORDER BY created_at, id",
            (str(owner_id),),
        )
        return [_endpoint(r) for r in rows]

    def endpoint(self, endpoint_id: str) -> Row | None:
        """An endpoint, deleted or not."""
        rows = self.store.query(
            "SELECT * FROM {aytada_webhook_endpoints} WHERE id = ?", (endpoint_id,)
        )
        return _endpoint(rows[0]) if rows else None

    def delete_endpoint(self, owner_id: UUID, endpoint_id: str, now: float) -> bool:
        """Delete a user's endpoint and cancel its pending deliveries; False: not theirs."""
        with self.store.transaction() as tx:
            deleted = tx.execute(
                "UPDATE {aytada_webhook_endpoints} SET deleted_at = ?"
                " WHERE id = ? AND owner_id = ? AND deleted_at IS NULL",
                (now, endpoint_id, str(owner_id)),
            )
            if deleted:
                tx.execute(
                    "UPDATE {aytada_webhook_deliveries}"
                    " SET status = ?, lease_until = NULL, next_attempt_at = NULL, updated_at = ?"
                    " WHERE endpoint_id = ? AND status = ?",
                    (CANCELLED, now, endpoint_id, PENDING),
                )
        return bool(deleted)

    def live_endpoints(self) -> list[Row]:
        """Every endpoint not deleted, of every user, each with its event types."""
        rows = self.store.query("SELECT * FROM {aytada_webhook_endpoints} WHERE deleted_at IS NULL")
        return [_endpoint(r) for r in rows]

    def record(self, deliveries: Iterable[Row]) -> int:
        """Add deliveries to the outbox; one already there (by webhook-id) is left as it is."""
        added = 0
        with self.store.transaction() as tx:
            for d in deliveries:
                added += tx.execute(
                    "INSERT INTO {aytada_webhook_deliveries} (webhook_id, endpoint_id, event_id,"
                    " event_type, project_id, body, status, attempts, next_attempt_at,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)"
                    " ON CONFLICT (webhook_id) DO NOTHING",
                    (
                        d["webhook_id"],
                        d["endpoint_id"],
                        d["event_id"],
                        d["event_type"],
                        d["project_id"],
                        d["body"],
                        PENDING,
                        d["created_at"],
                        d["created_at"],
                        d["created_at"],
                    ),
                )
        return max(added, 0)

    def due(self, now: float, limit: int, busy: Sequence[str] = ()) -> list[Row]:
        """Pending deliveries whose time has come and that nobody holds, the longest due first,
        leaving out the `busy` endpoints' (however many of theirs are due)."""
        skip = f" AND endpoint_id NOT IN ({','.join('?' * len(busy))})" if busy else ""
        return self.store.query(
            "SELECT * FROM {aytada_webhook_deliveries}"  # noqa: S608 (placeholders only)
            " WHERE status = ? AND next_attempt_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?)"
            + skip
            + " ORDER BY next_attempt_at LIMIT ?",
            (PENDING, now, now, *busy, limit),
        )

    def claim(self, webhook_id: str, now: float, until: float) -> bool:
        """Hold a due delivery until `until`; False when another process took it first."""
        return (
            self.store.execute(
                "UPDATE {aytada_webhook_deliveries} SET lease_until = ?"
                " WHERE webhook_id = ? AND status = ? AND (lease_until IS NULL OR lease_until < ?)",
                (until, webhook_id, PENDING, now),
            )
            == 1
        )

    def release(self, webhook_ids: Iterable[str]) -> None:
        """Let go of claimed deliveries whose attempts were abandoned (the process stops)."""
        with self.store.transaction() as tx:
            for webhook_id in webhook_ids:
                tx.execute(
                    "UPDATE {aytada_webhook_deliveries} SET lease_until = NULL"
                    " WHERE webhook_id = ? AND status = ?",
                    (webhook_id, PENDING),
                )

    def settle(self, webhook_id: str, **changes: Any) -> bool:
        """Record an attempt's outcome on a pending delivery and release it."""
        columns = ", ".join(f"{c} = ?" for c in changes)
        sql = (
            f"UPDATE {{aytada_webhook_deliveries}} SET {columns}, lease_until = NULL"  # noqa: S608
            " WHERE webhook_id = ? AND status = ?"
        )
        return self.store.execute(sql, (*changes.values(), webhook_id, PENDING)) == 1

    def delivery(self, webhook_id: str) -> Row | None:
        rows = self.store.query(
            "SELECT * FROM {aytada_webhook_deliveries} WHERE webhook_id = ?", (webhook_id,)
        )
        return rows[0] if rows else None

    def deliveries_of(self, endpoint_id: str, limit: int = 100) -> list[Row]:
        """An endpoint's deliveries, newest first."""
        return self.store.query(
            "SELECT * FROM {aytada_webhook_deliveries} WHERE endpoint_id = ?"
            " ORDER BY created_at DESC, webhook_id LIMIT ?",
            (endpoint_id, limit),
        )

    def backlog(self) -> tuple[int, float | None]:
        """How many deliveries are pending, and when the oldest of them was recorded."""
        row = self.store.query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM {aytada_webhook_deliveries}"
            " WHERE status = ?",
            (PENDING,),
        )[0]
        return int(row["n"]), row["oldest"]


def _endpoint(row: Row) -> Row:
    return {**row, "events": from_json(row["events"])}
