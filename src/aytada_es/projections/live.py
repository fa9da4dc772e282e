"""Rebuild with no downtime: a new generation of the read models beside the serving one."""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresDatastore

from ..adapters.sql import SQLStore, Transaction
from ..domain.errors import AytadaError
from .generations import POINTER_DDL, REFRESH_S, epoch_of, renames, serving
from .runner import Progress, ReadModelRunner

logger = logging.getLogger(__name__)

# Readers re-read the pointer every REFRESH_S: the old generation is dropped well after that.
GRACE_S = 10 * REFRESH_S
# Catch-ups tried before a switch finds the new generation at the end of the log.
SWITCH_ATTEMPTS = 100
_BUSY = "another live rebuild of this database is running"


class SwitchFailed(AytadaError):
    """The new generation could not be switched to; the serving one is left as it was."""

    code = "not_switched"


@dataclass(frozen=True)
class LiveRebuilt:
    """What a live rebuild did."""

    replayed: int
    generation: int
    epoch: str
    position: int
    # From the start of the build to the switch's commit.
    seconds: float


Runner = Callable[[SQLStore, int], ReadModelRunner]


def rebuild_live(
    application: Application[Any],
    runner_of: Runner,
    progress: Progress | None = None,
    *,
    grace_s: float = GRACE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> LiveRebuilt:
    """Build the next generation of every read model, switch to it at once, drop the old one.

    `runner_of(store, generation)` makes the runner of every read model on a generation's tables.
    While it builds, the serving generation goes on serving and being kept. The switch happens in
    one transaction that finds the new generation at the end of the log (and, on SQLite, holds
    the writer lock, so no event comes in between).
    """
    store = SQLStore.of(application)
    store.create(POINTER_DDL)
    with _one_at_a_time(store):
        return _rebuild_live(application, store, runner_of, progress, grace_s, sleep)


def _rebuild_live(
    application: Application[Any],
    store: SQLStore,
    runner_of: Runner,
    progress: Progress | None,
    grace_s: float,
    sleep: Callable[[float], None],
) -> LiveRebuilt:
    began = time.perf_counter()
    old = serving(store)
    builder = runner_of(SQLStore.of(application), old + 1)
    new = builder.generation
    _drop(store, builder.tables, new)  # what a failed attempt left
    builder.prepare()
    try:
        replayed = builder.rebuild(progress)
        position = _switch(application, builder, old)
    except BaseException:
        _drop(store, builder.tables, new)
        raise
    seconds = time.perf_counter() - began
    logger.warning(
        "read models rebuilt as generation %d (epoch %s) in %.2f s, switched at position %d; "
        "generation %d is dropped in %.1f s",
        new,
        epoch_of(new),
        seconds,
        position,
        old,
        grace_s,
    )
    sleep(grace_s)
    _drop(store, builder.tables, old)
    return LiveRebuilt(replayed, new, epoch_of(new), position, seconds)


def _switch(application: Application[Any], builder: ReadModelRunner, old: int) -> int:
    """Catch the new generation up and make it serve; the position it serves from."""
    store = builder.store
    for _ in range(SWITCH_ATTEMPTS):
        while builder.catch_up(2000):
            pass
        with store.transaction() as tx:
            serving_now = _lock(application, store, tx)
            if serving_now != old:
                raise SwitchFailed(
                    f"generation {serving_now} began to serve meanwhile (another rebuild?)"
                )
            last = _last(application, tx)
            reached = min(
                (int(r["position"]) for r in tx.query("SELECT position FROM {aytada_positions}")),
                default=0,
            )
            if reached >= last:
                tx.execute(
                    "UPDATE {aytada_read_generation} SET generation = ? WHERE id = 1",
                    (builder.generation,),
                )
                return reached
    raise SwitchFailed(
        f"the new generation did not reach the end of the log in {SWITCH_ATTEMPTS} attempts"
    )


def _lock(application: Application[Any], store: SQLStore, tx: Transaction) -> int:
    """Lock the pointer, and on PostgreSQL the events against new writes, until the switch."""
    if store.dialect == "postgres":
        # The pointer first: it waits for a serving batch in flight, and commands only then.
        rows = tx.query("SELECT generation FROM {aytada_read_generation} WHERE id = 1 FOR UPDATE")
        recorder: Any = application.recorder
        tx.raw(f"LOCK TABLE {store.qualified(recorder.events_table_name)} IN SHARE MODE")
    else:
        tx.execute("UPDATE {aytada_read_generation} SET generation = generation WHERE id = 1")
        rows = tx.query("SELECT generation FROM {aytada_read_generation} WHERE id = 1")
    return int(rows[0]["generation"]) if rows else 0


def _last(application: Application[Any], tx: Transaction) -> int:
    """The newest notification id, read in the switch's transaction."""
    recorder: Any = application.recorder
    statement = getattr(recorder, "select_max_notification_id_statement", None)
    if statement is None:
        statement = recorder.max_notification_id_statement
    rows = tx.raw(statement)
    value = next(iter(rows[0].values())) if rows else None
    return int(value or 0)


@contextmanager
def _one_at_a_time(store: SQLStore) -> Iterator[None]:
    """Hold the live rebuild's lock (PostgreSQL: an advisory lock; SQLite: a lock file)."""
    datastore = store.datastore
    if isinstance(datastore, PostgresDatastore):
        key = f"aytada live rebuild {datastore.schema or 'public'}"
        with datastore.get_connection() as connection:
            row = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS got", (key,))
            got = row.fetchone()
            if not got or not got["got"]:
                raise SwitchFailed(_BUSY)
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        return
    if datastore.pool.is_sqlite_memory_mode:
        yield  # no other process can see it
        return
    with open(f"{datastore.pool.db_name}.live-rebuild.lock", "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SwitchFailed(_BUSY) from None
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _drop(store: SQLStore, tables: tuple[str, ...], generation: int) -> None:
    with store.creating() as tx:
        for real in renames(generation, tables).values() if generation else tables:
            tx.raw(f"DROP TABLE IF EXISTS {store.qualified(real)}")
