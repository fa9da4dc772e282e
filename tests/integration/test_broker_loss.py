"""The bundled broker keeps everything in memory: a restart mid-pipeline must lose no project."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from polling import read_topic, wait_for

from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.kafka import clients
from aytada_es.kafka.broker import BundledBroker
from aytada_es.kafka.topics import (
    ACCOUNT_EVENTS,
    PROJECT_EVENTS,
    RELAY_MARK,
    admin_client,
    ensure_topics,
)
from aytada_es.kafka.watch import BrokerWatch
from fakes.slow import assert_each_step_charged_once, autopilot_projects, slow_providers
from fakes.slow import serve_settings as serve_settings_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def serve_settings(tmp_path: Path) -> Settings:
    """SQLite, as `serve` runs with the bundled broker (the chaos test covers PostgreSQL)."""
    return serve_settings_for(tmp_path)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BundledBroker]:
    """A broker of this test's own, so that restarting it disturbs no other test."""
    with BundledBroker(log_file=tmp_path / "broker.log") as broker:
        yield broker


def statuses(studio: Studio, ids: list[UUID]) -> Counter[str]:
    return Counter(studio.project(i).status.value for i in ids)


async def test_the_relay_mark_is_gone_after_a_broker_restart_even_when_topics_come_back(
    own_broker: BundledBroker,
) -> None:
    watch = BrokerWatch(own_broker.bootstrap, mark=RELAY_MARK, topics=["a", "b"], partitions=3)
    assert not await watch.marked()
    await watch.restore_topics()
    await watch.put_mark()
    assert await watch.marked()
    await asyncio.to_thread(own_broker.restart)
    await watch.restore_topics()
    assert not await watch.marked()


async def test_the_relay_mark_is_asked_over_the_producer_s_connection_through_a_restart(
    own_broker: BundledBroker,
) -> None:
    producer = clients.producer(own_broker.bootstrap)
    await producer.start()
    try:
        watch = BrokerWatch(
            own_broker.bootstrap,
            mark=RELAY_MARK,
            topics=["a", "b"],
            partitions=3,
            client=producer.client,
        )
        assert not await watch.marked()
        await watch.restore_topics()
        await watch.put_mark()
        assert await watch.marked()
        await asyncio.to_thread(own_broker.restart)
        await watch.restore_topics()
        assert not await watch.marked()
    finally:
        await producer.stop()


def replay_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the relay logged about publishing the log again."""
    return [r for r in caplog.records if "the broker lost what was published" in r.message]


async def test_a_broker_restart_mid_pipeline_loses_no_project_and_charges_once(
    serve_settings: Settings, own_broker: BundledBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aytada_es.kafka.relay")
    settings = serve_settings
    slow = slow_providers(settings.assets_dir, clip_delay_s=0.2)
    system = bootstrap(settings, providers=slow, bootstrap_servers=own_broker.bootstrap)
    try:
        studio = system.studio
        owner, ids = autopilot_projects(studio, 12)
        async with system.running():
            await wait_for(
                lambda: statuses(studio, ids)["generating_video"] >= 3,
                what="renders to be running",
            )
            before = statuses(studio, ids)
            await asyncio.to_thread(own_broker.restart)  # every topic and offset is gone
            relay = system.relay
            assert relay is not None
            await wait_for(
                lambda: statuses(studio, ids)["completed"] == len(ids),
                timeout_s=120,
                what=f"every project to complete after the restart (before it: {before})",
            )
            assert relay.republished > 0
            assert relay.replay_until == 0
        # Expected of the bundled in-memory broker (AYTADA_KAFKA_BOOTSTRAP unset): information.
        assert {r.levelno for r in replay_records(caplog)} == {logging.INFO}
        assert sum(before[s] for s in ("completed", "failed")) < len(ids)
        assert_each_step_charged_once(studio, owner, ids)
    finally:
        system.close()


async def test_requests_published_before_the_broker_lost_them_are_published_again(
    serve_settings: Settings, own_broker: BundledBroker
) -> None:
    settings = serve_settings
    relay_only = bootstrap(settings, roles=("relay",), bootstrap_servers=own_broker.bootstrap)
    stages_only = bootstrap(settings, roles=("stages",), bootstrap_servers=own_broker.bootstrap)
    try:
        studio = relay_only.studio
        owner = studio.open_account("alice", credits=1000)[0].id
        ids = [
            studio.create_project(
                owner, title="Fizz", format="1:1", brief="b", autopilot=True, actor="user:alice"
            ).id
            for _ in range(3)
        ]
        async with relay_only.running():
            await wait_for(lambda: relay_only.relay is not None, what="the relay")
            relay = relay_only.relay
            assert relay is not None
            published = studio.recorder.max_notification_id()
            await wait_for(
                lambda: relay.position == published and not relay.replay_until,
                what="the requests to go out",
            )
            before = relay.republished  # a new relay's first publish of a store is a replay
            # Nothing consumed them yet; now the broker forgets them, and the relay is idle.
            await asyncio.to_thread(own_broker.restart)
            # All of them again: they are within the retention (and no projection runner has
            # read the store, so the window reaches back to position 1 anyway).
            await wait_for(
                lambda: relay.republished >= before + published, what="the relay to notice"
            )
            async with stages_only.running():
                await wait_for(
                    lambda: statuses(studio, ids)["completed"] == len(ids),
                    what="the republished requests to be acted on",
                )
    finally:
        stages_only.close()
        relay_only.close()


async def test_a_topic_the_broker_recreated_with_fewer_partitions_still_gets_every_event(
    serve_settings: Settings, own_broker: BundledBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # After a restart Tansu creates a topic for any client that names it, with 4 partitions,
    # and acknowledges records sent to partitions 4 and 5 without ever serving them.
    settings = Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(serve_settings.data_dir),
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_RELAY_CHECK_S": "2",
            # Configured as an external cluster would be: losing its topics is not expected.
            "AYTADA_KAFKA_BOOTSTRAP": own_broker.bootstrap,
        }
    )
    relay_only = bootstrap(settings, roles=("relay",), bootstrap_servers=own_broker.bootstrap)
    try:
        studio = relay_only.studio
        owner = studio.open_account("alice", credits=10_000)[0].id
        for i in range(24):  # keys on every one of the 6 partitions
            studio.create_project(
                owner, title=f"Fizz {i}", format="1:1", brief="b", actor="user:alice"
            )
        async with relay_only.running():
            await wait_for(lambda: relay_only.relay is not None, what="the relay")
            relay = relay_only.relay
            assert relay is not None
            published = studio.recorder.max_notification_id() or 0
            await wait_for(
                lambda: relay.position == published and not relay.replay_until,
                what="the events to go out",
            )
            before = relay.republished  # a new relay's first publish of a store is a replay
            await asyncio.to_thread(own_broker.restart)
            # A consumer names the topic before the relay notices the loss.
            async with admin_client(own_broker.bootstrap) as admin:
                await admin.describe_topics([settings.topic(PROJECT_EVENTS)])
                counts = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
            assert counts[settings.topic(PROJECT_EVENTS)] < settings.topic_partitions
            await wait_for(
                lambda: relay.republished >= before + published, what="the relay to notice"
            )
            topics = [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS)]
            records = await read_topic(own_broker.bootstrap, topics, published)
            assert {json.loads(r.value)["position"] for r in records} == set(
                range(1, published + 1)
            )
            assert {r.levelno for r in replay_records(caplog)} == {logging.WARNING}
    finally:
        relay_only.close()


async def test_a_consumer_commits_no_offset_of_the_lost_topics_to_the_new_broker_s_group(
    own_broker: BundledBroker,
) -> None:
    # Until its partitions are revoked a stage runner holds the lost topics' offsets and commits
    # them. aiokafka's `commit()` sent them as a standalone commit (or, retried, as the rejoined
    # member), and the new broker took them: the rejoined consumer started above the replay.
    topic, tp = "loss", TopicPartition("loss", 0)
    await ensure_topics(own_broker.bootstrap, [topic], 1)
    producer = clients.producer(own_broker.bootstrap)
    consumer = clients.consumer(own_broker.bootstrap, group_id="loss", **clients.session(3000))
    revoked = asyncio.Event()
    consumer.subscribe([topic], listener=_Revoked(revoked))
    await clients.start(producer)
    await clients.start(consumer)
    try:
        for _ in range(5):
            await producer.send_and_wait(topic, b"before", key=b"k")
        assert [r.offset for r in await consume(consumer, 5)] == [0, 1, 2, 3, 4]
        assert await clients.commit_as_member(consumer, {tp: 5})
        assert await consumer.committed(tp) == 5

        await asyncio.to_thread(own_broker.restart)
        await ensure_topics(own_broker.bootstrap, [topic], 1)
        for _ in range(3):  # the replay
            await producer.send_and_wait(topic, b"again", key=b"k")
        # What aiokafka does when the broker knows no such member (a heartbeat's or a commit's
        # answer); its partitions are revoked only after, and the runner commits meanwhile.
        consumer._coordinator.reset_generation()
        assert not revoked.is_set()
        assert not await clients.commit_as_member(consumer, {tp: 5})
        # Rejoined, it reads the new topic from its first record.
        assert [r.offset for r in await consume(consumer, 3)] == [0, 1, 2]
    finally:
        await consumer.stop()
        await producer.stop()


class _Revoked(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, revoked: asyncio.Event) -> None:
        self.revoked = revoked

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            self.revoked.set()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


async def consume(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """The next `count` records the consumer gets (within 30 s)."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    began = time.monotonic()
    while len(records) < count and time.monotonic() - began < 30:
        for batch in (await consumer.getmany(timeout_ms=100)).values():
            records += batch
    return records
