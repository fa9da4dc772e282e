"""SQLite shared by several processes: writers take turns through a file lock.

SQLite lets one connection write at a time. A writer that finds the database locked by another
process sleeps in SQLite's busy handler, in steps growing to 100 ms, however soon the lock is
free again, and a transaction that read before it wrote fails at once if another process
committed in between. A file lock (`flock`) held for the whole write transaction wakes the next
writer the moment the last one commits, and lets no other process commit in between. Within a
process the pool already hands its one writer connection over in turn; the file lock is taken
after that, so one descriptor per pool is enough.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Notification
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)
from eventsourcing.utils import Environment, EnvType

from .permissions import PRIVATE_FILE, private_file

LOCK_SUFFIX = ".writer-lock"


class WriterLock:
    """An exclusive `flock` on a file beside the database, released by the kernel on exit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)

    def acquire(self) -> None:
        fcntl.flock(self._open(), fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._open(), fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _open(self) -> int:
        if self._fd is None:
            raise ValueError(f"the writer lock {self.path} is closed")
        return self._fd


class _WriterLockedPool(SQLiteConnectionPool):
    """A pool whose writer connection also holds the database's writer lock."""

    def __init__(self, *, db_name: str, lock_timeout: int | None) -> None:
        super().__init__(db_name=db_name, lock_timeout=lock_timeout)
        self.writer_lock = WriterLock(db_name + LOCK_SUFFIX)

    def get_connection(
        self, timeout: float | None = None, *, is_writer: bool | None = None
    ) -> SQLiteConnection:
        conn = super().get_connection(timeout, is_writer=is_writer)
        if is_writer is True:
            try:
                self.writer_lock.acquire()
            except BaseException:
                super().put_connection(conn)
                raise
        return conn

    def put_connection(self, conn: SQLiteConnection) -> None:
        if conn.is_writer is True:
            self.writer_lock.release()
        super().put_connection(conn)

    def close(self) -> None:
        super().close()
        self.writer_lock.close()


class WriterLockedSQLiteFactory(SQLiteFactory):
    """`eventsourcing.sqlite` with the cross-process writer lock (file databases only)."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        if pool.is_sqlite_memory_mode:
            return
        # Made before SQLite opens it: SQLite creates it 0644, and its -wal and -shm files take
        # the database file's mode.
        private_file(pool.db_name)
        locked = _WriterLockedPool(db_name=pool.db_name, lock_timeout=pool.lock_timeout)
        pool.close()
        self.datastore.pool = locked
        # The first connection turns a new database to WAL, which needs every other connection
        # out of the way: two processes doing it at once fail with "database is locked".
        locked.writer_lock.acquire()
        try:
            locked.put_connection(locked.get_connection())
        finally:
            locked.writer_lock.release()


def notifications_from(
    recorder: ApplicationRecorder, start: int, limit: int
) -> Sequence[Notification]:
    """`recorder.select_notifications(start, limit)`: on SQLite, its rows read as plain tuples.

    The library's own query names each column of an `sqlite3.Row`: a third of the time a
    rebuild spends reading the log (docs/benchmarks.md). The events of one aggregate share one
    `UUID` object (immutable): made once, and its text too (`projections.base.aggregate_id`).
    """
    if not isinstance(recorder, SQLiteApplicationRecorder):
        return recorder.select_notifications(start, limit, inclusive_of_start=True)
    to_id = _uuid if recorder.datastore.originator_id_type == "uuid" else str
    with recorder.datastore.transaction(commit=False) as cursor:
        rows = cursor.sqlite_cursor  # a cursor of this transaction alone
        rows.row_factory = None
        rows.execute(
            "SELECT rowid, originator_id, originator_version, topic, state"  # noqa: S608
            f" FROM {recorder.events_table_name} WHERE rowid>=? ORDER BY rowid LIMIT ?",
            (start, limit),
        )
        found = rows.fetchall()
    # As the frozen dataclass's `__init__` would set them, field by field, at a third the cost.
    made, put = object.__new__, object.__setattr__
    notifications = []
    for id, originator_id, version, topic, state in found:
        notification = made(Notification)
        put(
            notification,
            "__dict__",
            {
                "originator_id": to_id(originator_id),
                "originator_version": version,
                "topic": topic,
                "state": state,
                "id": id,
            },
        )
        notifications.append(notification)
    return notifications


_UUIDS: dict[str, UUID] = {}
_UUIDS_MAX = 100_000


def _uuid(text: str) -> UUID:
    found = _UUIDS.get(text)
    if found is None:
        if len(_UUIDS) >= _UUIDS_MAX:
            _UUIDS.clear()
        found = _UUIDS[text] = UUID(text)
    return found
