"""Generations of the read models: a new one is built beside the serving one, then switched to.

Every table a read model owns, and the positions, versions and errors tables that track them,
exist once per generation: generation 0 under their own names (as older releases made them),
generation N under `<name>_g<N>`. One row, `aytada_read_generation`, says which generation
serves; its number, as a string, is the `epoch` clients see. Every store that reads or keeps read
models re-reads that row at most every `refresh_s` and switches its table names when it changed;
a runner checks it inside each batch's transaction, so no batch is applied to a generation that
no longer serves.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable

from ..adapters.sql import SQLStore, Transaction

POINTER = "aytada_read_generation"
POINTER_DDL = (
    "CREATE TABLE IF NOT EXISTS {aytada_read_generation}"
    " (id INTEGER PRIMARY KEY, generation INTEGER NOT NULL)",
    "INSERT INTO {aytada_read_generation} (id, generation) VALUES (1, 0)"
    " ON CONFLICT (id) DO NOTHING",
)
# How often a process re-reads which generation serves.
REFRESH_S = 0.2
_INDEX = re.compile(r"(INDEX IF NOT EXISTS )(\w+)")
# A plain (not unique) index: nothing but queries rely on it.
_SECONDARY = re.compile(r"\s*CREATE INDEX IF NOT EXISTS (\w+)")


def epoch_of(generation: int) -> str:
    """The epoch clients see for a generation."""
    return str(generation)


def renames(generation: int, tables: Iterable[str]) -> dict[str, str]:
    """The real names of these tables in a generation."""
    return {} if generation == 0 else {table: f"{table}_g{generation}" for table in tables}


def ddl_of(generation: int, statement: str) -> str:
    """A DDL statement for a generation: its index names made unique to it too."""
    return statement if generation == 0 else _INDEX.sub(rf"\1\2_g{generation}", statement)


def secondary_indexes(generation: int, statements: Iterable[str]) -> list[tuple[str, str]]:
    """Each plain index these statements create, named for a generation: its name and DDL."""
    found = []
    for statement in statements:
        if match := _SECONDARY.match(statement):
            name = match[1] if generation == 0 else f"{match[1]}_g{generation}"
            found.append((name, ddl_of(generation, statement)))
    return found


def serving(store: SQLStore, tx: Transaction | None = None) -> int:
    """The generation that serves (0 before any live rebuild, or without the pointer table)."""
    sql = "SELECT generation FROM {aytada_read_generation} WHERE id = 1"
    try:
        rows = store.query(sql) if tx is None else tx.query(sql)
    except Exception:
        if tx is not None or POINTER not in store.missing([POINTER]):
            raise
        return 0
    return int(rows[0]["generation"]) if rows else 0


def lock_serving(tx: Transaction, dialect: str) -> int:
    """The serving generation, locked until the transaction ends (a flip waits for it)."""
    if dialect == "postgres":
        rows = tx.query("SELECT generation FROM {aytada_read_generation} WHERE id = 1 FOR SHARE")
    else:
        # SQLite: a write takes the database's one writer lock, before anything is read.
        tx.execute("UPDATE {aytada_read_generation} SET generation = generation WHERE id = 1")
        rows = tx.query("SELECT generation FROM {aytada_read_generation} WHERE id = 1")
    return int(rows[0]["generation"]) if rows else 0


class Follower:
    """Keeps a store on the serving generation: re-reads the pointer at most every `refresh_s`."""

    def __init__(
        self,
        store: SQLStore,
        tables: Iterable[str],
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.tables = tuple(tables)
        self.refresh_s = refresh_s
        self.clock = clock
        self._next = 0.0
        self._lock = threading.RLock()
        self._reading = False

    def __call__(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        with self._lock:
            # The query below runs through the store, which calls this again.
            if now < self._next or self._reading:
                return
            self._reading = True
            try:
                generation = serving(self.store)
            finally:
                self._reading = False
            self._next = now + self.refresh_s
            self.follow(generation)

    def follow(self, generation: int) -> None:
        """Use a generation's tables from the next transaction on."""
        if generation != self.store.generation:
            self.store.switch(generation, renames(generation, self.tables))

    def refresh(self) -> int:
        """Re-read the pointer now; the serving generation."""
        self._next = 0.0
        self()
        return self.store.generation
