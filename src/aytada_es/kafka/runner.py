"""One stage as a Kafka consumer group: decode, act once, commit after, dead-letter the rest."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError

from ..config import DEAD_LETTERS, PROJECT_EVENTS, Settings
from ..consumers.base import Stage, StageContext
from ..domain.errors import NotFound
from . import clients
from .envelope import TYPE_HEADER, Envelope

log = logging.getLogger(__name__)
HANDLER_ATTEMPTS = 5
COMMIT_INTERVAL_S = 1.0


class StageRunner:
    """One consumer group member for one stage; projects are worked on concurrently."""

    def __init__(
        self,
        stage: Stage,
        ctx: StageContext,
        settings: Settings,
        *,
        bootstrap: str,
        dead_letters: AIOKafkaProducer,
    ) -> None:
        self.stage = stage
        self.ctx = ctx
        self.bootstrap = bootstrap
        self.dead_letters = dead_letters
        self.topic = settings.topic(PROJECT_EVENTS)
        self.dlq_topic = settings.topic(DEAD_LETTERS)
        self.group_id = f"{settings.kafka_namespace}aytada.stage.{stage.name}"
        self.consumed = 0
        self.dead_lettered = 0
        self.running = False
        self._reacts_to = frozenset(t.encode() for t in stage.reacts_to)
        self.measure: Callable[[], AbstractContextManager[object]] = nullcontext

    async def run(self, stop: asyncio.Event) -> None:
        consumer = clients.consumer(self.bootstrap, group_id=self.group_id)
        rebalances = _Rebalances()
        consumer.subscribe([self.topic], listener=rebalances)
        # Offsets are committed after every batch the stage acted on; offsets of messages
        # it only passed over wait up to COMMIT_INTERVAL_S (reading them again is harmless).
        pending: dict[TopicPartition, int] = {}
        committed_at = time.monotonic()
        try:  # a start that fails or is cancelled half-way still closes its connections
            await clients.start(consumer)
            self.running = True
            while not stop.is_set():
                rebalanced = rebalances.count
                batch = await consumer.getmany(timeout_ms=200)
                acted = await self._work_through(batch)
                if rebalances.count != rebalanced:
                    # Offsets read under an assignment that is gone (or of a topic the broker
                    # lost) must not be committed: those messages come again, acted on once.
                    pending.clear()
                    continue
                pending.update({tp: records[-1].offset + 1 for tp, records in batch.items()})
                if pending and (acted or time.monotonic() - committed_at >= COMMIT_INTERVAL_S):
                    await self._commit(consumer, pending)
                    committed_at = time.monotonic()
            if pending:
                await self._commit(consumer, pending)
        finally:
            self.running = False
            await clients.to_the_end(consumer.stop())

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit the offsets; a commit the group's rebalance overtook is dropped."""
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # A member left or the broker lost the group: the consumer rejoins by itself.
            log.warning("stage %s: the group rebalanced before the commit", self.stage.name)
        offsets.clear()

    async def _work_through(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> bool:
        """Each project's messages in order, projects side by side; whether the stage acted."""
        by_project: dict[bytes | None, list[ConsumerRecord[bytes, bytes]]] = {}
        reacts_to = self._reacts_to
        for records in batch.values():
            for record in records:
                # Most messages are of types this stage passes over: skip them undecoded.
                declared = next((v for k, v in record.headers if k == TYPE_HEADER), None)
                if declared is None or declared in reacts_to:
                    by_project.setdefault(record.key, []).append(record)
            self.consumed += len(records)
        return any(await asyncio.gather(*(self._in_order(rs) for rs in by_project.values())))

    async def _in_order(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> bool:
        acted = False
        for record in records:
            acted = await self._record(record) or acted
        return acted

    async def _record(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        try:
            envelope = Envelope.from_bytes(record.value)
        except (ValidationError, ValueError) as e:
            await self._dead_letter(record, f"undecodable: {_short(e)}")
            return True
        if envelope.type not in self.stage.reacts_to:
            return False
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            try:
                with self.measure():  # times each call of the handler, counts those that raise
                    await self.stage.handle(envelope, self.ctx)
                return True
            except NotFound as e:
                await self._dead_letter(record, f"{type(e).__name__}: {e}")
                return True
            except Exception as e:
                log.exception(
                    "stage %s failed on %s v%d",
                    self.stage.name,
                    envelope.project_id,
                    envelope.version,
                )
                if attempt == HANDLER_ATTEMPTS:
                    await self._dead_letter(record, f"{type(e).__name__}: {_short(e)}")
                    return True
                await asyncio.sleep(min(0.2 * 2**attempt, 10))
        return True

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        log.warning(
            "stage %s: dead-lettering %s@%d: %s",
            self.stage.name,
            TopicPartition(record.topic, record.partition),
            record.offset,
            reason,
        )
        headers = [
            ("reason", reason.encode()),
            ("consumer", self.group_id.encode()),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self.dead_letters.send_and_wait(
            self.dlq_topic, value=record.value, key=record.key, headers=headers
        )
        self.dead_lettered += 1


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts the rebalances that took this member's partitions back."""

    def __init__(self) -> None:
        self.count = 0

    async def on_partitions_revoked(self, revoked: object) -> None:
        self.count += 1

    async def on_partitions_assigned(self, assigned: object) -> None:
        pass


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:500]
