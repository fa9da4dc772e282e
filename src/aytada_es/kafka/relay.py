"""The relay: the notification log is the outbox; every stored event goes to Kafka once or more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from aiokafka import AIOKafkaProducer, TopicPartition
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    PersistenceError,
    Tracking,
    TrackingRecorder,
)

from .._waiting import Doorbell, wait_or_timeout
from ..adapters.sql import SQLStore
from ..adapters.sqlite import notifications_from
from ..application import Studio
from ..domain.account import Account
from ..domain.errors import ConfigError
from ..notation import event_id_text
from ..tables import creating_tables
from .batches import BatchSender, Outgoing
from .envelope import envelope_bytes
from .relay_lock import RelayLock, relay_lock
from .topics import TopicNames
from .watch import BrokerWatch

log = logging.getLogger(__name__)
TRACKING_NAME = "kafka-relay"
# What the topics promise to hold, as Kafka's `retention.ms` does: seven days by default.
DEFAULT_RETENTION_S = 7 * 24 * 3600.0
# Active projects' events are read this many projects at a time.
_ACTIVE_CHUNK = 500
# The position is SQLite's rowid, PostgreSQL's notification_id column.
_POSITION = {"sqlite": "rowid", "postgres": "notification_id"}


@dataclass(frozen=True)
class ActiveProjects:
    """The projects with a request in flight, as a read model knew them at `position`.

    Events after `position` are republished whatever their age: the read model had not seen
    them, so a request among them would otherwise be missed.
    """

    position: int
    project_ids: Collection[UUID]


@dataclass(frozen=True)
class Replay:
    """What a relay publishes again after a broker loss: first every event of the active
    `projects` up to `until` (so that their stages move at once), then the other events of the
    window, `start`..`until`. Each project's events keep their order."""

    start: int
    until: int
    active: list[Notification]
    projects: frozenset[UUID] = frozenset()


def _tracking_recorder(studio: Studio) -> TrackingRecorder:
    """The relays' tracking table, created once however many relays start together."""
    with creating_tables(studio.env):  # PostgreSQL
        try:
            return studio.factory.tracking_recorder()
        except PersistenceError:
            # SQLite: another relay was creating it at the same moment; it is there now.
            time.sleep(0.1)
            return studio.factory.tracking_recorder()


class Relay:
    """Publishes stored events in notification order, then records how far it got.

    Only the holder of the relay lock publishes; other relays stand by and take over when it
    dies. A restart or a takeover resumes from the recorded position, so it may publish the
    last batch again (consumers act once per event) but never skips one. When the broker has
    lost what was published (see `BrokerWatch`), the relay publishes again what the topics
    promise: the events of the retention window and every event of a project with a request
    in flight (`active`; without it, the whole log).

    Building one touches neither the database nor the broker: `prepare` (blocking) reads how
    far the relays got, and `run` starts from what is recorded anyway.
    """

    def __init__(
        self,
        studio: Studio,
        producer: AIOKafkaProducer,
        *,
        topics: TopicNames,
        partitions: int,
        check_s: float,
        bootstrap: str = "",
        batch: int = 1000,
        lock: RelayLock | None = None,
        retention_s: float = DEFAULT_RETENTION_S,
        active: Callable[[], ActiveProjects] | None = None,
        bundled_broker: bool = False,
    ) -> None:
        self.studio = studio
        # The bundled broker keeps topics in memory: publishing again after its restart is
        # expected (information); an external cluster losing them is not (a warning).
        self.replay_level = logging.INFO if bundled_broker else logging.WARNING
        self.producer = producer
        self.sender = BatchSender(producer)
        self.batch = batch
        self.project_topic = topics.project_events
        self.account_topic = topics.account_events
        self.check_s = check_s
        self.lock = lock or relay_lock(studio.env)
        # The broker's address is needed to watch it (`run`), not to make envelopes.
        self.bootstrap = bootstrap
        self.watch = BrokerWatch(
            bootstrap,
            mark=topics.relay_mark,
            topics=topics.created,
            partitions=partitions,
            configs=topics.retained(retention_s),
        )
        self._tracking: TrackingRecorder | None = None
        self.published = 0
        self.republished = 0
        # Called with the event types of each batch as soon as the broker acknowledged it.
        self.listeners: list[Callable[[frozenset[str]], None]] = []
        self.leading = False
        # While above `position`: publishing again, from the start, what the broker lost.
        self.replay_until = 0
        self._republished_before = 0
        self.position = 0
        self.retention_s = retention_s
        # Blocking: the projects with a request in flight (the open_steps read model).
        self.active = active
        # Of the last replay: where its window began; and the active projects' events,
        # published first (counted in `republished` too).
        self.replay_start = 0
        self.republished_active = 0
        self._active_before = 0
        self._record_when_replayed = 0
        self._failed_in_replay = False
        self.replayed_projects: frozenset[UUID] = frozenset()
        self._replayed_active: tuple[int, ...] = ()
        self._replayed_until = 0
        self._first: list[Notification] = []
        # Where each partition's share of the replay's window begins (after the active part).
        self._window_starts: dict[TopicPartition, int] = {}
        # Published since the broker was last found empty (what a broker roll weighs).
        self.published_since_loss = 0
        self.last_replay = 0

    def prepare(self) -> None:
        """Read how far the relays got, creating their tracking table if need be (blocking)."""
        self.position = self.tracked_position()

    @property
    def tracking(self) -> TrackingRecorder:
        """The relays' tracking table, created on first use (blocking)."""
        if self._tracking is None:
            self._tracking = _tracking_recorder(self.studio)
        return self._tracking

    def tracked_position(self) -> int:
        """How far the relays of this event store have published, as recorded (blocking)."""
        return self.tracking.max_tracking_id(TRACKING_NAME) or 0

    def envelope(self, notification: Notification) -> Outgoing:
        """The topic, key, value and type header a notification is published as."""
        # Personal text stays sealed on the topics: erasing its key erases it there too.
        event = self.studio.sealed_mapper.to_domain_event(notification)
        assert isinstance(event, Aggregate.Event)
        aggregate_id = str(notification.originator_id)
        name = type(event).__name__
        account = isinstance(event, Account.Event)
        value = envelope_bytes(
            "account_id" if account else "project_id",
            aggregate_id,
            event_id=event_id_text(aggregate_id, notification.originator_version),
            position=notification.id,
            version=notification.originator_version,
            type=name,
            occurred_at=event.timestamp,
            data=self.studio.event_state(event),
        )
        topic = self.account_topic if account else self.project_topic
        return Outgoing(topic, aggregate_id.encode(), value, name)

    def window_starts(self) -> dict[TopicPartition, int] | None:
        """While this relay republishes a replay's window (its active part is out): where the
        window begins in each partition (0 where none began yet); otherwise None.

        The stages of this process wait there until the window is out (`StageRunner.hold`):
        they handle the active projects' events first, and then leave the CPU to the relay
        rather than pass over the window's stale messages while it is published.
        """
        if not self.leading or not self.replay_until or self._first:
            return None
        return self._window_starts

    async def publish_batch(self) -> int:
        """Publish the next batch and record the position; returns how many were published."""
        if self._first:
            return await self._publish_active()
        selected = await asyncio.to_thread(
            notifications_from, self.studio.recorder, self.position + 1, self.batch
        )
        if not selected:
            return 0
        notifications = self._not_yet_replayed(selected)
        if not notifications:  # all of the active projects, published first
            self.position = selected[-1].id
            return len(selected)
        messages = await asyncio.to_thread(lambda: [self.envelope(n) for n in notifications])
        self.watch.acknowledged(await self.sender.send(messages))
        types = frozenset(m.type for m in messages)
        for listener in self.listeners:
            listener(types)
        last = selected[-1].id
        if last > self.replay_until:  # a replay stays below the recorded position
            await asyncio.to_thread(self._track, last)
        self.republished += sum(1 for n in notifications if n.id <= self.replay_until)
        self.position = last
        self.published += len(notifications)
        self.published_since_loss += len(notifications)
        return len(notifications)

    def _not_yet_replayed(self, selected: Sequence[Notification]) -> Sequence[Notification]:
        """Of a batch of the window, what the active projects' first part did not publish."""
        if not self.replay_until or not self.replayed_projects:
            return selected
        projects, until = self.replayed_projects, self.replay_until
        return [n for n in selected if n.id > until or n.originator_id not in projects]

    async def _publish_active(self) -> int:
        """Publish the next batch of the active projects' events (a replay's first part)."""
        notifications = self._first[: self.batch]
        messages = await asyncio.to_thread(lambda: [self.envelope(n) for n in notifications])
        self.watch.acknowledged(await self.sender.send(messages))
        # Taken off only once acknowledged: a batch that failed is sent again.
        self._first = self._first[len(notifications) :]
        if not self._first:
            self._window_starts = dict(self.watch.ends)
        types = frozenset(m.type for m in messages)
        for listener in self.listeners:
            listener(types)
        self.republished += len(notifications)
        self.republished_active += len(notifications)
        self.published += len(notifications)
        self.published_since_loss += len(notifications)
        return len(notifications)

    def replayed_positions(self) -> set[int]:
        """The positions the last replay republishes (for tests and diagnostics)."""
        return {*self._replayed_active, *range(self.replay_start, self._replayed_until + 1)}

    def replay(self, until: int, now: datetime | None = None) -> Replay:
        """What to publish again of positions 1..`until` after a broker loss (blocking).

        The window: every event stored within the retention, and every event after the
        position the active projects were known at. First: every event of the active projects.
        """
        if self.active is None:
            return Replay(1, until, [])
        active = self.active()
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=self.retention_s)
        start = min(self.first_stored_since(cutoff, until), active.position + 1)
        projects = frozenset(active.project_ids)
        return Replay(start, until, self.events_of(projects, until), projects)

    def first_stored_since(self, cutoff: datetime, until: int) -> int:
        """The first position up to `until` stored at or after `cutoff` (else `until` + 1).

        Positions come in the order events were stored, and so do their times: a binary search
        decodes about 20 events, however long the log.
        """
        select = self.studio.recorder.select_notifications
        low, high = 1, until + 1  # the answer lies in low..high
        while low < high:
            middle = (low + high) // 2
            found = select(middle, 1, stop=until)
            if not found:
                high = middle
                continue
            event = self.studio.sealed_mapper.to_domain_event(found[0])
            assert isinstance(event, Aggregate.Event)
            if event.timestamp >= cutoff:
                high = middle
            else:
                low = found[0].id + 1
        return low

    def events_of(self, project_ids: Collection[UUID], until: int) -> list[Notification]:
        """Every stored event of these aggregates up to position `until`, in log order."""
        if not project_ids:
            return []
        store = SQLStore.of(self.studio)
        table = getattr(self.studio.recorder, "events_table_name", "stored_events")
        ids = sorted(str(i) for i in project_ids)
        found: list[Notification] = []
        for offset in range(0, len(ids), _ACTIVE_CHUNK):
            chunk = ids[offset : offset + _ACTIVE_CHUNK]
            marks = ",".join("?" * len(chunk))
            position = _POSITION[store.dialect]
            columns = f"{position} AS id, originator_id, originator_version, topic, state"
            where = f"originator_id IN ({marks}) AND {position} <= ?"
            sql = f"SELECT {columns} FROM {{{table}}} WHERE {where}"  # noqa: S608 (ours)
            rows = store.query(sql, (*(_stored_id(store, i) for i in chunk), until))
            found += [
                Notification(
                    id=int(row["id"]),
                    originator_id=UUID(str(row["originator_id"])),
                    originator_version=int(row["originator_version"]),
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in rows
            ]
        return sorted(found, key=lambda n: n.id)

    def _track(self, position: int) -> None:
        self.tracking.insert_tracking(Tracking(TRACKING_NAME, position))

    def record_at_least(self, position: int) -> None:
        """Record `position` as published unless it or a later one already is (blocking)."""
        try:
            self._track(position)
        except IntegrityError:  # single-row tracking refuses a position at or below its own
            if self.tracked_position() < position:
                raise

    async def run(
        self,
        stop: asyncio.Event,
        poll_interval_s: float,
        doorbell: Doorbell | None = None,
        idle_poll_s: float | None = None,
    ) -> None:
        """Publish while this relay holds the relay lock; otherwise stand by and ask again.

        With nothing to publish the poll interval doubles up to `idle_poll_s` (default: it
        stays `poll_interval_s`); a ring of the doorbell wakes the relay at once.
        """
        if not self.bootstrap:
            raise ConfigError("a relay that publishes needs the broker's address to watch it")
        self.watch.client = self.producer.client  # its checks open no connection of their own
        standing_by = False
        while not stop.is_set():
            try:
                leading = await self.lock.acquire()
            except Exception:
                log.exception("relay: could not ask for the relay lock")
                leading = False
            if not leading:
                if not standing_by:
                    log.info("relay: another relay is publishing; standing by")
                    standing_by = True
                with contextlib.suppress(Exception):  # how far the active relay got (metrics)
                    self.position = await asyncio.to_thread(self.tracked_position)
                await wait_or_timeout(stop, self.check_s)
                continue
            standing_by = False
            try:
                polls = (poll_interval_s, idle_poll_s or poll_interval_s)
                await self._lead(stop, polls, doorbell or Doorbell())
            finally:
                self.leading = False
                await self.lock.release()

    async def _lead(
        self, stop: asyncio.Event, polls: tuple[float, float], doorbell: Doorbell
    ) -> None:
        """Publish until stopped or the lock is lost; on an error check the broker, try again."""
        self.position = await asyncio.to_thread(self.tracked_position)
        self.replay_until = 0
        self.leading = True
        log.info("relay: publishing from position %d", self.position)
        poll_interval_s, idle_poll_s = polls
        delay = poll_interval_s  # after an error; doubled up to 5 s
        poll = poll_interval_s  # with nothing to publish; doubled up to idle_poll_s
        checked: float | None = None  # check the broker before the first batch
        while not stop.is_set():
            try:
                if checked is None or time.monotonic() - checked >= self.check_s:
                    if not await self.lock.held():
                        log.warning("relay: lost the relay lock; standing by")
                        return
                    checked = time.monotonic()
                    await self._check_broker()
                began = time.perf_counter()
                published = await self.publish_batch()
                doorbell.worked(time.perf_counter() - began)
                if self.replay_until and self.position >= self.replay_until and not self._first:
                    await self._replayed()
                failed, delay = False, poll_interval_s
            except Exception:
                log.exception("relay: publishing failed at position %d; retrying", self.position)
                # Mid-replay the broker may have been lost again after acknowledging a batch
                # (with nothing sent since, no offset would go down): replay again.
                self._failed_in_replay = bool(self.replay_until)
                published = 0
                checked = None
                failed, delay = True, min(max(delay * 2, 0.2), 5.0)
            if self.watch.offsets_went_down:
                checked = None
            if published:
                poll = poll_interval_s
            elif failed:  # not sooner for a save
                await wait_or_timeout(stop, delay)
            else:
                await doorbell.wait(stop, min(poll, self.check_s))
                poll = min(poll * 2, idle_poll_s)

    async def _check_broker(self) -> None:
        """Start publishing the log again if the broker lost what was published."""
        if self.watch.offsets_went_down:
            reason = "acknowledged offsets went down"
        elif self._failed_in_replay:
            reason = "publishing failed during a replay"
        elif self.replay_until:
            return  # the mark is put when the replay is done
        elif not await self.watch.marked():
            reason = "the relay's mark topic is gone"
        else:
            return
        until = max(self.position, self.replay_until)
        await self.watch.restore_topics()
        self._failed_in_replay = False
        # The producer still knows the lost topics' partitions. A broker that re-created a
        # topic with fewer (Tansu does, for any client that names it) acknowledges records sent
        # to the missing ones and keeps them where no consumer reads.
        await self.producer.client.force_metadata_update()
        self.published_since_loss = 0
        self._record_when_replayed = 0
        if not until:  # nothing recorded as published: a new relay, or a restored store
            until = await asyncio.to_thread(lambda: self.studio.recorder.max_notification_id() or 0)
            self._record_when_replayed = until
        if not until:
            await self.watch.put_mark()  # nothing to publish yet
            return
        replay = await asyncio.to_thread(self.replay, until)
        if self._record_when_replayed:
            what, level = (
                "nothing is recorded as published (a new relay, a restored store)",
                logging.INFO,
            )
        else:
            what, level = f"the broker lost what was published ({reason})", self.replay_level
        log.log(
            level,
            "relay: %s; publishing the %d events of %d projects with a request in flight, then"
            " the others of %d..%d (the retention window)",
            what,
            len(replay.active),
            len(replay.projects),
            replay.start,
            until,
        )
        self.replay_until, self.position = until, replay.start - 1
        self.replay_start, self._first = replay.start, replay.active
        self._window_starts = dict(self.watch.ends)
        self.replayed_projects = replay.projects
        self._replayed_active = tuple(n.id for n in replay.active)
        self._replayed_until = until
        self._republished_before = self.republished
        self._active_before = self.republished_active

    async def _replayed(self) -> None:
        """The broker holds what the topics promise again: mark it, record positions again."""
        if self._record_when_replayed:  # a new relay: what it replayed counts as published
            await asyncio.to_thread(self.record_at_least, self._record_when_replayed)
            self._record_when_replayed = 0
        await self.watch.put_mark()
        self.last_replay = self.republished - self._republished_before
        log.log(
            self.replay_level,
            "relay: republished %d events (%d of projects with a request in flight, then the"
            " others of %d..%d); the broker holds what the topics promise again",
            self.last_replay,
            self.republished_active - self._active_before,
            self.replay_start,
            self.replay_until,
        )
        self.replay_until = 0


def _stored_id(store: SQLStore, aggregate_id: str) -> object:
    """An aggregate id as the events table holds it: hex text on SQLite, a UUID on PostgreSQL."""
    return UUID(aggregate_id).hex if store.dialect == "sqlite" else UUID(aggregate_id)
