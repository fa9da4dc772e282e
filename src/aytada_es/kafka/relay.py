"""The relay: the notification log is the outbox; every stored event goes to Kafka once or more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid5

from aiokafka import AIOKafkaProducer
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification, Tracking, TrackingRecorder

from .._waiting import Doorbell
from ..application import Studio
from ..config import ACCOUNT_EVENTS, PROJECT_EVENTS, Settings
from ..domain.account import Account
from .envelope import TYPE_HEADER, AccountEnvelope, Envelope, jsonable

log = logging.getLogger(__name__)
_EVENTS = uuid5(NAMESPACE_URL, "aytada-es:events")
TRACKING_NAME = "kafka-relay"


class Outgoing(NamedTuple):
    """One event as a Kafka message."""

    topic: str
    key: bytes
    value: bytes
    type: str


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """The same stored event always has the same id, however often it is published."""
    return uuid5(_EVENTS, f"{aggregate_id}:{version}")


class Relay:
    """Publishes stored events in notification order, then records how far it got.

    A restart resumes from the recorded position, so it may publish the last batch again
    (consumers act once per event) but never skips one.
    """

    def __init__(
        self, studio: Studio, settings: Settings, producer: AIOKafkaProducer, *, batch: int = 1000
    ) -> None:
        self.studio = studio
        self.producer = producer
        self.batch = batch
        self.project_topic = settings.topic(PROJECT_EVENTS)
        self.account_topic = settings.topic(ACCOUNT_EVENTS)
        self.tracking: TrackingRecorder = studio.factory.tracking_recorder()
        self.published = 0
        self.position = self.tracking.max_tracking_id(TRACKING_NAME) or 0

    def envelope(self, notification: Notification) -> Outgoing:
        """The topic, key, value and type header a notification is published as."""
        event = self.studio.mapper.to_domain_event(notification)
        assert isinstance(event, Aggregate.Event)
        data = jsonable(self.studio.event_state(event))
        aggregate_id = notification.originator_id
        assert isinstance(aggregate_id, UUID)
        fields: dict[str, Any] = {
            "event_id": event_id(aggregate_id, notification.originator_version),
            "position": notification.id,
            "version": notification.originator_version,
            "type": type(event).__name__,
            "occurred_at": event.timestamp,
            "data": data,
        }
        if isinstance(event, Account.Event):
            account = AccountEnvelope(account_id=aggregate_id, **fields)
            return Outgoing(self.account_topic, account.key, account.to_bytes(), account.type)
        envelope = Envelope(project_id=aggregate_id, **fields)
        return Outgoing(self.project_topic, envelope.key, envelope.to_bytes(), envelope.type)

    async def publish_batch(self) -> int:
        """Publish the next batch and record the position; returns how many were published."""
        notifications = await asyncio.to_thread(
            self.studio.recorder.select_notifications, self.position + 1, self.batch
        )
        if not notifications:
            return 0
        messages = await asyncio.to_thread(lambda: [self.envelope(n) for n in notifications])
        pending = [
            await self.producer.send(
                m.topic, value=m.value, key=m.key, headers=[(TYPE_HEADER, m.type.encode())]
            )
            for m in messages
        ]
        await asyncio.gather(*pending)
        last = notifications[-1].id
        await asyncio.to_thread(self.tracking.insert_tracking, Tracking(TRACKING_NAME, last))
        self.position = last
        self.published += len(notifications)
        return len(notifications)

    async def run(
        self, stop: asyncio.Event, poll_interval_s: float, doorbell: Doorbell | None = None
    ) -> None:
        """Publish until stopped; on a broker error wait and try the same batch again."""
        doorbell = doorbell or Doorbell()
        delay = poll_interval_s
        while not stop.is_set():
            try:
                began = time.perf_counter()
                published = await self.publish_batch()
                doorbell.worked(time.perf_counter() - began)
                delay = poll_interval_s
            except Exception:
                log.exception("relay: publishing failed at position %d; retrying", self.position)
                published = 0
                delay = min(max(delay * 2, 0.2), 5.0)
            if not published:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
