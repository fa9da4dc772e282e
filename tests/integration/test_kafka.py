"""The relay and the stage consumers against the real bundled broker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import uuid
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from polling import read_topic, wait_for

from aytada_es.adapters.assets import AssetStore
from aytada_es.adapters.sql import SQLStore
from aytada_es.application import Studio
from aytada_es.bootstrap import make_relay, stage_runner
from aytada_es.config import Settings
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.registry import registered
from aytada_es.consumers.runner import StageRunner
from aytada_es.domain.project import Project
from aytada_es.kafka import clients
from aytada_es.kafka.batches import BatchSender, Outgoing
from aytada_es.kafka.relay import Relay
from aytada_es.kafka.topics import (
    ACCOUNT_EVENTS,
    DEAD_LETTERS,
    PROJECT_EVENTS,
    admin_client,
    ensure_topics,
)
from aytada_es.providers.base import Brief, Call, Providers
from aytada_es.providers.instant import instant_providers

pytestmark = pytest.mark.kafka


@asynccontextmanager
async def pipeline(
    studio: Studio, settings: Settings, broker: str, providers: Providers | None = None
) -> AsyncIterator[tuple[Relay, list[StageRunner]]]:
    await ensure_topics(
        broker, [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)], 6
    )
    producer = clients.producer(broker)
    await producer.start()
    assets = AssetStore(settings.assets_dir)
    ctx = StageContext(studio, assets, providers or instant_providers(assets))
    stop = asyncio.Event()
    relay = make_relay(studio, settings, producer, bootstrap=broker)
    runners = [
        stage_runner(r.stage, ctx, settings, broker, dead_letters=producer) for r in registered()
    ]
    tasks = [asyncio.create_task(relay.run(stop, 0.02))]
    tasks += [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        yield relay, runners
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await producer.stop()


def open_alice(studio: Studio, credits: int = 10_000) -> uuid.UUID:
    account, _ = studio.open_account("alice", credits=credits)
    return account.id


def new_project(studio: Studio, owner: uuid.UUID, autopilot: bool = True) -> Project:
    return studio.create_project(
        owner,
        title="Fizz",
        format="9:16",
        brief="Sparkling water",
        autopilot=autopilot,
        actor="user:alice",
    )


async def test_every_stored_event_is_published_with_the_contract_envelope_in_version_order(
    studio: Studio, settings: Settings, broker: str
) -> None:
    owner = open_alice(studio)
    projects = [new_project(studio, owner, autopilot=False) for _ in range(5)]
    for p in projects:
        studio.request_ideas(owner, p.id, count=2, actor="user:alice")
    await ensure_topics(broker, [settings.topic(PROJECT_EVENTS), settings.topic(ACCOUNT_EVENTS)], 6)
    producer = clients.producer(broker)
    await producer.start()
    try:
        relay = make_relay(studio, settings, producer, bootstrap=broker, batch=4)
        while await relay.publish_batch():
            pass
    finally:
        await producer.stop()
    total = studio.recorder.max_notification_id()
    project_records = await read_topic(broker, settings.topic(PROJECT_EVENTS), 15)
    account_records = await read_topic(broker, settings.topic(ACCOUNT_EVENTS), total - 15)
    assert len(project_records) == 15  # created, ideas requested, credits reserved, x5
    assert len(project_records) + len(account_records) == total
    versions: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in project_records:
        value = json.loads(record.value)
        assert set(value) == {
            "event_id",
            "position",
            "project_id",
            "version",
            "type",
            "occurred_at",
            "data",
        }
        assert record.key.decode() == value["project_id"]
        versions[value["project_id"]].append(value["version"])
        partitions[value["project_id"]].add(record.partition)
        assert value["type"] in {"ProjectCreated", "IdeasRequested", "CreditsReserved"}
    assert {str(p.id) for p in projects} == set(versions)
    assert all(v == [1, 2, 3] for v in versions.values())
    assert all(len(p) == 1 for p in partitions.values())
    assert relay.position == total


async def test_a_restarted_relay_resumes_from_its_tracked_position_without_gaps(
    studio: Studio, settings: Settings, broker: str
) -> None:
    owner = open_alice(studio)
    for _ in range(4):
        new_project(studio, owner, autopilot=False)
    await ensure_topics(broker, [settings.topic(PROJECT_EVENTS), settings.topic(ACCOUNT_EVENTS)], 6)
    producer = clients.producer(broker)
    await producer.start()
    try:
        first = make_relay(studio, settings, producer, bootstrap=broker, batch=3)
        await first.publish_batch()
        stopped_at = first.position
        second = make_relay(studio, settings, producer, bootstrap=broker, batch=3)  # after a crash
        await asyncio.to_thread(second.prepare)
        assert second.position == stopped_at == 3
        while await second.publish_batch():
            pass
    finally:
        await producer.stop()
    total = studio.recorder.max_notification_id()
    records = await read_topic(broker, settings.topic(PROJECT_EVENTS), 4)
    records += await read_topic(broker, settings.topic(ACCOUNT_EVENTS), total - 4)
    assert sorted(json.loads(r.value)["position"] for r in records) == list(range(1, total + 1))


def test_building_a_relay_touches_no_table_so_the_event_loop_never_waits_on_it(
    studio: Studio, settings: Settings
) -> None:
    store = SQLStore.of(studio)
    tracking = "tracking" if store.dialect == "sqlite" else "aytada_tracking"
    open_alice(studio)
    relay = make_relay(studio, settings, producer=None)  # type: ignore[arg-type]  # never sends
    assert store.missing([tracking]) == {tracking}
    assert relay.position == 0
    relay.prepare()  # blocking: the system runs it in a thread
    assert store.missing([tracking]) == set()


async def test_malformed_messages_go_to_the_dead_letter_topic_and_the_consumer_goes_on(
    studio: Studio, settings: Settings, broker: str
) -> None:
    owner = open_alice(studio)
    await ensure_topics(
        broker, [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)], 6
    )
    bad = [
        b"not json at all",
        b'{"type": "IdeasRequested"}',
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "position": "x",
                "project_id": "nope",
                "version": 1,
                "type": "IdeasRequested",
                "occurred_at": "now",
                "data": {},
            }
        ).encode(),
        b"{" * 200_000,
    ]
    producer = clients.producer(broker, max_request_size=2_000_000)
    await producer.start()
    try:
        for value in bad:
            await producer.send_and_wait(settings.topic(PROJECT_EVENTS), value=value, key=b"k")
    finally:
        await producer.stop()
    before = studio.recorder.max_notification_id()
    async with pipeline(studio, settings, broker) as (_, runners):
        project = new_project(studio, owner)
        await wait_for(lambda: studio.project(project.id).status == "completed", what="completion")
    # Each stage group (the six steps' and the webhooks') dead-letters each bad message once.
    assert len(runners) == 7
    dead = await read_topic(broker, settings.topic(DEAD_LETTERS), len(runners) * len(bad))
    assert len(dead) == len(runners) * len(bad)
    assert {r.value for r in dead} == set(bad)
    for record in dead:
        headers = dict(record.headers)
        assert headers["reason"].startswith(b"undecodable")
        assert headers["consumer"].startswith(settings.kafka_namespace.encode())
    # The garbage changed nothing: only the new project's and its account's events were stored.
    stored = studio.recorder.select_notifications(before + 1, 10_000)
    assert {n.originator_id for n in stored} == {project.id, owner}


async def test_an_event_delivered_twice_is_acted_on_once(
    studio: Studio, settings: Settings, broker: str
) -> None:
    owner = open_alice(studio)
    project = new_project(studio, owner, autopilot=False)
    studio.request_ideas(owner, project.id, count=3, actor="user:alice")
    request = studio.recorder.select_notifications(1, 100)
    async with pipeline(studio, settings, broker) as (relay, runners):
        ideas = next(r for r in runners if r.stage.name == "ideas")
        await wait_for(lambda: studio.project(project.id).status == "ideas_ready", what="ideas")
        await wait_for(lambda: relay.position == studio.recorder.max_notification_id())
        await wait_for(
            lambda: ideas.consumed == studio.project(project.id).version, what="all consumed"
        )
        consumed = ideas.consumed
        # Publish the project's first events again, as a relay restarted mid-batch would.
        again = [relay.envelope(n) for n in request if n.originator_id == project.id]
        for m in again:
            await relay.producer.send_and_wait(m.topic, value=m.value, key=m.key)
        await wait_for(lambda: ideas.consumed == consumed + len(again), what="redelivery")
    after = studio.project(project.id)
    assert after.status == "ideas_ready"
    assert after.generations == 1
    assert after.charged == 3
    assert after.reconciliation().consistent


class FlakyIdeas:
    """Fails the first `failures` calls, then answers like the instant provider."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def ideas(self, brief: Brief, count: int, call: Call) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"provider down (call {self.calls})")
        result: list[dict[str, Any]] = await self.inner.ideas(brief, count, call)
        return result


async def test_a_failing_step_is_retried_then_recorded_as_failed_and_can_be_retried(
    studio: Studio, settings: Settings, broker: str
) -> None:
    owner = open_alice(studio, credits=1000)
    assets = AssetStore(settings.assets_dir)
    base = instant_providers(assets)
    flaky = FlakyIdeas(base.ideas, failures=3)
    providers = Providers(
        "flaky", flaky, base.script, base.scenes, base.clips, base.voiceover, base.stitching
    )
    async with pipeline(studio, settings, broker, providers):
        project = new_project(studio, owner)
        await wait_for(lambda: studio.project(project.id).status == "failed", what="failure")
        failed = studio.project(project.id)
        assert failed.failure is not None
        assert failed.failure["step"] == "ideas"
        assert failed.failure["attempts"] == 3
        assert failed.failure["code"] == "internal"  # the raw error is in the audit only
        assert failed.still_reserved == 0 and failed.charged == 0
        assert studio.account(owner).balance == 1000
        studio.retry(owner, project.id, actor="user:alice")
        await wait_for(lambda: studio.project(project.id).status == "completed", what="retry")
    done = studio.project(project.id)
    assert flaky.calls == 4
    assert done.reconciliation().consistent and done.still_reserved == 0
    assert studio.account(owner).balance == 1000 - done.charged


async def test_batched_messages_land_where_the_producers_own_partitioner_puts_them(
    broker: str,
) -> None:
    topic = f"t{uuid.uuid4().hex[:10]}.batches"
    await ensure_topics(broker, [topic], 6)
    producer = clients.producer(broker)
    await producer.start()
    try:
        keys = [str(uuid.uuid4()).encode() for _ in range(40)]
        one_by_one = [await producer.send_and_wait(topic, b"{}", key=key) for key in keys]
        messages = [
            Outgoing(topic, key, f'{{"n": {n}}}'.encode(), "Tried")
            for n, key in enumerate(keys * 3)
        ]
        acknowledged = await BatchSender(producer).send(messages)
    finally:
        await producer.stop()
    records = await read_topic(broker, topic, len(keys) * 4)
    partition_of = {key: sent.partition for key, sent in zip(keys, one_by_one, strict=True)}
    batched = [r for r in records if r.value != b"{}"]
    assert len(batched) == len(messages)
    assert all(r.partition == partition_of[r.key] for r in batched)
    assert len(acknowledged) == len({r.partition for r in batched})  # one batch per partition
    for key in keys:  # each key's messages in the order they were given
        assert [json.loads(r.value)["n"] for r in batched if r.key == key] == sorted(
            json.loads(m.value)["n"] for m in messages if m.key == key
        )
        assert {dict(r.headers)["event-type"] for r in batched if r.key == key} == {b"Tried"}


async def test_a_cancel_during_a_clients_start_or_close_gets_through_and_leaks_nothing(
    broker: str,
) -> None:
    # aiokafka leaks a connection when a start is cancelled half-way, and its close swallows a
    # cancel: a killed relay asking for its mark went on running.
    async def ask() -> None:
        async with admin_client(broker) as admin:
            await admin.list_topics()

    cancelled, swallowed = 0, 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(300):  # cancels land in connecting, metadata, listing and closing
            task = asyncio.create_task(ask())
            await asyncio.sleep(step / 150000)
            if task.done():
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            cancelled += 1
            swallowed += not task.cancelled()
        await asyncio.sleep(0.05)
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
    assert cancelled >= 60 and swallowed == 0
