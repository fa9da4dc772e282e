"""A group's lag, read from the real broker: every message after its commit, however the
producer batched them."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from aytada_es.kafka import clients
from aytada_es.kafka.lag import group_lags, log_bounds

pytestmark = pytest.mark.kafka


async def produce_in_one_batch(broker: str, topic: str, count: int) -> list[int]:
    """`count` messages to partition 0 sent together (one save's events): their offsets."""
    producer = clients.producer(broker)
    try:
        await clients.start(producer)
        sent = [
            await producer.send(topic, b"event", key=b"project", partition=0) for _ in range(count)
        ]
        return [(await s).offset for s in sent]
    finally:
        await clients.to_the_end(producer.stop())


async def commit(broker: str, group: str, tp: TopicPartition, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    try:
        await clients.start(consumer)
        consumer.assign([tp])  # a standalone commit: no member of the group
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await clients.to_the_end(consumer.stop())


async def test_the_last_batch_of_several_messages_counts_whole(broker: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    first = await produce_in_one_batch(broker, topic, 1)
    last = await produce_in_one_batch(broker, topic, 4)
    assert last == [first[0] + 1 + i for i in range(4)]
    # Read up to the last batch's first message: three messages are still to come.
    await commit(broker, group, tp, last[0] + 1)
    assert await group_lags(broker, topic, [group]) == {group: 3}
    reader = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    try:
        await clients.start(reader)
        _, ends = await log_bounds(reader, [tp])
        assert ends[tp] == last[-1] + 1
    finally:
        await clients.to_the_end(reader.stop())
    await commit(broker, group, tp, last[-1] + 1)
    assert await group_lags(broker, topic, [group]) == {group: 0}


async def test_a_group_that_never_committed_lags_by_every_message(broker: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    await produce_in_one_batch(broker, topic, 3)
    assert await group_lags(broker, topic, [group]) == {group: 3}
    assert await group_lags(broker, f"missing-{topic}", [group]) == {group: 0}
