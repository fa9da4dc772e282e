"""The relay: the notification log is the outbox; every stored event goes to Kafka once or more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from uuid import UUID

from aiokafka import AIOKafkaProducer
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification, PersistenceError, Tracking, TrackingRecorder

from .._waiting import Doorbell, wait_or_timeout
from ..application import Studio
from ..domain.account import Account
from ..domain.errors import ConfigError
from ..notation import event_id
from ..tables import creating_tables
from .batches import BatchSender, Outgoing
from .envelope import envelope_bytes
from .relay_lock import RelayLock, relay_lock
from .topics import TopicNames
from .watch import BrokerWatch

log = logging.getLogger(__name__)
TRACKING_NAME = "kafka-relay"


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
    lost what was published (see `BrokerWatch`), the relay publishes the whole log again.

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
            bootstrap, mark=topics.relay_mark, topics=topics.created, partitions=partitions
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
        aggregate_id = notification.originator_id
        assert isinstance(aggregate_id, UUID)
        name = type(event).__name__
        account = isinstance(event, Account.Event)
        value = envelope_bytes(
            "account_id" if account else "project_id",
            aggregate_id,
            event_id=event_id(aggregate_id, notification.originator_version),
            position=notification.id,
            version=notification.originator_version,
            type=name,
            occurred_at=event.timestamp,
            data=self.studio.event_state(event),
        )
        topic = self.account_topic if account else self.project_topic
        return Outgoing(topic, str(aggregate_id).encode(), value, name)

    async def publish_batch(self) -> int:
        """Publish the next batch and record the position; returns how many were published."""
        notifications = await asyncio.to_thread(
            self.studio.recorder.select_notifications, self.position + 1, self.batch
        )
        if not notifications:
            return 0
        messages = await asyncio.to_thread(lambda: [self.envelope(n) for n in notifications])
        self.watch.acknowledged(await self.sender.send(messages))
        types = frozenset(m.type for m in messages)
        for listener in self.listeners:
            listener(types)
        last = notifications[-1].id
        if last > self.replay_until:  # a replay stays below the recorded position
            await asyncio.to_thread(self._track, last)
        self.republished += sum(1 for n in notifications if n.id <= self.replay_until)
        self.position = last
        self.published += len(notifications)
        return len(notifications)

    def _track(self, position: int) -> None:
        self.tracking.insert_tracking(Tracking(TRACKING_NAME, position))

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
                if self.replay_until and self.position >= self.replay_until:
                    await self._replayed()
                failed, delay = False, poll_interval_s
            except Exception:
                log.exception("relay: publishing failed at position %d; retrying", self.position)
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
        elif self.replay_until:
            return  # the mark is put when the replay is done
        elif not await self.watch.marked():
            reason = "the relay's mark topic is gone"
        else:
            return
        until = max(self.position, self.replay_until)
        await self.watch.restore_topics()
        # The producer still knows the lost topics' partitions. A broker that re-created a
        # topic with fewer (Tansu does, for any client that names it) acknowledges records sent
        # to the missing ones and keeps them where no consumer reads.
        await self.producer.client.force_metadata_update()
        if not until:
            await self.watch.put_mark()  # nothing was published yet
            return
        log.log(
            self.replay_level,
            "relay: the broker lost what was published (%s); publishing events 1..%d again",
            reason,
            until,
        )
        self.replay_until, self.position = until, 0
        self._republished_before = self.republished

    async def _replayed(self) -> None:
        """The broker holds every event again: mark it, and record positions again."""
        await self.watch.put_mark()
        log.log(
            self.replay_level,
            "relay: republished %d events (positions 1..%d); the broker holds them all again",
            self.republished - self._republished_before,
            self.replay_until,
        )
        self.replay_until = 0
