"""A consistent snapshot of the event store in one SQLite file, with the keys taken out.

SQLite: the online backup API, a few pages a step, inside one read transaction of the source:
in WAL mode a reader never blocks a writer, and the open read keeps the copy at one moment, so
no step has to start again however much is written meanwhile. PostgreSQL: the tables of
records (`RECORD_TABLES`) read in one REPEATABLE READ, READ ONLY transaction and written into a
SQLite file of the same shape (the events keep their positions); read models are left out, a
restore rebuilds them. Either way the users' text keys and the webhook secrets are taken out of
the copy (`secure_delete` zeroes what they occupied) and handed back, to be sealed apart.
"""

from __future__ import annotations

import datetime
import decimal
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..config import Database

SQLITE_EVENTS = "stored_events"
POSTGRES_EVENTS = "aytada_events"
TEXT_KEYS = "aytada_text_keys"
ENDPOINTS = "aytada_webhook_endpoints"
# What PostgreSQL holds besides the events that nothing rebuilds: the users' text keys (erased
# ones as markers), the provider-call ledger (so a redelivered call is not paid twice), the
# stages' acts, webhook endpoints and their outbox, login sessions (hashes only).
RECORD_TABLES = (
    TEXT_KEYS,
    "aytada_provider_calls",
    "aytada_stage_acts",
    ENDPOINTS,
    "aytada_webhook_deliveries",
    "aytada_sessions",
)
COLUMNS = "backup_columns"  # in a PostgreSQL snapshot: each copied table's columns and types
STEP_PAGES = 256  # 1 MiB a step with 4 KiB pages
STEP_PAUSE_S = 0.001
_BATCH = 5000
Progress = Callable[[int, int], None]


@dataclass
class Snapshot:
    """The snapshot file and what was taken out of it."""

    path: Path
    kind: str
    events_table: str
    position: int
    tables: list[str] = field(default_factory=list)
    text_keys: dict[str, str] = field(default_factory=dict)  # owner id -> key (hex)
    webhook_secrets: dict[str, str] = field(default_factory=dict)  # endpoint id -> secret
    seconds: float = 0.0
    steps: int = 0


def sqlite_snapshot(
    database: str,
    target: Path,
    *,
    pages: int = STEP_PAGES,
    pause_s: float = STEP_PAUSE_S,
    progress: Progress | None = None,
) -> Snapshot:
    """Copy the SQLite event store at one moment into `target`, writers going on meanwhile."""
    began = time.monotonic()
    # mode=rw: a missing store is an error, never an empty file made here.
    source = sqlite3.connect(f"file:{database}?mode=rw", uri=True, isolation_level=None, timeout=30)
    copy = sqlite3.connect(target, isolation_level=None)
    steps = 0

    def stepped(status: int, remaining: int, total: int) -> None:
        nonlocal steps
        steps += 1
        if progress is not None:
            progress(total - remaining, total)

    try:
        source.execute("BEGIN")  # one read transaction: the copy is of this moment
        row = source.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {SQLITE_EVENTS}").fetchone()  # noqa: S608
        source.backup(copy, pages=pages, progress=stepped, sleep=pause_s)
        source.execute("ROLLBACK")
        snapshot = Snapshot(target, "sqlite", SQLITE_EVENTS, int(row[0]), steps=steps)
        _take_keys_out(copy, snapshot)
    finally:
        source.close()
        copy.close()
    snapshot.seconds = time.monotonic() - began
    return snapshot


def postgres_snapshot(database: Database, target: Path) -> Snapshot:
    """Export the schema's events and records, as of one moment, into a SQLite file."""
    began = time.monotonic()
    schema = database.db_schema or "public"
    copy = sqlite3.connect(target, isolation_level=None)
    copy.execute("PRAGMA journal_mode = MEMORY")
    copy.execute(
        f"CREATE TABLE {POSTGRES_EVENTS} (notification_id INTEGER PRIMARY KEY,"
        " originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB,"
        " UNIQUE (originator_id, originator_version))"
    )
    copy.execute(
        f"CREATE TABLE {COLUMNS} (table_name TEXT, column_name TEXT, data_type TEXT,"
        " ordinal INTEGER)"
    )
    try:
        with connect(database) as pg:
            pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            events = sql.Identifier(schema, POSTGRES_EVENTS)
            position = _one(
                pg, sql.SQL("SELECT COALESCE(MAX(notification_id), 0) FROM {}").format(events)
            )
            snapshot = Snapshot(target, "postgres", POSTGRES_EVENTS, int(position))
            copy.execute("BEGIN")
            names = ["notification_id", "originator_id", "originator_version", "topic", "state"]
            _export(pg, schema, POSTGRES_EVENTS, names, copy, order="notification_id")
            for table in _present(pg, schema):
                columns = pg.execute(
                    "SELECT column_name, data_type, ordinal_position FROM"
                    " information_schema.columns WHERE table_schema = %s AND table_name = %s"
                    " ORDER BY ordinal_position",
                    (schema, table),
                ).fetchall()
                names = [c[0] for c in columns]
                copy.executemany(
                    f"INSERT INTO {COLUMNS} VALUES (?, ?, ?, ?)",  # noqa: S608
                    [(table, c[0], c[1], c[2]) for c in columns],
                )
                copy.execute(f"CREATE TABLE {table} ({', '.join(names)})")
                _export(pg, schema, table, names, copy)
                snapshot.tables.append(table)
            copy.execute("COMMIT")
            pg.rollback()
        _take_keys_out(copy, snapshot)
    finally:
        copy.close()
    snapshot.seconds = time.monotonic() - began
    return snapshot


def _take_keys_out(copy: sqlite3.Connection, snapshot: Snapshot) -> None:
    """Move the text keys and webhook secrets from the copy into the snapshot's fields."""
    copy.execute("PRAGMA journal_mode = MEMORY")  # no journal on disk holds them meanwhile
    copy.execute("PRAGMA secure_delete = ON")  # what they occupied is overwritten with zeros
    tables = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    copy.execute("BEGIN")
    if TEXT_KEYS in tables:
        rows = copy.execute(f"SELECT owner_id, key FROM {TEXT_KEYS} WHERE key IS NOT NULL")  # noqa: S608
        snapshot.text_keys = {str(owner): str(key) for owner, key in rows}
        # Erased users' rows stay (key NULL): restored, they stay erased.
        copy.execute(f"DELETE FROM {TEXT_KEYS} WHERE key IS NOT NULL")  # noqa: S608
    if ENDPOINTS in tables:
        rows = copy.execute(f"SELECT id, secret FROM {ENDPOINTS}")  # noqa: S608
        snapshot.webhook_secrets = {str(id): str(secret) for id, secret in rows}
        copy.execute(f"UPDATE {ENDPOINTS} SET secret = ''")  # noqa: S608
    copy.execute("COMMIT")
    if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
        raise sqlite3.DatabaseError("the snapshot failed SQLite's integrity check")


def connect(database: Database) -> psycopg.Connection[Any]:
    """A connection to the database's server (a transaction until it is closed)."""
    return psycopg.connect(
        host=database.host,
        port=database.port,
        dbname=database.name,
        user=database.user,
        password=database.password,
        connect_timeout=5,
    )


def _present(pg: psycopg.Connection[Any], schema: str) -> list[str]:
    rows = pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (schema,),
    ).fetchall()
    found = {r[0] for r in rows}
    return [t for t in RECORD_TABLES if t in found]


def _one(pg: psycopg.Connection[Any], statement: sql.Composed) -> Any:
    row = pg.execute(statement).fetchone()
    assert row is not None
    return row[0]


def _export(
    pg: psycopg.Connection[Any],
    schema: str,
    table: str,
    names: list[str],
    copy: sqlite3.Connection,
    order: str = "",
) -> None:
    """Copy a table's rows into the SQLite table of the same name, in batches."""
    columns = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    select = sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(schema, table))
    if order:
        select += sql.SQL(" ORDER BY {}").format(sql.Identifier(order))
    insert = f"INSERT INTO {table} VALUES ({', '.join('?' * len(names))})"  # noqa: S608 (ours)
    with pg.cursor(name=f"backup_{uuid.uuid4().hex[:8]}") as cursor:
        cursor.itersize = _BATCH
        cursor.execute(select)
        while rows := cursor.fetchmany(_BATCH):
            copy.executemany(insert, ([_storable(v) for v in row] for row in rows))


def _storable(value: Any) -> Any:
    """A PostgreSQL value as SQLite keeps it (and as PostgreSQL's COPY reads it back)."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, memoryview):
        return bytes(value)
    if value is None or isinstance(value, int | float | str | bytes):
        return value  # a bool is an int: 1 or 0, which PostgreSQL reads back as a boolean
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return json.dumps(value)
