"""Each user's text key: AES-GCM, kept in the event store's database until the user is erased."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from uuid import UUID

from .sql import SQLStore

DDL = [
    "CREATE TABLE IF NOT EXISTS {aytada_text_keys} ("
    " owner_id TEXT PRIMARY KEY,"
    " key TEXT,"  # hex; NULL once erased: the row stays so no new key is ever made
    " erased_at TEXT)"
]
KEY_BYTES = 32
_TTL_S = 2.0  # how long a process trusts a key it read; an erase elsewhere shows after it


class TextKeys:
    """The key of every user whose text is stored, by account id; erasure destroys one."""

    def __init__(self, store: SQLStore | None) -> None:
        self.store = store
        self._memory: dict[str, bytes | None] = {}  # stores without SQL (tests in memory)
        self._cache: dict[str, tuple[bytes | None, float]] = {}
        self._erasures: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()
        if store is not None:
            store.create(DDL)

    def for_writing(self, owner_id: UUID) -> bytes | None:
        """The owner's key, made on first use; None once the owner was erased."""
        found = self._known(owner_id)
        if found is not None or self._erased(owner_id):
            return found
        key = secrets.token_bytes(KEY_BYTES)
        if self.store is None:
            self._memory.setdefault(owner_id.hex, key)
        else:
            self.store.execute(
                "INSERT INTO {aytada_text_keys} (owner_id, key) VALUES (?, ?)"
                " ON CONFLICT (owner_id) DO NOTHING",
                (owner_id.hex, key.hex()),
            )
        self._cache.pop(owner_id.hex, None)
        return self._known(owner_id)

    def for_reading(self, owner_id: UUID) -> bytes | None:
        """The owner's key; None when it was destroyed (or never made)."""
        return self._known(owner_id)

    def destroy(self, owner_id: UUID) -> None:
        """Forget the owner's key for good: their stored text can no longer be read."""
        if self.store is None:
            self._memory[owner_id.hex] = None
        else:
            now = datetime.now(UTC).isoformat()
            with self.store.transaction() as tx:
                changed = tx.execute(
                    "UPDATE {aytada_text_keys} SET key = NULL, erased_at = ? WHERE owner_id = ?",
                    (now, owner_id.hex),
                )
                if not changed:
                    tx.execute(
                        "INSERT INTO {aytada_text_keys} (owner_id, key, erased_at)"
                        " VALUES (?, NULL, ?)",
                        (owner_id.hex, now),
                    )
        with self._lock:
            self._cache[owner_id.hex] = (None, float("inf"))
            self._erasures[owner_id.hex] = (True, float("inf"))

    def erased(self, owner_id: UUID) -> bool:
        """Whether the owner was erased (known for good once true; asked again after 2 s)."""
        now = time.monotonic()
        cached = self._erasures.get(owner_id.hex)
        if cached is not None and cached[1] > now:
            return cached[0]
        erased = self._erased(owner_id)
        with self._lock:
            self._erasures[owner_id.hex] = (erased, float("inf") if erased else now + _TTL_S)
        return erased

    def _erased(self, owner_id: UUID) -> bool:
        if self.store is None:
            return owner_id.hex in self._memory and self._memory[owner_id.hex] is None
        rows = self.store.query(
            "SELECT erased_at FROM {aytada_text_keys} WHERE owner_id = ?", (owner_id.hex,)
        )
        return bool(rows) and rows[0]["erased_at"] is not None

    def _known(self, owner_id: UUID) -> bytes | None:
        now = time.monotonic()
        cached = self._cache.get(owner_id.hex)
        if cached is not None and cached[1] > now:
            return cached[0]
        if self.store is None:
            key = self._memory.get(owner_id.hex)
        else:
            rows = self.store.query(
                "SELECT key, erased_at FROM {aytada_text_keys} WHERE owner_id = ?",
                (owner_id.hex,),
            )
            key = bytes.fromhex(rows[0]["key"]) if rows and rows[0]["key"] else None
            if rows and rows[0]["erased_at"] is not None:
                with self._lock:
                    self._cache[owner_id.hex] = (None, float("inf"))
        if key is not None:  # an unknown owner is asked again, an erased one never
            with self._lock:
                self._cache[owner_id.hex] = (key, now + _TTL_S)
        return key
