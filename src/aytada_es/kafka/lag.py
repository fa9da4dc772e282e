"""How far consumer groups are behind on a topic, read from the broker without joining them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from . import clients

log = logging.getLogger(__name__)
LAG_TIMEOUT_S = 5.0
END_FETCHES, END_FETCH_WAIT_MS = 5, 200  # a partition's last message, read to find its end


async def group_lags(
    bootstrap: str, topic: str, groups: Iterable[str], *, timeout_s: float = LAG_TIMEOUT_S
) -> dict[str, int] | None:
    """Each group's lag: the messages of `topic` after its committed offsets (every message,
    before its first commit); None when no broker answers within `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _lags(bootstrap, topic, list(groups))
    except (KafkaError, OSError, TimeoutError) as e:
        log.debug("no lag from %s: %r", bootstrap, e)
        return None


async def log_bounds(
    reader: AIOKafkaConsumer, tps: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Each partition's first offset, and its end: the offset after its last message
    (`reader` joins no group).

    The bundled broker (Tansu, memory storage) answers a ListOffsets for the latest offset with
    the offset after the *first* message of the partition's last batch: the rest of a batch
    sent together (one save's events) would seem read already. The message before the answer
    is fetched, with the rest of its batch, to find where the partition really ends; a broker
    that answers right (Apache Kafka) is left as it answered.
    """
    ends: dict[TopicPartition, int] = dict(await reader.end_offsets(tps))
    starts: dict[TopicPartition, int] = dict(await reader.beginning_offsets(tps))
    held = [tp for tp in tps if ends[tp] > starts[tp]]
    if not held:
        return starts, ends
    reader.assign(held)
    for tp in held:
        reader.seek(tp, ends[tp] - 1)
    for _ in range(END_FETCHES):
        fetched = await reader.getmany(*held, timeout_ms=END_FETCH_WAIT_MS)
        for tp, records in fetched.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                held.remove(tp)
        if not held:
            break
    return starts, ends


async def _lags(bootstrap: str, topic: str, groups: list[str]) -> dict[str, int]:
    # Only the all-topics metadata request: naming a missing topic would create it.
    ends: dict[TopicPartition, int] = {}
    starts: dict[TopicPartition, int] = {}
    async with _reader(bootstrap, None) as reader:
        if topic in await reader.topics():
            partitions = reader.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            starts, ends = await log_bounds(reader, tps)
    lags = {}
    for group in groups:
        lag = 0
        if ends:
            # A member that never subscribes never joins: the group is left as it is.
            async with _reader(bootstrap, group) as member:
                for tp, end in ends.items():
                    committed = await member.committed(tp)
                    lag += max(end - (starts[tp] if committed is None else committed), 0)
        lags[group] = lag
    return lags


@contextlib.asynccontextmanager
async def _reader(bootstrap: str, group_id: str | None) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer that reads offsets only; stopped however the block ends, a failed start too."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        request_timeout_ms=int(LAG_TIMEOUT_S * 1000),
    )
    try:
        await clients.start(consumer)
        yield consumer
    finally:
        await clients.to_the_end(consumer.stop())
