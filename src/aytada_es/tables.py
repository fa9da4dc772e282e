"""Creating tables one process at a time: replicas started together on a new PostgreSQL schema
would otherwise collide (`CREATE ... IF NOT EXISTS` is not safe against a concurrent create)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg

# Transaction-scoped: taken first in a transaction that creates tables.
LOCK_IN_TRANSACTION = "SELECT pg_advisory_xact_lock(hashtext(?))"


def lock_name(schema: str) -> str:
    """The advisory lock of one schema's table creation."""
    return f"aytada tables {schema or 'public'}"


@contextmanager
def creating_tables(env: Mapping[str, str]) -> Iterator[None]:
    """Hold the schema's table-creation lock (PostgreSQL; SQLite has one writer anyway)."""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        yield
        return
    with psycopg.connect(
        host=env.get("POSTGRES_HOST", "127.0.0.1"),
        port=int(env.get("POSTGRES_PORT", "5432")),
        dbname=env["POSTGRES_DBNAME"],
        user=env.get("POSTGRES_USER", ""),
        password=env.get("POSTGRES_PASSWORD", ""),
        connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
        autocommit=True,
    ) as conn:
        # A session lock: it ends with this connection.
        conn.execute(
            "SELECT pg_advisory_lock(hashtext(%s))", (lock_name(env.get("POSTGRES_SCHEMA", "")),)
        )
        yield
