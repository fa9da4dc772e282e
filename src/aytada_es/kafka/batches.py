"""Publishing many messages at once: one record batch per partition instead of one send each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata

from .envelope import TYPE_HEADER

_KEYS_KEPT = 100_000


class Outgoing(NamedTuple):
    """One event as a Kafka message."""

    topic: str
    key: bytes
    value: bytes
    type: str


class BatchSender:
    """Sends messages in order per partition, chosen as the producer's own partitioner would."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._partitioner = DefaultPartitioner()
        # murmur2 is pure Python: remember each key's partition for a topic's partition count.
        self._partitions: dict[tuple[str, int, bytes], int] = {}

    async def send(self, messages: Sequence[Outgoing]) -> list[RecordMetadata]:
        """Publish `messages`; one acknowledgement (its first offset) per batch sent."""
        groups: dict[tuple[str, int], list[Outgoing]] = {}
        counts: dict[str, list[int]] = {}
        for message in messages:
            if message.topic not in counts:
                counts[message.topic] = sorted(await self.producer.partitions_for(message.topic))
            groups.setdefault((message.topic, self._partition(message, counts)), []).append(message)
        pending = []
        for (topic, partition), group in groups.items():
            batch = self.producer.create_batch()
            for message in group:
                if not _append(batch, message):  # full: send it, start the next
                    pending.append(
                        await self.producer.send_batch(batch, topic, partition=partition)
                    )
                    batch = self.producer.create_batch()
                    _append(batch, message)
            pending.append(await self.producer.send_batch(batch, topic, partition=partition))
        return list(await asyncio.gather(*pending))

    def _partition(self, message: Outgoing, counts: dict[str, list[int]]) -> int:
        partitions = counts[message.topic]
        known = (message.topic, len(partitions), message.key)
        partition = self._partitions.get(known)
        if partition is None:
            if len(self._partitions) >= _KEYS_KEPT:
                self._partitions.clear()
            partition = self._partitioner(message.key, partitions, partitions)
            self._partitions[known] = partition
        return partition


def _append(batch: BatchBuilder, message: Outgoing) -> bool:
    headers = [(TYPE_HEADER, message.type.encode())]
    added = batch.append(key=message.key, value=message.value, timestamp=None, headers=headers)
    return added is not None
