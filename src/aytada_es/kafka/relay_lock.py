"""One relay at a time: a lock the active relay holds while it lives and loses when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import psycopg

from ..adapters.permissions import PRIVATE_FILE
from ..domain.errors import ConfigError

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 5.0


class RelayLock(ABC):
    """Held by the one relay that publishes; the others stand by and ask again."""

    @abstractmethod
    async def acquire(self) -> bool:
        """Take the lock if it is free; whether this relay holds it now."""

    @abstractmethod
    async def held(self) -> bool:
        """Whether the lock is still this relay's."""

    @abstractmethod
    async def release(self) -> None:
        """Let the lock go (a standby may take it at once)."""


class AdvisoryLock(RelayLock):
    """PostgreSQL: a session advisory lock on a connection of its own, freed when the session ends.

    The server ends the session when the holder's process dies (its socket closes) and, through
    TCP keepalives, within about half a minute when the holder's machine vanishes. `env`: the
    event store's `eventsourcing` persistence settings (`POSTGRES_*`).
    """

    def __init__(self, env: Mapping[str, str], name: str = "kafka-relay") -> None:
        self.env = env
        schema = env.get("POSTGRES_SCHEMA") or "public"
        digest = hashlib.sha256(f"aytada-es:{schema}:{name}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._holding = False

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            env = self.env
            self._connection = await psycopg.AsyncConnection.connect(
                host=env.get("POSTGRES_HOST", "127.0.0.1"),
                port=int(env.get("POSTGRES_PORT", "5432")),
                user=env.get("POSTGRES_USER", ""),
                password=env.get("POSTGRES_PASSWORD", ""),
                dbname=env.get("POSTGRES_DBNAME", ""),
                autocommit=True,
                connect_timeout=5,
                application_name="aytada-es relay",
                options="-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5"
                " -c tcp_keepalives_count=3",
            )
        return self._connection

    async def acquire(self) -> bool:
        if self._holding:
            return await self.held()
        connection = await self._connect()
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cursor.fetchone()
        self._holding = bool(row and row[0])
        return self._holding

    async def held(self) -> bool:
        connection = self._connection
        if not self._holding or connection is None or connection.closed:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await connection.execute("SELECT 1")
        except Exception:
            log.warning("relay lock: its connection is gone", exc_info=True)
            await self.release()
            return False
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        holding, self._holding = self._holding, False
        if connection is None:
            return
        # Unlock first: the server ends a closed session a moment later, and a standby asking
        # in that moment would find the lock still taken.
        with contextlib.suppress(Exception):
            if holding and not connection.closed:
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    await connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        with contextlib.suppress(Exception):
            await connection.close()


class FileLock(RelayLock):
    """SQLite (one machine): an flock on a file beside the database; the kernel frees it on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def held(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock


def relay_lock(env: Mapping[str, str]) -> RelayLock:
    """The lock that the relays of an event store share, from its persistence settings."""
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        return AdvisoryLock(env)
    path = env.get("SQLITE_DBNAME")
    if not path:
        raise ConfigError("a relay needs the event store in PostgreSQL or in an SQLite file")
    return FileLock(Path(f"{path}.relay-lock"))
