"""The ledger of paid provider calls: recorded before each call, so no call is paid for twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application

from .sql import SQLStore, from_json, to_json

DDL = [
    "CREATE TABLE IF NOT EXISTS {aytada_provider_calls} ("
    " key TEXT PRIMARY KEY,"
    " provider TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " external_id TEXT,"
    " result TEXT,"
    " started_at TEXT NOT NULL,"
    " finished_at TEXT)"
]


@dataclass(frozen=True)
class RecordedCall:
    """What the ledger knows of one call."""

    key: str
    provider: str
    status: str  # started | finished
    external_id: str | None
    result: Any


class CallLedger:
    """Paid provider calls by idempotency key, in the event store's own database."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        store.create(DDL)

    @classmethod
    def of(cls, application: Application[Any]) -> CallLedger:
        return cls(SQLStore.of(application))

    def get(self, key: str) -> RecordedCall | None:
        rows = self.store.query(
            "SELECT key, provider, status, external_id, result"
            " FROM {aytada_provider_calls} WHERE key = ?",
            (key,),
        )
        if not rows:
            return None
        row = rows[0]
        return RecordedCall(
            row["key"], row["provider"], row["status"], row["external_id"], from_json(row["result"])
        )

    def start(self, key: str, provider: str) -> None:
        """Record that a call is about to be made (a new attempt resets a failed one)."""
        self.store.execute(
            "INSERT INTO {aytada_provider_calls} (key, provider, status, started_at)"
            " VALUES (?, ?, 'started', ?)"
            " ON CONFLICT (key) DO UPDATE SET provider = excluded.provider",
            (key, provider, _now()),
        )

    def identify(self, key: str, external_id: str) -> None:
        """Record the remote job id as soon as it is known."""
        self.store.execute(
            "UPDATE {aytada_provider_calls} SET external_id = ? WHERE key = ?", (external_id, key)
        )

    def abandon(self, key: str) -> None:
        """The call failed: the next attempt starts afresh rather than resuming it."""
        self.store.execute(
            "UPDATE {aytada_provider_calls} SET external_id = NULL WHERE key = ? AND status = ?",
            (key, "started"),
        )

    def finish(self, key: str, result: Any) -> None:
        self.store.execute(
            "UPDATE {aytada_provider_calls} SET status = 'finished', result = ?, finished_at = ?"
            " WHERE key = ?",
            (to_json(result), _now(), key),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()
