"""Bad messages on the project-events topic go to the dead-letter topic; the stage goes on."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from polling import read_topic

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import make_relay, stage_runner
from aytada_es.config import Settings
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.registry import registered
from aytada_es.domain.status import Status
from aytada_es.kafka import clients
from aytada_es.kafka.envelope import TYPE_HEADER
from aytada_es.kafka.topics import ACCOUNT_EVENTS, DEAD_LETTERS, PROJECT_EVENTS, ensure_topics
from aytada_es.providers.instant import instant_providers

pytestmark = pytest.mark.kafka

BIG = 400_000  # bytes: far over any field's sense, well under the broker's message limit


def bad_messages(valid: dict[str, Any]) -> dict[str, bytes | None]:
    """What a confused or broken producer might put on the topic, by the reason expected."""
    unknown_project = {**valid, "project_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4())}
    return {
        "undecodable: empty": None,
        "undecodable: not json": b"\xff\xfe not json {",
        "undecodable: big": json.dumps({**valid, "data": "x" * BIG}).encode(),
        "undecodable: big extra": json.dumps({**valid, "padding": ["y" * 1000] * 400}).encode(),
        "undecodable: types": json.dumps(
            {**valid, "version": "two", "position": [1], "occurred_at": True}
        ).encode(),
        "undecodable: type name": json.dumps({**valid, "type": "ideas requested"}).encode(),
        "undecodable: array": json.dumps([valid]).encode(),
        "ProjectNotFound": json.dumps(unknown_project).encode(),
    }


async def test_bad_messages_are_dead_lettered_with_a_reason_and_the_valid_one_behind_is_handled(
    studio: Studio, settings: Settings, broker: str
) -> None:
    topic, dlq = settings.topic(PROJECT_EVENTS), settings.topic(DEAD_LETTERS)
    await ensure_topics(broker, [topic, settings.topic(ACCOUNT_EVENTS), dlq], 6)
    account, _ = studio.open_account("alice", credits=100)
    project = studio.create_project(
        account.id, title="Fizz", format="9:16", brief="Sparkling", actor="user:alice"
    )
    studio.request_ideas(account.id, project.id, count=2, actor="user:alice")
    producer = clients.producer(broker, max_request_size=2_000_000)
    await producer.start()
    try:
        relay = make_relay(studio, settings, producer)
        request = next(
            relay.envelope(n)
            for n in studio.recorder.select_notifications(1, 100)
            if n.originator_id == project.id and n.topic.endswith("IdeasRequested")
        )
        bad = bad_messages(json.loads(request.value))
        header = [(TYPE_HEADER, b"IdeasRequested")]  # each claims a type the stage acts on
        # Same key as the valid message: one partition, the bad ones ahead of it.
        for value in bad.values():
            await producer.send_and_wait(topic, value=value, key=request.key, headers=header)
        valid = await producer.send_and_wait(
            topic, value=request.value, key=request.key, headers=header
        )
    finally:
        await producer.stop()

    ideas = next(r.stage for r in registered() if r.stage.name == "ideas")
    assets = AssetStore(settings.assets_dir)
    ctx = StageContext(studio, assets, instant_providers(assets))
    dlq_producer = clients.producer(broker, max_request_size=2_000_000)
    await dlq_producer.start()
    runner = stage_runner(ideas, ctx, settings, broker, dead_letters=dlq_producer)
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:
        deadline = time.monotonic() + 30
        while studio.project(project.id).status != Status.IDEAS_READY:
            assert time.monotonic() < deadline, "the valid message behind the bad ones"
            assert not running.done(), running
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
        await dlq_producer.stop()

    assert runner.dead_lettered == len(bad)
    records = await read_topic(broker, dlq, len(bad))
    assert [r.value for r in records] == list(bad.values())  # one partition: in order
    for expected, record in zip(bad, records, strict=True):
        headers = dict(record.headers)
        reason = headers["reason"].decode()
        assert reason.startswith(expected.split(":")[0]), (expected, reason)
        assert len(reason) <= 600, "a reason is a summary, not the message again"
        assert headers["consumer"].decode() == runner.group_id
        source_topic, partition, offset = headers["source"].decode().rsplit("/", 2)
        assert (source_topic, int(partition)) == (topic, valid.partition)
        assert int(offset) < valid.offset
        assert record.key == request.key
    done = studio.project(project.id)
    assert done.generations == 1 and len(done.ideas) == 2
    assert done.reconciliation().consistent
