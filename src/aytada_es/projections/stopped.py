"""Read models stopped at an event they cannot apply: the record every process reads, the back-off.

A read model that fails on an event stays at the event before it and is retried after a back-off
(1 s doubling to 60 s, with jitter) until the event applies; it never skips one. Its row in
`aytada_projection_errors` is written when it fails and removed when it applies the event, so the
web processes, the projections worker and the CLI all see the same state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..adapters.sql import Row, Transaction

ERRORS = "aytada_projection_errors"
ERRORS_DDL = (
    """CREATE TABLE IF NOT EXISTS {aytada_projection_errors} (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL,
        error TEXT NOT NULL,
        since DOUBLE PRECISION NOT NULL,
        attempts INTEGER NOT NULL,
        next_retry DOUBLE PRECISION NOT NULL
    )""",
)
# An error message is for a person reading a status line, not a dump.
ERROR_TEXT_MAX = 300


@dataclass(frozen=True)
class Stopped:
    """A read model stopped at the first event it could not apply."""

    name: str
    position: int  # of that event
    error: str  # its type and message, short
    since: float  # seconds since the epoch, like next_retry
    attempts: int
    next_retry: float

    def describe(self) -> str:
        return f"read model {self.name!r} stopped at event {self.position}: {self.error}"

    def as_json(self) -> dict[str, Any]:
        """The stop as the CLI's `--json` shows it."""
        return {
            "position": self.position,
            "error": self.error,
            "since": utc(self.since),
            "attempts": self.attempts,
            "next_retry": utc(self.next_retry),
        }


@dataclass(frozen=True)
class Backoff:
    """How long a stopped read model waits before it tries its event again."""

    first_s: float = 1.0
    max_s: float = 60.0

    def delay(self, attempts: int) -> float:
        """The wait after this many failed attempts."""
        # Shortened at random by up to a quarter: read models stopped together retry apart.
        full = min(self.max_s, self.first_s * 2.0 ** min(attempts - 1, 30))
        return full * random.uniform(0.75, 1.0)


def error_text(error: BaseException) -> str:
    """`Type: message` on one line, cut short."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"


def utc(moment: float) -> str:
    """Seconds since the epoch as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_row(row: Row) -> Stopped | None:
    """The stop in a row that joined the errors table (None when the read model has none)."""
    if row.get("stopped_at") is None:
        return None
    return Stopped(
        name=row["name"],
        position=int(row["stopped_at"]),
        error=row["error"],
        since=float(row["since"]),
        attempts=int(row["attempts"]),
        next_retry=float(row["next_retry"]),
    )


# Columns to select with `LEFT JOIN {aytada_projection_errors} e ON e.name = ...`.
JOINED_COLUMNS = "e.position AS stopped_at, e.error, e.since, e.attempts, e.next_retry"


def record(tx: Transaction, stopped: Stopped) -> None:
    """Write (or replace) a read model's stop."""
    tx.upsert(
        ERRORS,
        "name",
        [
            {
                "name": stopped.name,
                "position": stopped.position,
                "error": stopped.error,
                "since": stopped.since,
                "attempts": stopped.attempts,
                "next_retry": stopped.next_retry,
            }
        ],
    )


def clear(tx: Transaction, names: list[str]) -> None:
    """Remove the stops of these read models."""
    tx.executemany("DELETE FROM {aytada_projection_errors} WHERE name = ?", ((n,) for n in names))
