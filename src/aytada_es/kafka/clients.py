"""Kafka client settings tuned for both Apache Kafka and the bundled Tansu broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

# Tansu answers a fetch only when its wait runs out, so the wait is a fetch's latency: a
# short one (produce to consume p50 8 ms) for a consumer that pauses while idle and is
# lightly loaded (consumers/runner.py), the long one otherwise.
SHORT_FETCH_WAIT_MS = 10
LONG_FETCH_WAIT_MS = 50
# Tansu answers a fetch only when fetch_max_wait_ms runs out (0-1 ms receives nothing),
# holds a group join for half the session timeout, and loses topics on restart: hence
# a short fetch wait, a short session, and frequent metadata refreshes.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "fetch_max_wait_ms": LONG_FETCH_WAIT_MS,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "request_timeout_ms": 10000,
    "metadata_max_age_ms": 5000,
    "max_poll_records": 500,
}
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 2,
    "request_timeout_ms": 10000,
    "metadata_max_age_ms": 5000,
}


def producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **{**PRODUCER_DEFAULTS, **overrides})


def session(timeout_ms: int) -> dict[str, Any]:
    """Consumer settings for a group session of `timeout_ms`: heartbeats at a sixth of it, and
    requests allowed longer than the half a join may be held."""
    return {
        "session_timeout_ms": timeout_ms,
        "heartbeat_interval_ms": max(250, timeout_ms // 6),
        "request_timeout_ms": max(CONSUMER_DEFAULTS["request_timeout_ms"], timeout_ms),
    }


def consumer(bootstrap: str, *topics: str, group_id: str, **overrides: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        **{**CONSUMER_DEFAULTS, **overrides},
    )


def set_fetch_wait(consumer: AIOKafkaConsumer, wait_ms: int) -> None:
    """Change a started consumer's `fetch_max_wait_ms`, from its next fetch on.

    aiokafka has no setting for it after start; its fetcher (0.14, pinned) reads this attribute
    for every request it builds.
    """
    consumer._fetcher._fetch_max_wait_ms = wait_ms


async def commit_as_member(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> bool:
    """Commit `offsets` once, as the group member the consumer is now: False if it is none.

    aiokafka's `commit()` tries again while the coordinator is away, and each attempt names the
    member the consumer is *then*. After a broker loss that is no member (a reset membership,
    whose commit a broker takes as a standalone one) or the new broker's group: either way the
    lost topics' offsets became the new group's, and its consumers skipped the replayed records
    below them. One attempt, checked as it is sent, cannot; a commit that fails is simply made
    again later (the offsets stay uncommitted). aiokafka 0.14 (pinned) builds the request from
    these attributes before its first await. Raises aiokafka's errors.
    """
    coordinator = consumer._coordinator
    if coordinator is None or not coordinator.member_id or coordinator.generation < 0:
        return False
    assignment = consumer._subscription.subscription.assignment
    if assignment is None or not set(offsets) <= assignment.tps:
        return False  # rebalancing: the offsets may be another member's now
    await coordinator._do_commit_offsets(
        assignment, {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}
    )
    return True


class _Startable(Protocol):
    async def start(self) -> None: ...


async def to_the_end(work: Awaitable[None]) -> None:
    """Await `work` in a task of its own: cancelled meanwhile, wait for it, then re-raise.

    aiokafka 0.14 leaks its bootstrap connection when `start()` is cancelled during the first
    metadata request, and its clients' `close()` swallows a cancel that lands while it waits
    for its metadata task: that left a killed relay running. Apart, neither can happen.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


async def start(client: _Startable) -> None:
    """Start a client; see `to_the_end`."""
    await to_the_end(client.start())
