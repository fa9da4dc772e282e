"""Login sessions, in the event store's own database: only a hash of each session id is kept.

A session id is 256 random bits; the cookie carries it, the table its SHA-256, so a copy of the
table logs nobody in. Every web process reads the same table, so a logout is seen by all of them
at once. Sessions are not domain events: logging in or out changes no aggregate.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from .sql import Row, SQLStore

DDL = [
    "CREATE TABLE IF NOT EXISTS {aytada_sessions} ("
    " id_hash TEXT PRIMARY KEY,"
    " account_id TEXT NOT NULL,"
    " token_hash TEXT NOT NULL,"
    " created_at DOUBLE PRECISION NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL,"
    " seen_at DOUBLE PRECISION NOT NULL,"
    " revoked_at DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS aytada_sessions_by_revocation ON {aytada_sessions} (revoked_at)",
    "CREATE INDEX IF NOT EXISTS aytada_sessions_by_expiry ON {aytada_sessions} (expires_at)",
]
# `secrets.token_urlsafe(32)`: 43 characters; anything else is not one of ours.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
# Ended sessions stay this long, so that every web process sees a logout before the row goes.
KEEP_ENDED_S = 24 * 3600
# A session used within this long is not written again: at most one write a minute per session.
TOUCH_EVERY_S = 60.0
_PURGE = "DELETE FROM {aytada_sessions} WHERE expires_at < ? OR revoked_at < ?"


def id_hash(session_id: str) -> str | None:
    """The stored hash of a session id, or None when the value cannot be a session id."""
    if not _SESSION_ID.fullmatch(session_id):
        return None
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A stored session; times are seconds since the epoch."""

    id_hash: str
    account_id: str
    token_hash: str  # of the token it was opened with: a rotated token ends it
    created_at: float
    expires_at: float
    seen_at: float
    revoked_at: float | None

    def ended(self, now: float, idle_s: int) -> bool:
        """Logged out, past its lifetime, or unused for longer than `idle_s` (0: no limit)."""
        idle = idle_s > 0 and now - self.seen_at > idle_s
        return self.revoked_at is not None or now >= self.expires_at or idle


class Sessions:
    """The sessions of every web process, in the `aytada_sessions` table."""

    def __init__(self, store: SQLStore, *, ttl_s: int, idle_s: int) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.idle_s = idle_s
        store.create(DDL)

    def open(
        self,
        account_id: str,
        token_hash: str,
        *,
        ends_by: float | None = None,
        now: float | None = None,
    ) -> tuple[str, Session]:
        """A new session: its id (for the cookie, never stored) and its row.

        It lasts `ttl_s`, or only until `ends_by` (when the token expires) if that is sooner.
        """
        now = time.time() if now is None else now
        expires_at = now + self.ttl_s if ends_by is None else min(now + self.ttl_s, ends_by)
        session_id = secrets.token_urlsafe(32)
        hashed = id_hash(session_id)
        assert hashed is not None
        session = Session(hashed, account_id, token_hash, now, expires_at, now, None)
        self.store.execute(
            "INSERT INTO {aytada_sessions} (id_hash, account_id, token_hash, created_at,"
            " expires_at, seen_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (hashed, account_id, token_hash, now, expires_at, now),
        )
        return session_id, session

    def find(self, session_id: str) -> Session | None:
        """The session a cookie value names, ended or not; None for a value that is none of ours."""
        hashed = id_hash(session_id)
        if hashed is None:
            return None
        rows = self.store.query("SELECT * FROM {aytada_sessions} WHERE id_hash = ?", (hashed,))
        return _session(rows[0]) if rows else None

    def touch(self, session: Session, now: float | None = None) -> None:
        """Record that the session is in use, for the idle limit (a write a minute at most)."""
        if not self.idle_s:
            return
        now = time.time() if now is None else now
        if now - session.seen_at >= min(TOUCH_EVERY_S, self.idle_s / 4):
            self.store.execute(
                "UPDATE {aytada_sessions} SET seen_at = ? WHERE id_hash = ?",
                (now, session.id_hash),
            )

    def revoke(self, session_id: str, now: float | None = None) -> bool:
        """End a session (log out); False when the value names no live session."""
        hashed = id_hash(session_id)
        if hashed is None:
            return False
        changed = self.store.execute(
            "UPDATE {aytada_sessions} SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL",
            (time.time() if now is None else now, hashed),
        )
        return changed == 1

    def revoked_since(self, since: float) -> list[str]:
        """The hashes of the sessions logged out after `since`."""
        rows = self.store.query(
            "SELECT id_hash FROM {aytada_sessions} WHERE revoked_at > ?", (since,)
        )
        return [row["id_hash"] for row in rows]

    def purge(self, now: float | None = None) -> int:
        """Delete the sessions that ended more than a day ago; how many were deleted."""
        before = (time.time() if now is None else now) - KEEP_ENDED_S
        if not self.idle_s:
            return self.store.execute(_PURGE, (before, before))
        return self.store.execute(
            f"{_PURGE} OR seen_at < ?", (before, before, before - self.idle_s)
        )


def _session(row: Row) -> Session:
    revoked = row["revoked_at"]
    return Session(
        row["id_hash"],
        row["account_id"],
        row["token_hash"],
        float(row["created_at"]),
        float(row["expires_at"]),
        float(row["seen_at"]),
        None if revoked is None else float(revoked),
    )
