"""Keeps the read models up to date with the notification log, each event applied exactly once."""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.application import Application

from .._waiting import Doorbell
from .accounts import Accounts
from .base import TRACKING_DDL, Batch, CardChange, Projection
from .credits import CreditStatements
from .deleted import DeletedProjects
from .images import MyImages
from .scripts import MyScripts
from .store import ReadModelStore, Transaction
from .videos import MyVideos

logger = logging.getLogger(__name__)

Listener = Callable[[Sequence[CardChange]], None]
Progress = Callable[[int, int], None]


class ProjectionFailed(Exception):
    """A projection could not apply a batch; nothing of the batch was kept, its position neither."""

    def __init__(self, name: str, first: int, last: int) -> None:
        super().__init__(f"projection {name!r} could not apply events {first}..{last}")
        self.name = name


class _Overtaken(Exception):
    """Another runner applied this batch first."""


class ReadModelRunner:
    """Applies new events to each projection from its own tracked position, by polling."""

    def __init__(
        self,
        application: Application[Any],
        projections: Sequence[Projection],
        store: ReadModelStore | None = None,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique: {names}")
        self.application = application
        self.projections = list(projections)
        self.store = store or ReadModelStore.of(application)
        self._listeners: list[Listener] = []
        # One batch at a time per process: projections hold batch state on the instance.
        self._lock = threading.Lock()
        self.store.create([*TRACKING_DDL, *(s for p in self.projections for s in p.ddl)])
        with self.store.transaction() as tx:
            tx.executemany(
                "INSERT INTO {aytada_positions} (name, position) VALUES (?, 0)"
                " ON CONFLICT (name) DO NOTHING",
                [(name,) for name in names],
            )

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with the card changes of every committed batch; returns an unsubscribe.

        It runs in the runner's thread: hand the changes over to the event loop, do not block.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def positions(self) -> dict[str, int]:
        """Each projection's tracked position."""
        rows = self.store.query("SELECT name, position FROM {aytada_positions}")
        tracked = {row["name"]: int(row["position"]) for row in rows}
        return {p.name: tracked.get(p.name, 0) for p in self.projections}

    def catch_up(self, limit: int = 500) -> int:
        """Apply one batch of new events to every projection; how many events the batch had."""
        with self._lock:
            positions = self.positions()
            start = min(positions.values(), default=0)
            recorder = self.application.recorder
            notifications = recorder.select_notifications(start + 1, limit, inclusive_of_start=True)
            if not notifications:
                return 0
            to_event = self.application.mapper.to_domain_event
            batch = [(n.id, to_event(n)) for n in notifications]
            ids = [n.id for n in notifications]
            failures: list[ProjectionFailed] = []
            committed: list[CardChange] = []
            # One transaction (one commit) for the batch; each projection in a savepoint of
            # its own, so one that fails rolls back alone and the others still move on.
            with self.store.transaction() as tx:
                for projection in self.projections:
                    position = positions[projection.name]
                    pending = batch[bisect.bisect_right(ids, position) :]
                    if not pending:
                        continue
                    tx.execute("SAVEPOINT projection")
                    try:
                        changes = self._apply(tx, projection, position, pending)
                    except _Overtaken:
                        tx.execute("ROLLBACK TO SAVEPOINT projection")
                        continue
                    except Exception as e:
                        tx.execute("ROLLBACK TO SAVEPOINT projection")
                        failure = ProjectionFailed(projection.name, pending[0][0], pending[-1][0])
                        failure.__cause__ = e
                        failures.append(failure)
                        continue
                    tx.execute("RELEASE SAVEPOINT projection")
                    committed += changes
            self._notify(committed)
            for failure in failures[1:]:
                logger.error("%s", failure, exc_info=failure.__cause__)
            if failures:
                raise failures[0]
            return len(batch)

    def _apply(
        self, tx: Transaction, projection: Projection, position: int, batch: Batch
    ) -> list[CardChange]:
        """The position moves with the rows, or neither does."""
        # Moving the position first takes the write lock before anything is read, and a
        # second runner on the same batch finds the position moved and applies nothing.
        moved = tx.execute(
            "UPDATE {aytada_positions} SET position = ? WHERE name = ? AND position = ?",
            (batch[-1][0], projection.name, position),
        )
        if moved != 1:
            raise _Overtaken
        projection.begin(tx, batch)
        changes: list[CardChange] = []
        for at, event in batch:
            changes += projection.apply(tx, at, event)
        changes += projection.flush(tx)
        return changes

    def _notify(self, changes: Sequence[CardChange]) -> None:
        if not changes:
            return
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:
                logger.exception("card change listener %r failed", listener)

    async def run(
        self,
        stop: asyncio.Event,
        poll_interval_s: float,
        limit: int = 500,
        doorbell: Doorbell | None = None,
    ) -> None:
        """Catch up until `stop` is set, polling every `poll_interval_s` or when rung."""
        doorbell = doorbell or Doorbell()
        while not stop.is_set():
            try:
                began = time.perf_counter()
                applied = await asyncio.to_thread(self.catch_up, limit)
                doorbell.worked(time.perf_counter() - began)
                wait = 0.0 if applied >= limit else poll_interval_s
            except Exception:
                wait = max(poll_interval_s, 1.0)
                logger.exception("read models did not catch up; trying again in %.1f s", wait)
            if wait:
                await doorbell.wait(stop, wait)

    def rebuild(self, progress: Progress | None = None, *, limit: int = 2000) -> int:
        """Empty every read model and replay the whole log; how many events were replayed."""
        with self._lock, self.store.transaction() as tx:
            for projection in self.projections:
                projection.clear(tx)
            tx.executemany(
                "UPDATE {aytada_positions} SET position = 0 WHERE name = ?",
                [(p.name,) for p in self.projections],
            )
        total = self.application.recorder.max_notification_id() or 0
        replayed = 0
        if progress:
            progress(0, total)
        while applied := self.catch_up(limit):
            replayed += applied
            done = min(self.positions().values(), default=0)
            total = max(total, done)
            if progress:
                progress(done, total)
        return replayed


class ReadModels(ReadModelRunner):
    """The service's read models, by name, with the runner that keeps them."""

    def __init__(self, application: Application[Any], store: ReadModelStore | None = None) -> None:
        store = store or ReadModelStore.of(application)
        self.videos = MyVideos(store)
        self.deleted = DeletedProjects(store)
        self.accounts = Accounts(store)
        self.scripts = MyScripts(store)
        self.images = MyImages(store)
        self.credits = CreditStatements(store)
        super().__init__(
            application,
            [self.videos, self.deleted, self.accounts, self.scripts, self.images, self.credits],
            store,
        )


def read_models(application: Application[Any]) -> ReadModels:
    """Every read model in the application's own database, their tables created if missing."""
    return ReadModels(application)
