"""Keeps the read models up to date with the notification log, each event applied exactly once."""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from .._waiting import Doorbell
from ..adapters.sealed_text import PERSONAL, SealedTextMapper
from ..adapters.sql import SQLStore, Transaction
from ..adapters.sqlite import notifications_from
from ..domain.account import Account
from ..domain.project import Project
from . import stopped as stops
from .accounts import Accounts, AccountView, account_topics, folded
from .applied import AppliedPositions
from .base import (
    POSITIONS,
    TRACKING_DDL,
    VERSIONS,
    Batch,
    CardChange,
    DomainEvent,
    Projection,
    aggregate_id,
    forget_aggregate_ids,
)
from .credits import CreditStatements
from .deleted import DeletedProjects
from .feed import ChangeFeed
from .generations import (
    POINTER_DDL,
    REFRESH_S,
    Follower,
    ddl_of,
    epoch_of,
    lock_serving,
    secondary_indexes,
)
from .images import MyImages
from .open_steps import OpenSteps
from .scripts import MyScripts
from .status import ReadModelStatus, read_model_statuses
from .stopped import Backoff, Stopped, error_text, utc
from .videos import MyVideos

logger = logging.getLogger(__name__)

Listener = Callable[[Sequence[CardChange]], None]
Progress = Callable[[int, int], None]
# While the whole catch-up fails (the database does not answer), retries wait up to this long.
CATCH_UP_RETRY_MAX_S = 8.0
# Events per transaction of a rebuild. Measured (docs/benchmarks.md): 2,000 to 5,000 is
# fastest; bigger batches keep more decoded events alive for the collector to walk.
REBUILD_BATCH = 5000
# Account events not yet applied that a lookup at the log's head reads, at most.
ACCOUNTS_AHEAD_LIMIT = 1000


def _reads(projection: Projection, kind: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The personal fields of the events of class `kind` the projection reads: those it names,
    else every one of a class it acts on (or may: a class not found here)."""
    if kind in projection.reads:
        return projection.reads[kind]
    event_class = getattr(Project, kind, None) or getattr(Account, kind, None)
    if projection.events is None or not isinstance(event_class, type):
        return fields
    return fields if issubclass(event_class, projection.events) else ()


class ProjectionFailed(Exception):
    """Read models stopped at an event they could not apply; the others went on."""

    def __init__(self, stopped: Sequence[Stopped]) -> None:
        super().__init__("; ".join(s.describe() for s in stopped))
        self.stopped = list(stopped)


class _Overtaken(Exception):
    """Another runner applied this batch first."""


class _Wants(dict[type[Any], bool]):
    """Whether events of a class are among those a projection acts on, worked out once."""

    def __init__(self, events: tuple[type[Any], ...]) -> None:
        super().__init__()
        self.events = events

    def __missing__(self, kind: type[Any]) -> bool:
        wanted = self[kind] = issubclass(kind, self.events)
        return wanted


@dataclass(frozen=True)
class _Tracked:
    """A projection's row in the positions, versions and errors tables."""

    position: int
    version: int | None
    stopped: Stopped | None


@dataclass(frozen=True)
class _Failure:
    """The first event a projection could not apply, and why."""

    position: int
    error: BaseException


@dataclass
class _Round:
    """What one batch did."""

    events: int = 0
    # Another generation serves now: the batch was not applied; the store switched to it.
    switched: bool = False
    stopped: list[Stopped] = field(default_factory=list)
    # Projections the batch did not reach: they are ahead of a slower one's full batch.
    ahead: set[str] = field(default_factory=set)


class ReadModelRunner:
    """Applies new events to each projection from its own tracked position, by polling.

    A projection that cannot apply an event is stopped there and retried with `backoff`; the
    others go on without it, and it resumes by itself once the event applies.
    """

    def __init__(
        self,
        application: Application[Any],
        projections: Sequence[Projection],
        store: SQLStore | None = None,
        *,
        prepare: bool = True,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        generation: int | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique: {names}")
        self.application = application
        self.projections = list(projections)
        self.store = store or SQLStore.of(application)
        self.backoff = backoff or Backoff()
        self.clock = clock
        self._listeners: list[Listener] = []
        # One batch at a time per process: projections hold batch state on the instance.
        self._lock = threading.Lock()
        self._superseded: set[str] = set()
        # Requests waiting for `?min_position=` are woken by each batch this runner commits.
        self.applied = AppliedPositions(self.positions)
        # Without `generation`: the serving one, followed when a live rebuild switches it.
        self.fixed = generation is not None
        self.tables = tuple(
            dict.fromkeys(
                [POSITIONS, VERSIONS, stops.ERRORS, *(t for p in projections for t in p.tables)]
            )
        )
        self.follower = Follower(self.store, self.tables, refresh_s)
        if generation is not None:
            self.follower.follow(generation)
        else:
            if prepare:
                self.store.create(POINTER_DDL)
            self.follower.refresh()
            self.store.before = self.follower
        # Per projection: whether it acts on events of each class met so far.
        self._wants: dict[str, _Wants] = {}
        # Per set of projections: the personal fields they read (None: all of them).
        self._reads: dict[frozenset[str], Mapping[str, tuple[str, ...]]] = {}
        if prepare:
            self.prepare()

    @property
    def generation(self) -> int:
        """The generation of tables this runner keeps (and its store reads)."""
        return self.store.generation

    def epoch(self) -> str:
        """The serving epoch, re-read when it may have changed."""
        if not self.fixed:
            self.follower()
        return epoch_of(self.store.generation)

    def prepare(self) -> None:
        """Create the tables; start afresh each projection whose recorded version differs."""
        with self.store.creating() as tx:
            generation = tx.generation
            for statement in (*TRACKING_DDL, *stops.ERRORS_DDL):
                tx.execute(ddl_of(generation, statement))
            recorded = {
                row["name"]: int(row["version"])
                for row in tx.query("SELECT name, version FROM {aytada_projection_versions}")
            }
            # A read model with no position yet has never run here: nothing to make anew.
            started = {row["name"] for row in tx.query("SELECT name FROM {aytada_positions}")}
            for projection in self.projections:
                # Releases before versions recorded none: their projections were version 1.
                was = recorded.get(projection.name, 1)
                # A generation built for a live rebuild is new: nothing in it to make anew.
                if was != projection.version and not self.fixed and projection.name in started:
                    self._recreate(tx, projection, was)
                for statement in projection.ddl:
                    tx.execute(ddl_of(generation, statement))
            tx.executemany(
                "INSERT INTO {aytada_positions} (name, position) VALUES (?, 0)"
                " ON CONFLICT (name) DO NOTHING",
                [(p.name,) for p in self.projections],
            )
            tx.upsert(
                VERSIONS, "name", [{"name": p.name, "version": p.version} for p in self.projections]
            )

    def _recreate(self, tx: Transaction, projection: Projection, was: int) -> None:
        for table in projection.tables:
            tx.execute(f"DROP TABLE IF EXISTS {{{table}}}")
        tx.execute("UPDATE {aytada_positions} SET position = 0 WHERE name = ?", (projection.name,))
        stops.clear(tx, [projection.name])
        logger.warning(
            "read model %r was version %d and is now %d: its tables are made anew and it "
            "rebuilds itself from the start of the log (with no downtime instead: run "
            "`aytada-es projections rebuild --live` with the new release before starting it)",
            projection.name,
            was,
            projection.version,
        )

    def erase(self, project_ids: Sequence[str]) -> None:
        """Overwrite the personal text of these projects in every read model, in one transaction."""
        with self.store.transaction() as tx:
            for projection in self.projections:
                projection.erase(tx, project_ids)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with the card changes of every committed batch; returns an unsubscribe.

        It runs in the runner's thread: hand the changes over to the event loop, do not block.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def answers(self) -> None:
        """Ask the read models' database a trivial question; raises when it cannot answer."""
        self.store.query("SELECT 1 AS up")

    def positions(self) -> dict[str, int]:
        """Each projection's tracked position."""
        rows = self.store.query("SELECT name, position FROM {aytada_positions}")
        tracked = {row["name"]: int(row["position"]) for row in rows}
        return {p.name: tracked.get(p.name, 0) for p in self.projections}

    def statuses(self) -> list[ReadModelStatus]:
        """Each projection's position, lag and stop, as stored (a few queries)."""
        names = [p.name for p in self.projections]
        return read_model_statuses(self.application, self.store, names, self.clock())

    def catch_up(self, limit: int = 500) -> int:
        """Apply a batch to each projection not waiting to retry; how many events it read."""
        # A projection that fails is stopped, recorded and logged in `_catch_up`; never raised.
        with self._lock:
            try:
                done = self._catch_up(limit)
                if done.switched:
                    done = self._catch_up(limit)
                if done.ahead:
                    # A projection far behind (it just resumed, or was rebuilt) holds back nobody.
                    done.events += self._catch_up(limit, only=done.ahead).events
            finally:
                forget_aggregate_ids()
        if done.events:
            self.applied.advanced()
        return done.events

    def _tracked(self) -> tuple[int, dict[str, _Tracked]]:
        """The generation read, and each projection's row in it."""
        with self.store.reading() as tx:
            rows = tx.query(
                f"SELECT p.name, p.position, v.version, {stops.JOINED_COLUMNS}"  # noqa: S608
                f" FROM {{{POSITIONS}}} p LEFT JOIN {{{VERSIONS}}} v ON v.name = p.name"
                f" LEFT JOIN {{{stops.ERRORS}}} e ON e.name = p.name"
            )
            generation = tx.generation
        found = {
            row["name"]: _Tracked(
                int(row["position"]),
                None if row["version"] is None else int(row["version"]),
                stops.from_row(row),
            )
            for row in rows
        }
        return generation, {
            p.name: found.get(p.name, _Tracked(0, None, None)) for p in self.projections
        }

    def _serves(self, tx: Transaction, generation: int) -> bool:
        """Whether the transaction's generation serves, and is the one `generation` was read in.

        A runner of the serving generation locks the pointer until its batch commits: a live
        rebuild's switch waits for the batch, and the next batch goes to the new generation.
        """
        if self.fixed:
            return tx.generation == generation
        serving = lock_serving(tx, self.store.dialect)
        if serving != tx.generation:
            self.follower.follow(serving)
            return False
        return tx.generation == generation

    def _due(self, projection: Projection, tracked: _Tracked, now: float) -> bool:
        """Whether to give it this batch: not waiting out a back-off, and of this version."""
        if tracked.version is not None and tracked.version != projection.version:
            if projection.name not in self._superseded:
                self._superseded.add(projection.name)
                logger.warning(
                    "read model %r is version %d in the store and %d here: left alone "
                    "(a process of another release keeps it)",
                    projection.name,
                    tracked.version,
                    projection.version,
                )
            return False
        return tracked.stopped is None or tracked.stopped.next_retry <= now

    def _catch_up(
        self,
        limit: int,
        *,
        leave_out: frozenset[str] = frozenset(),
        only: set[str] | None = None,
        durable: bool = True,
    ) -> _Round:
        now = self.clock()
        generation, tracked = self._tracked()
        due = [
            p
            for p in self.projections
            if p.name not in leave_out
            and (only is None or p.name in only)
            and self._due(p, tracked[p.name], now)
        ]
        if not due:
            return _Round()
        start = min(tracked[p.name].position for p in due)
        notifications = notifications_from(self.application.recorder, start + 1, limit)
        if not notifications:
            return _Round()
        batch, undecodable = self._decode(notifications, self._personal_reads(due))
        ids = [at for at, _ in batch]
        kinds = [event.__class__ for _, event in batch]
        states = {n.id: n.state for n in notifications}
        for projection in due:
            projection.stored(states)
        end = ids[-1] if ids else start
        failures: dict[str, _Failure] = {}
        resumed: list[tuple[Stopped, int]] = []
        committed: list[CardChange] = []
        done = _Round(events=len(batch))
        # One transaction (one commit) for the batch; each projection in a savepoint of
        # its own, so one that fails rolls back alone and the others still move on.
        with self.store.transaction(durable=durable) as tx:
            if not self._serves(tx, generation):
                return _Round(switched=True)
            for projection in due:
                was = tracked[projection.name]
                if was.position >= end and len(notifications) >= limit:
                    done.ahead.add(projection.name)
                first = bisect.bisect_right(ids, was.position)
                pending, pending_kinds = batch[first:], kinds[first:]
                try:
                    changes, reached, failure = self._advance(
                        tx, projection, was.position, pending, pending_kinds
                    )
                except _Overtaken:
                    continue
                committed += changes
                if failure is None and undecodable and end <= reached < undecodable.position:
                    failure = undecodable  # its next event is the one nobody can read
                if failure is not None:
                    failures[projection.name] = failure
                elif was.stopped is not None and reached >= was.stopped.position:
                    stops.clear(tx, [projection.name])
                    resumed.append((was.stopped, reached))
        self._notify(committed)
        for before, reached in resumed:
            logger.warning(
                "read model %r resumed: it applied event %d after %d failed attempts over %.0f s,"
                " and is at %d",
                before.name,
                before.position,
                before.attempts,
                now - before.since,
                reached,
            )
        done.stopped = [
            self._stop(name, failure, tracked[name].stopped, now)
            for name, failure in failures.items()
        ]
        return done

    def _decode(
        self,
        notifications: Sequence[Notification],
        reads: Mapping[str, tuple[str, ...]] | None = None,
    ) -> tuple[Batch, _Failure | None]:
        """The events up to the first one that cannot be decoded, and that one's failure.

        Only the personal fields in `reads` are opened (None: all); the others stay sealed.
        """
        mapper = self.application.mapper
        to_event: Callable[[Notification], DomainEvent] = mapper.to_domain_event
        if reads is not None and isinstance(mapper, SealedTextMapper):
            to_event = functools.partial(mapper.opening, only=reads)
        batch: list[tuple[int, DomainEvent]] = []
        for n in notifications:
            try:
                batch.append((n.id, to_event(n)))
            except Exception as e:
                return batch, _Failure(n.id, e)
        return batch, None

    def _personal_reads(self, due: Sequence[Projection]) -> Mapping[str, tuple[str, ...]]:
        """The personal fields these projections read, by event class name (`Projection.reads`)."""
        names = frozenset(p.name for p in due)
        if names not in self._reads:
            self._reads[names] = {
                kind: tuple(f for f in fields if any(f in _reads(p, kind, fields) for p in due))
                for kind, fields in PERSONAL.items()
            }
        return self._reads[names]

    def _advance(
        self,
        tx: Transaction,
        projection: Projection,
        position: int,
        pending: Batch,
        kinds: Sequence[type[Any]],
    ) -> tuple[list[CardChange], int, _Failure | None]:
        """Apply the pending events: the changes, the position reached, and what failed."""
        if not pending:
            return [], position, None
        tx.execute("SAVEPOINT projection")
        try:
            changes = self._apply(tx, projection, position, pending, kinds)
        except _Overtaken:
            tx.execute("ROLLBACK TO SAVEPOINT projection")
            raise
        except Exception:
            tx.execute("ROLLBACK TO SAVEPOINT projection")
        else:
            tx.execute("RELEASE SAVEPOINT projection")
            return changes, pending[-1][0], None
        # Again one event at a time: the ones before the culprit are kept, and the stop
        # names the very event that fails, whether `apply` or `flush` raised.
        changes = []
        for event in pending:
            tx.execute("SAVEPOINT projection_event")
            try:
                changes += self._apply(tx, projection, position, [event], [event[1].__class__])
            except Exception as e:
                tx.execute("ROLLBACK TO SAVEPOINT projection_event")
                if isinstance(e, _Overtaken):
                    raise
                return changes, position, _Failure(event[0], e)
            tx.execute("RELEASE SAVEPOINT projection_event")
            position = event[0]
        return changes, position, None

    def _apply(
        self,
        tx: Transaction,
        projection: Projection,
        position: int,
        batch: Batch,
        kinds: Sequence[type[Any]],
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
        batch = self._wanted(projection, batch, kinds)
        projection.begin(tx, batch)
        changes: list[CardChange] = []
        apply = projection.apply
        for at, event in batch:
            if found := apply(tx, at, event):
                changes += found
        changes += projection.flush(tx)
        return changes

    def _wanted(self, projection: Projection, batch: Batch, kinds: Sequence[type[Any]]) -> Batch:
        """The events of the batch (of these classes) the projection acts on (`events`)."""
        if projection.events is None:
            return batch
        wants = self._wants.get(projection.name)
        if wants is None:
            wants = self._wants[projection.name] = _Wants(projection.events)
        # In C: a lookup per event, by its class (a miss is worked out once, by `__missing__`).
        return list(compress(batch, map(wants.__getitem__, kinds)))

    def _stop(self, name: str, failure: _Failure, before: Stopped | None, now: float) -> Stopped:
        """Record and log a failure, once per back-off step."""
        again = before is not None and before.position == failure.position
        attempts = before.attempts + 1 if before is not None and again else 1
        delay = self.backoff.delay(attempts)
        stopped = Stopped(
            name=name,
            position=failure.position,
            error=error_text(failure.error),
            since=before.since if before is not None and again else now,
            attempts=attempts,
            next_retry=now + delay,
        )
        with self.store.transaction() as tx:
            stops.record(tx, stopped)
        if attempts == 1:
            logger.error(
                "read model %r stopped: it cannot apply event %d (%s); it tries again in %.1f s,"
                " the other read models go on",
                name,
                failure.position,
                stopped.error,
                delay,
                exc_info=failure.error,
            )
        else:
            logger.error(
                "read model %r still cannot apply event %d (attempt %d): %s; next try at %s",
                name,
                failure.position,
                attempts,
                stopped.error,
                utc(stopped.next_retry),
            )
        return stopped

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
        idle_poll_s: float | None = None,
    ) -> None:
        """Catch up until `stop` is set, polling every `poll_interval_s` or when rung.

        With nothing new the poll interval doubles up to `idle_poll_s` (default: it stays
        `poll_interval_s`).
        """
        doorbell = doorbell or Doorbell()
        failed = 0  # catch-ups in a row that raised (a projection that fails does not raise)
        poll = poll_interval_s
        while not stop.is_set():
            try:
                began = time.perf_counter()
                applied = await asyncio.to_thread(self.catch_up, limit)
                doorbell.worked(time.perf_counter() - began)
                poll = poll_interval_s if applied else min(poll * 2, idle_poll_s or poll)
                wait = 0.0 if applied >= limit else poll
                if failed:
                    logger.warning("read models catch up again after %d failed attempts", failed)
                    failed = 0
            except Exception as e:
                failed += 1
                wait = max(poll_interval_s, min(2.0 ** (failed - 1), CATCH_UP_RETRY_MAX_S))
                if failed == 1:
                    logger.exception("read models did not catch up; trying again in %.1f s", wait)
                else:
                    logger.error(
                        "read models still cannot catch up (attempt %d): %s; next try in %.1f s",
                        failed,
                        error_text(e),
                        wait,
                    )
            if wait:
                await doorbell.wait(stop, wait)

    def rebuild(self, progress: Progress | None = None, *, limit: int = REBUILD_BATCH) -> int:
        """Empty every read model and replay the whole log; how many events were replayed."""
        # One that cannot apply an event stops there and is left out; the others are rebuilt
        # to the end, then `ProjectionFailed` names the ones that stopped.
        names = [p.name for p in self.projections]
        with self._lock:
            with self.store.transaction() as tx:
                for projection in self.projections:
                    projection.clear(tx)
                tx.executemany(
                    "UPDATE {aytada_positions} SET position = 0 WHERE name = ?",
                    [(name,) for name in names],
                )
                stops.clear(tx, names)
                # Plain indexes are made once at the end, cheaper than kept row by row.
                generation = tx.generation
                indexes = secondary_indexes(
                    generation, (s for p in self.projections for s in p.ddl)
                )
                for index, _ in indexes:
                    tx.execute(f"DROP INDEX IF EXISTS {self.store.qualified(index)}")
            try:
                replayed, stopped = self._replay(names, progress, limit)
            finally:
                with self.store.transaction() as tx:
                    if tx.generation == generation:  # else a live rebuild made it serve no more
                        for _, statement in indexes:
                            tx.execute(statement)
        self.applied.advanced()
        if stopped:
            raise ProjectionFailed(stopped)
        return replayed

    def _replay(
        self, names: list[str], progress: Progress | None, limit: int
    ) -> tuple[int, list[Stopped]]:
        """Replay the whole log into the emptied read models: how many events, and the read
        models that stopped at an event they could not apply."""
        total = self.application.recorder.max_notification_id() or 0
        replayed = 0
        stopped: dict[str, Stopped] = {}
        if progress:
            progress(0, total)
        while True:
            try:
                # A batch lost to a power cut is replayed: no need to wait for the disk.
                done = self._catch_up(limit, leave_out=frozenset(stopped), durable=False)
            finally:
                forget_aggregate_ids()
            stopped.update((s.name, s) for s in done.stopped)
            if done.switched:
                continue  # a live rebuild switched meanwhile: go on in the serving one
            if not done.events and not done.stopped:
                break
            replayed += done.events
            positions = self.positions()
            reached = min((positions[n] for n in names if n not in stopped), default=total)
            total = max(total, reached)
            if progress:
                progress(reached, total)
        return replayed, list(stopped.values())


class ReadModels(ReadModelRunner):
    """The service's read models, by name, with the runner that keeps them."""

    def __init__(
        self,
        application: Application[Any],
        store: SQLStore | None = None,
        *,
        prepare: bool = True,
        generation: int | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        store = store or SQLStore.of(application)
        self.videos = MyVideos(store)
        self.feed = ChangeFeed(store)  # the change feed My Videos appends to
        self.deleted = DeletedProjects(store)
        self.accounts = Accounts(store)
        self.scripts = MyScripts(store)
        self.images = MyImages(store)
        events = getattr(application.recorder, "events_table_name", "stored_events")
        own = store.datastore is getattr(application.recorder, "datastore", None)
        self.credits = CreditStatements(
            store, events_table=events, events_store=None if own else SQLStore.of(application)
        )
        self.open_steps = OpenSteps(store)
        super().__init__(
            application,
            [
                self.videos,
                self.deleted,
                self.accounts,
                self.scripts,
                self.images,
                self.credits,
                self.open_steps,
            ],
            store,
            prepare=prepare,
            generation=generation,
            refresh_s=refresh_s,
        )

    def account_by_token_hash(self, token_hash: str) -> AccountView | None:
        """The account whose token has this hash, as of the log's head; reads, never writes.

        The read model's row when it has one (taken as it is: a token rotated away stays a
        miss); else the account events it has not applied yet, folded in memory.
        """
        return self._at_head(
            lambda: self.accounts.account_by_token_hash(token_hash),
            lambda view: view["token_hash"] == token_hash,
        )

    def account(self, account_id: object) -> AccountView | None:
        """An account by id, as of the log's head, the way `account_by_token_hash` finds it."""
        return self._at_head(
            lambda: self.accounts.account(account_id),
            lambda view: view["id"] == str(account_id),
        )

    def _at_head(
        self, lookup: Callable[[], AccountView | None], wanted: Callable[[AccountView], bool]
    ) -> AccountView | None:
        """The read model's answer; on a miss, its position, the row again, the events after."""
        found = lookup()
        if found is not None:
            return found
        rows = self.store.query(
            "SELECT position FROM {aytada_positions} WHERE name = ?", (self.accounts.name,)
        )
        applied = int(rows[0]["position"]) if rows else 0
        # Looked up again after reading the position: an event the runner applies in between
        # is then in the row, or after `applied`, never in neither.
        found = lookup()
        if found is not None:
            return found
        return next((view for view in self._accounts_ahead(applied) if wanted(view)), None)

    def _accounts_ahead(self, position: int) -> list[AccountView]:
        """The accounts that events after `position` change, folded in memory."""
        notifications = self.application.recorder.select_notifications(
            position + 1, ACCOUNTS_AHEAD_LIMIT, topics=account_topics(), inclusive_of_start=True
        )
        events, _ = self._decode(notifications)  # up to the first it cannot read
        if not events:
            return []
        known = self.accounts.some(aggregate_id(event) for _, event in events)
        return folded(known, events)


def read_models(application: Application[Any]) -> ReadModels:
    """Every read model in the application's own database, their tables created if missing."""
    return ReadModels(application)
