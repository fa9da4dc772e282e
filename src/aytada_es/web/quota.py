"""How many WebSockets this process holds: at most so many per account, and so many in all."""

from __future__ import annotations

import contextlib
import resource
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ..domain.errors import ServiceUnavailable, TooManyRequests

# Descriptors kept back from connections, for the database, the broker, files being served and
# child processes' pipes: max(RESERVE_MIN, a tenth of the limit).
RESERVE_MIN = 128
UNLIMITED = 1 << 20


@dataclass(frozen=True)
class Budget:
    """What the process's file-descriptor limit leaves for connections."""

    descriptors: int
    # HTTP and WebSocket connections in all: uvicorn answers further requests 503
    # (`limit_concurrency`) instead of running out of descriptors.
    connections: int
    # WebSockets: fewer, so that plain HTTP keeps a margin however many sockets are open.
    sockets: int


def descriptor_budget(limit: int | None = None) -> Budget:
    """The budget of `limit` descriptors, by default RLIMIT_NOFILE's soft limit now."""
    if limit is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = UNLIMITED if soft == resource.RLIM_INFINITY else soft
    reserve = max(RESERVE_MIN, limit // 10)
    connections = max(limit - reserve, limit // 2)
    sockets = max(connections - reserve, connections // 2)
    return Budget(limit, connections, sockets)


class SocketQuota:
    """WebSocket places: `per_account` for each account, `total` for the process.

    Taken and given back in the event loop's thread, with no await between the check and the
    count, so handshakes that race cannot both take the last place.
    """

    def __init__(self, per_account: int, total: int) -> None:
        self.per_account = per_account
        self.total = total
        self.open = 0
        self._by_account: Counter[str] = Counter()

    @contextlib.contextmanager
    def place(self) -> Iterator[None]:
        """One of the process's places; ServiceUnavailable (503) when every one is taken."""
        if self.open >= self.total:
            raise ServiceUnavailable(
                f"this server holds as many live connections as it can ({self.total}); "
                "try again later"
            )
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1

    @contextlib.contextmanager
    def account_place(self, account_id: str) -> Iterator[None]:
        """One of the account's places; TooManyRequests (429) when it holds `per_account`."""
        if self._by_account[account_id] >= self.per_account:
            raise TooManyRequests(
                f"a user may hold at most {self.per_account} live connections at once; "
                "close one (another tab or device) first"
            )
        self._by_account[account_id] += 1
        try:
            yield
        finally:
            self._by_account[account_id] -= 1
            if self._by_account[account_id] <= 0:
                del self._by_account[account_id]

    def held_by(self, account_id: str) -> int:
        """How many places the account holds now."""
        return self._by_account.get(account_id, 0)
