"""An idle system is quiet: stage consumers pause, the relay and read models poll slowly, and
a save, a ring or another process's event still gets through (at once, or within a bound)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from polling import wait_for

from aytada_es._waiting import Doorbell
from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap, make_relay, stage_runner
from aytada_es.config import Settings
from aytada_es.consumers import runner as stage_runners
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.registry import BUILT_IN
from aytada_es.consumers.runner import IDLE_CHECK_S, StageRunner
from aytada_es.consumers.stage import Stage
from aytada_es.kafka import clients
from aytada_es.kafka.envelope import TYPE_HEADER, Envelope
from aytada_es.kafka.topics import ACCOUNT_EVENTS, DEAD_LETTERS, PROJECT_EVENTS, ensure_topics
from aytada_es.projections.runner import read_models
from aytada_es.providers.instant import instant_providers

pytestmark = pytest.mark.kafka


class Listener(Stage):
    """Remembers the events it was given."""

    name = "listener"
    reacts_to = frozenset({"IdeasRequested"})

    def __init__(self) -> None:
        self.heard: list[Envelope] = []

    async def handle(self, envelope: Envelope, ctx: StageContext) -> None:
        self.heard.append(envelope)


def request(project_id: uuid.UUID) -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        position=1,
        project_id=project_id,
        version=2,
        type="IdeasRequested",
        occurred_at=datetime.now(UTC),
        data={},
    )


@asynccontextmanager
async def listening(
    studio: Studio, settings: Settings, broker: str
) -> AsyncIterator[tuple[StageRunner, Listener]]:
    """A stage runner with a bell, as beside the relay of `serve`, running until the end."""
    topics = [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)]
    await ensure_topics(broker, topics, 6)
    producer = clients.producer(broker)
    await producer.start()
    stage = Listener()
    assets = AssetStore(settings.assets_dir)
    ctx = StageContext(studio, assets, instant_providers(assets))
    runner = stage_runner(stage, ctx, settings, broker, dead_letters=producer, bell=Doorbell())
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner, stage
    finally:
        stop.set()
        await task
        await producer.stop()


async def publish(settings: Settings, broker: str, envelope: Envelope) -> None:
    """As another process's relay would: no ring in this process."""
    producer = clients.producer(broker)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(PROJECT_EVENTS),
            value=envelope.to_bytes(),
            key=envelope.key,
            headers=[(TYPE_HEADER, envelope.type.encode())],
        )
    finally:
        await producer.stop()


async def test_a_paused_stage_gets_what_another_process_published_within_its_idle_check(
    studio: Studio, settings: Settings, broker: str
) -> None:
    async with listening(studio, settings, broker) as (runner, stage):
        await wait_for(lambda: runner.paused, what="the idle consumer to pause")
        sent = request(uuid.uuid4())
        began = time.monotonic()
        await publish(settings, broker, sent)
        await wait_for(lambda: bool(stage.heard), timeout_s=20, what="the event")
        assert time.monotonic() - began < IDLE_CHECK_S + 2
        assert [e.event_id for e in stage.heard] == [sent.event_id]
        await wait_for(lambda: runner.paused, what="the consumer to pause again")


async def test_a_ring_wakes_a_paused_stage_at_once(
    studio: Studio, settings: Settings, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the ring the event would wait for the next idle check, a minute away.
    monkeypatch.setattr(stage_runners, "IDLE_CHECK_S", 60.0)
    async with listening(studio, settings, broker) as (runner, stage):
        await wait_for(lambda: runner.paused, what="the idle consumer to pause")
        sent = request(uuid.uuid4())
        await publish(settings, broker, sent)
        runner.notice(frozenset({"CreditsReserved", "IdeasRequested"}))
        await wait_for(lambda: bool(stage.heard), timeout_s=20, what="the event")
        assert [e.event_id for e in stage.heard] == [sent.event_id]


async def test_an_idle_system_pauses_every_stage_and_a_project_still_completes(
    settings: Settings, broker: str
) -> None:
    system = bootstrap(settings, bootstrap_servers=broker)
    try:
        async with system.running():
            runners = system.runners

            def all_paused() -> bool:
                running = list(runners.values())
                return len(running) == len(BUILT_IN) and all(r.paused for r in running)

            await wait_for(all_paused, what="every stage consumer to pause")
            studio = system.studio
            owner, _ = studio.open_account("alice", credits=1000)
            project = studio.create_project(
                owner.id,
                title="Fizz",
                format="9:16",
                brief="Sparkling",
                autopilot=True,
                actor="user:alice",
            )
            await wait_for(
                lambda: studio.project(project.id).status == "completed", what="completion"
            )
            await wait_for(all_paused, what="every stage consumer to pause again")
    finally:
        system.close()


async def test_the_relay_publishes_a_save_of_its_process_at_once_whatever_it_polls(
    studio: Studio, settings: Settings, broker: str
) -> None:
    # It would otherwise look again only after its poll interval or its lock check, 60 s.
    slow = settings.model_copy(update={"relay_check_s": 60.0})
    topics = [slow.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)]
    await ensure_topics(broker, topics, 6)
    producer = clients.producer(broker)
    await producer.start()
    relay = make_relay(studio, slow, producer, bootstrap=broker)
    await asyncio.to_thread(relay.prepare)
    doorbell = Doorbell()
    studio.on_saved(doorbell.ring)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, 60.0, doorbell))
    stored = studio.recorder.max_notification_id
    try:
        studio.open_account("alice", credits=10)
        await wait_for(lambda: relay.position == stored(), timeout_s=20, what="alice's events")
        studio.open_account("bob", credits=10)
        await wait_for(lambda: relay.position == stored(), timeout_s=20, what="bob's events")
    finally:
        stop.set()
        await task
        await producer.stop()


async def test_an_idle_relay_and_read_models_pick_up_a_save_of_another_process_within_a_second(
    studio: Studio, settings: Settings, broker: str
) -> None:
    topics = [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)]
    await ensure_topics(broker, topics, 6)
    producer = clients.producer(broker)
    await producer.start()
    relay = make_relay(studio, settings, producer, bootstrap=broker)
    await asyncio.to_thread(relay.prepare)
    models = read_models(studio)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(relay.run(stop, 0.02, Doorbell(), idle_poll_s=0.5)),
        asyncio.create_task(models.run(stop, 0.02, doorbell=Doorbell(), idle_poll_s=0.5)),
    ]
    # Another process: its saves ring no doorbell here.
    other = Studio(settings.database().eventsourcing_env())
    try:
        await wait_for(lambda: relay.leading, what="the relay to lead")
        other.open_account("alice", credits=10)
        began = time.monotonic()
        stored = other.recorder.max_notification_id()
        await wait_for(lambda: relay.position == stored, timeout_s=20, what="publishing")
        await wait_for(
            lambda: models.accounts.position() == stored, timeout_s=20, what="the read models"
        )
        assert time.monotonic() - began < 0.5 + 2
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await producer.stop()
        other.close()


async def test_a_started_consumer_fetches_with_the_wait_it_is_given(broker: str) -> None:
    # Tansu answers a fetch when its wait runs out: with the 3 s wait the consumer was made
    # with, nothing could arrive within a second.
    topic = f"t{uuid.uuid4().hex[:10]}.waits"
    await ensure_topics(broker, [topic], 1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker, fetch_max_wait_ms=3000, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        clients.set_fetch_wait(consumer, clients.SHORT_FETCH_WAIT_MS)
        consumer.assign([TopicPartition(topic, 0)])
        producer = clients.producer(broker)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello")
        finally:
            await producer.stop()
        began = time.monotonic()
        records: list[bytes | None] = []
        while not records and time.monotonic() - began < 5:
            batch = await consumer.getmany(timeout_ms=100)
            records += [r.value for rs in batch.values() for r in rs]
        assert records == [b"hello"]
        assert time.monotonic() - began < 1.0
    finally:
        await consumer.stop()
