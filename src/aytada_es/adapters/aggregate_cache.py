"""The aggregate cache: the library's LRU cache, which never puts back an older version."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from eventsourcing.application import LRUCache


class NewestCache(LRUCache[UUID, Any]):
    """Keeps the newest version of each aggregate it was given.

    Threads put what they saved, loaded or caught up with, and they may arrive out of order:
    a save that reaches the cache after a newer one (saved by a thread that conflicted with
    it and caught up) would otherwise hide the newer one from a writer that trusts its cache.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._newest = threading.Lock()

    def put(self, key: UUID, value: Any) -> Any:
        with self._newest:
            try:
                held = self.get(key)
            except KeyError:
                held = None
            if held is not None and value is not None and held.version > value.version:
                return None
            return super().put(key, value)
