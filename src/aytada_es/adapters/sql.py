"""SQL over the event store's own database, in one dialect: for the read models, the sessions,
the call ledger and the audit's raw history.

Statements use `?` placeholders and name tables in braces (`SELECT * FROM {aytada_videos}`): the
store qualifies them with the PostgreSQL schema and switches placeholders to `%s` there. JSON is
stored as TEXT. Writes go through the event store's datastore, so on SQLite they take the same
writer lock as the events. On PostgreSQL, U+0000 in a text parameter becomes U+FFFD: its text
cannot hold NUL, and events stored by older releases may.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import psycopg
from eventsourcing.application import Application
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.rows import DictRow

from ..tables import LOCK_IN_TRANSACTION, lock_name

Row = dict[str, Any]
Dialect = Literal["sqlite", "postgres"]
P = TypeVar("P", bound=Sequence[Any])
# SQLite allows 32,766 parameters per statement; stay well under it.
_CHUNK = 500
NUL, REPLACEMENT = "\x00", "\ufffd"


def to_json(value: Any) -> str:
    """JSON text for a TEXT column."""
    return json.dumps(value, separators=(",", ":"))


def from_json(text: str | None) -> Any:
    """The value of a JSON TEXT column (None stays None)."""
    return None if text is None else json.loads(text)


class _Tables(dict[str, str]):
    """Qualifies every table name asked of it with a schema, renamed where `renames` says."""

    def __init__(self, prefix: str, renames: dict[str, str] | None = None) -> None:
        super().__init__()
        self.prefix = prefix
        self.renames = renames or {}

    def __missing__(self, table: str) -> str:
        return f"{self.prefix}{self.renames.get(table, table)}"


class _Names:
    """One generation's table names and the statements compiled with them."""

    def __init__(self, tables: _Tables, generation: int, postgres: bool) -> None:
        self.tables = tables
        self.generation = generation
        self._postgres = postgres
        self._compiled: dict[str, str] = {}

    def compile(self, sql: str) -> str:
        compiled = self._compiled.get(sql)
        if compiled is None:
            compiled = sql.format_map(self.tables)
            if self._postgres:
                compiled = compiled.replace("%", "%%").replace("?", "%s")
            self._compiled[sql] = compiled
        return compiled


class Transaction:
    """One open transaction of the store."""

    def __init__(self, store: SQLStore, cursor: sqlite3.Cursor | psycopg.Cursor[DictRow]):
        self._store = store
        self._cursor = cursor
        self._postgres = store.dialect == "postgres"
        # The whole transaction reads and writes one generation, even if the store switches.
        self._names = store.names
        self.generation = self._names.generation

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        self._cursor.execute(self._names.compile(sql), self._clean(params))
        return self._cursor.rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each row of parameters."""
        rows = [without_nul(row) for row in rows] if self._postgres else list(rows)
        if rows:
            self._cursor.executemany(self._names.compile(sql), rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows a SELECT finds, as dicts."""
        self._cursor.execute(self._names.compile(sql), self._clean(params))
        return [dict(row) for row in self._cursor.fetchall()]

    def raw(self, statement: Any) -> list[Row]:
        """Run a statement as it is (names already real, no parameters); the rows it returns."""
        self._cursor.execute(statement)
        if self._cursor.description is None:
            return []
        return [dict(row) for row in self._cursor.fetchall()]

    def _clean(self, params: Sequence[Any]) -> Sequence[Any]:
        return without_nul(params) if self._postgres else params

    def rows_with(self, table: str, column: str, values: Iterable[Any]) -> list[Row]:
        """Every row of a table whose column is one of the values, in few statements."""
        values = list(values)
        found: list[Row] = []
        for i in range(0, len(values), _CHUNK):
            chunk = values[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM {{{table}}} WHERE {column} IN ({marks})"  # noqa: S608 (our names)
            found += self.query(sql, chunk)
        return found

    def rows_at(self, table: str, column: str, values: Sequence[Any]) -> list[Row]:
        """`position` (the column's value) and `state` of the rows whose column is a value."""
        found: list[Row] = []
        for i in range(0, len(values), _CHUNK):
            chunk = values[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found += self.query(
                f"SELECT {column} AS position, state FROM {{{table}}}"  # noqa: S608 (our names)
                f" WHERE {column} IN ({marks})",
                chunk,
            )
        return found

    def upsert(self, table: str, key: str, rows: Sequence[Row]) -> None:
        """Insert the rows, or replace every column of those whose key is already there."""
        if not rows:
            return
        columns = list(rows[0])
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        marks = ",".join("?" * len(columns))
        sql = (
            f"INSERT INTO {{{table}}} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 (our names)
            f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        self.executemany(sql, ([row[c] for c in columns] for row in rows))


class SQLStore:
    """The event store's SQLite file or PostgreSQL schema, for tables of our own beside it."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.dialect: Dialect = "sqlite"
        self._prefix = ""
        if isinstance(datastore, PostgresDatastore):
            self.dialect = "postgres"
            self._prefix = _quote(datastore.schema) + "."
        self.names = _Names(_Tables(self._prefix), 0, self.dialect == "postgres")
        # Called before each transaction: lets the read models follow a switch of generation.
        self.before: Callable[[], None] | None = None

    @property
    def generation(self) -> int:
        """The generation of read-model tables that new transactions use (0 at first)."""
        return self.names.generation

    def switch(self, generation: int, renames: dict[str, str]) -> None:
        """Use these table names from the next transaction on (`renames`: name -> real name)."""
        tables = _Tables(self._prefix, dict(renames))
        self.names = _Names(tables, generation, self.dialect == "postgres")

    def qualified(self, real: str) -> str:
        """A real table name with the schema in front, for statements run as they are."""
        return f"{self._prefix}{real}"

    def renamed(self, table: str) -> str:
        """The real name of a table in the current generation, without the schema."""
        return self.names.tables.renames.get(table, table)

    @classmethod
    def of(cls, application: Application[Any]) -> SQLStore:
        """The store of an application's own database."""
        datastore = getattr(application.recorder, "datastore", None)
        if not isinstance(datastore, SQLiteDatastore | PostgresDatastore):
            raise TypeError(f"read models need SQLite or PostgreSQL, not {datastore!r}")
        return cls(datastore)

    def compile(self, sql: str) -> str:
        """The statement in this database's dialect: qualified tables, its placeholders."""
        return self.names.compile(sql)

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Transaction]:
        """A write transaction, committed when the block ends and rolled back if it raises.

        `durable=False`: the commit does not wait for the disk (SQLite `synchronous=NORMAL` in
        WAL, PostgreSQL `synchronous_commit=off`). A power cut may then lose the transaction,
        never corrupt the database: only for work that is simply done again, as a rebuild's.
        """
        if self.before is not None:
            self.before()
        if durable:
            with self.datastore.transaction(commit=True) as cursor:
                yield Transaction(self, _raw(cursor))
        elif isinstance(self.datastore, PostgresDatastore):
            with self.datastore.transaction(commit=True) as cursor:
                tx = Transaction(self, _raw(cursor))
                tx.execute("SET LOCAL synchronous_commit = off")
                yield tx
        else:
            # SQLite changes it only outside a transaction, on the writer connection held.
            with self.datastore.get_connection(commit=True) as connection:
                pragma = connection.cursor()
                pragma.execute("PRAGMA synchronous")
                was = int(pragma.fetchone()[0])
                pragma.execute("PRAGMA synchronous = NORMAL")
                try:
                    with connection.transaction(commit=True) as cursor:
                        yield Transaction(self, _raw(cursor))
                finally:
                    pragma.execute(f"PRAGMA synchronous = {was}")

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        """A read-only transaction."""
        if self.before is not None:
            self.before()
        with self.datastore.transaction(commit=False) as cursor:
            yield Transaction(self, _raw(cursor))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows a SELECT finds, in a transaction of its own."""
        with self.reading() as tx:
            return tx.query(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run and commit one statement; the number of rows it changed."""
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def create(self, ddl: Iterable[str]) -> None:
        """Run idempotent DDL (`CREATE ... IF NOT EXISTS`) in one transaction."""
        with self.creating() as tx:
            for statement in ddl:
                tx.execute(statement)

    @contextmanager
    def creating(self) -> Iterator[Transaction]:
        """A write transaction that creates or drops tables, one process at a time."""
        with self.transaction() as tx:
            if isinstance(self.datastore, PostgresDatastore):
                tx.execute(LOCK_IN_TRANSACTION, (lock_name(self.datastore.schema),))
            yield tx

    def missing(self, tables: Iterable[str]) -> set[str]:
        """Which of these tables do not exist (yet)."""
        wanted = set(tables)
        if isinstance(self.datastore, PostgresDatastore):
            rows = self.query(
                "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ?",
                (self.datastore.schema,),
            )
        else:
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        found = {row["name"] for row in rows}
        return {table for table in wanted if self.renamed(table) not in found}


def without_nul(params: P) -> P | list[Any]:
    """The parameters with U+0000 in text replaced by U+FFFD (the same object when none has it)."""
    for param in params:
        if param.__class__ is str and NUL in param:
            return [p.replace(NUL, REPLACEMENT) if p.__class__ is str else p for p in params]
    return params


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _raw(cursor: Any) -> sqlite3.Cursor | psycopg.Cursor[DictRow]:
    # eventsourcing wraps SQLite's cursor without exposing `rowcount`.
    raw = getattr(cursor, "sqlite_cursor", cursor)
    assert isinstance(raw, sqlite3.Cursor | psycopg.Cursor)
    return raw
