"""The PostgreSQL side of a restore: a schema made beside the target, filled, then renamed."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..adapters import acts, calls, sessions, webhooks
from ..adapters.sql import SQLStore
from ..application import Studio
from ..config import Database
from .keys import Keys
from .manifest import Manifest
from .snapshot import COLUMNS, ENDPOINTS, POSTGRES_EVENTS, TEXT_KEYS, connect

_BATCH = 5000


def aside_name(database: Database, token: str) -> str:
    """The schema a restore fills beside the target one."""
    return f"{database.db_schema or 'public'}"[:40] + f"_restoring_{token}"


def relations(database: Database, schema: str) -> int:
    """How many tables, sequences, indexes and views the schema holds (0: empty or absent)."""
    with connect(database) as pg:
        row = pg.execute(
            "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def load(
    database: Database, schema: str, store: Path, manifest: Manifest, keys: Keys
) -> dict[str, str]:
    """Create the schema's tables as the service does, then copy the snapshot's rows in."""
    with connect(database) as pg:
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    env = database.model_copy(update={"db_schema": schema}).eventsourcing_env()
    studio = Studio(env)  # the events and text keys tables, as the service makes them
    try:
        SQLStore.of(studio).create([*calls.DDL, *acts.DDL, *webhooks.DDL, *sessions.DDL])
    finally:
        studio.close()
    copy = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        with connect(database) as pg:
            events = sql.Identifier(schema, POSTGRES_EVENTS)
            names = ["notification_id", "originator_id", "originator_version", "topic", "state"]
            _copy_rows(
                pg,
                events,
                names,
                copy.execute(
                    f"SELECT {', '.join(names)} FROM {POSTGRES_EVENTS} ORDER BY notification_id"  # noqa: S608
                ),
            )
            if manifest.position:
                pg.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                    (f'"{schema}".{POSTGRES_EVENTS}', manifest.position),
                )
            for table in manifest.store.tables:
                columns = copy.execute(
                    f"SELECT column_name, data_type FROM {COLUMNS} WHERE table_name = ?"  # noqa: S608
                    " ORDER BY ordinal",
                    (table,),
                ).fetchall()
                ident = sql.Identifier(schema, table)
                pg.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                        ident,
                        sql.SQL(", ").join(
                            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                            for c, t in columns
                        ),
                    )
                )
                names = [c for c, _ in columns]
                _copy_rows(
                    pg,
                    ident,
                    names,
                    copy.execute(
                        f"SELECT {', '.join(names)} FROM {table}"  # noqa: S608
                    ),
                )
            pg.cursor().executemany(
                sql.SQL(
                    "INSERT INTO {} (owner_id, key) VALUES (%s, %s)"
                    " ON CONFLICT (owner_id) DO UPDATE SET key = excluded.key"
                ).format(sql.Identifier(schema, TEXT_KEYS)),
                sorted(keys.text_keys.items()),
            )
            if keys.webhook_secrets:
                pg.cursor().executemany(
                    sql.SQL("UPDATE {} SET secret = %s WHERE id = %s").format(
                        sql.Identifier(schema, ENDPOINTS)
                    ),
                    [(secret, id) for id, secret in sorted(keys.webhook_secrets.items())],
                )
    finally:
        copy.close()
    return env


def _copy_rows(
    pg: psycopg.Connection[Any], table: sql.Identifier, names: list[str], rows: Any
) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)
    with pg.cursor().copy(statement) as copy:
        while batch := rows.fetchmany(_BATCH):
            for row in batch:
                copy.write_row(row)


def rename(database: Database, schema: str) -> None:
    """Put the restored schema in place of the (empty) target one, in one transaction."""
    wanted = database.db_schema or "public"
    with connect(database) as pg:  # both or neither; RESTRICT: only an empty one is dropped
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} RESTRICT").format(sql.Identifier(wanted)))
        pg.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(schema), sql.Identifier(wanted)
            )
        )
    # The event store's insert function names its schema: made again under the new name.
    Studio(database.eventsourcing_env()).close()


def drop(database: Database, schema: str) -> None:
    """Remove a schema a failed restore made."""
    with contextlib.suppress(psycopg.Error), connect(database) as pg:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
