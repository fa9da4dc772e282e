"""Writes the chain heads down outside the event store as it grows (the relay role runs it).

Every `interval_s`, or as soon as `every` events were stored since the last anchor, and once
more at stop, each aggregate whose chain advanced gets one anchor: its newest stored event's
version and hash. They are appended to the anchor log (`adapters/anchors.py`) and then sent to
the `aytada.chain-anchors` topic, keyed by aggregate. The audit checks each chain against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from eventsourcing.persistence import Notification

from ._waiting import in_thread
from .adapters.anchors import Anchor, AnchorLog
from .adapters.chain import unseal
from .application import Studio

log = logging.getLogger(__name__)
BATCH = 10_000
CHECK_S = 0.5  # how often the store's growth is looked at


class Anchorer:
    """Appends the heads of the chains that advanced since the last anchor."""

    def __init__(
        self,
        studio: Studio,
        anchors: AnchorLog,
        *,
        interval_s: float,
        every: int,
        producer: AIOKafkaProducer | None = None,
        topic: str = "",
    ) -> None:
        self.studio = studio
        self.anchors = anchors
        self.interval_s = interval_s
        self.every = every
        self.producer = producer
        self.topic = topic

    def anchor(self) -> list[Anchor]:
        """Anchor everything stored since the last anchor; the anchors written."""
        written: list[Anchor] = []
        with self.anchors.appending() as (fd, position):
            while True:
                notifications = self.studio.recorder.select_notifications(position + 1, BATCH)
                if not notifications:
                    return written
                new = heads(notifications)
                self.anchors.append(fd, new)
                written += new
                position = notifications[-1].id

    async def run(self, stop: asyncio.Event) -> None:
        """Anchor as the store grows until `stop`, then once more."""
        try:
            since = asyncio.get_running_loop().time()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(CHECK_S, self.interval_s))
                if stop.is_set():
                    break
                stored = await in_thread(self._stored)
                anchored = await in_thread(self.anchors.last_position)
                now = asyncio.get_running_loop().time()
                if stored > anchored and (
                    stored - anchored >= self.every or now - since >= self.interval_s
                ):
                    await self._publish(await in_thread(self.anchor))
                    since = now
        finally:
            await self._publish(await in_thread(self.anchor))

    def _stored(self) -> int:
        return self.studio.recorder.max_notification_id() or 0

    async def _publish(self, anchors: Sequence[Anchor]) -> None:
        """Send the anchors to the topic; the log stays the reference when this fails."""
        if self.producer is None or not anchors:
            return
        try:
            for anchor in anchors:
                await self.producer.send(
                    self.topic, value=anchor.line().rstrip(b"\n"), key=anchor.aggregate_id.encode()
                )
            await self.producer.flush()
        except Exception as e:
            log.warning("%d anchors are in the log but not on %s: %r", len(anchors), self.topic, e)


def heads(notifications: Sequence[Notification]) -> list[Anchor]:
    """One anchor per aggregate: the newest of its events among these notifications."""
    newest: dict[str, Notification] = {}
    for notification in notifications:
        newest[str(notification.originator_id)] = notification
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    anchors = []
    for aggregate_id, notification in newest.items():
        sealed = unseal(notification.state)
        if sealed is None:
            continue  # written before the chain: nothing to anchor
        anchors.append(
            Anchor(aggregate_id, notification.originator_version, sealed[0], notification.id, at)
        )
    return sorted(anchors, key=lambda a: a.position)
