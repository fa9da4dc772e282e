"""Through the broker, a stage keeps fetching while projects' lanes work: a project arriving
after another user's batch of slow messages is handled first; nothing unfinished is committed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from polling import wait_for

from aytada_es._waiting import Doorbell
from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import stage_runner
from aytada_es.config import Settings
from aytada_es.consumers import runner as stage_runners
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.runner import StageRunner
from aytada_es.consumers.stage import Stage
from aytada_es.kafka import clients
from aytada_es.kafka.envelope import TYPE_HEADER, Envelope
from aytada_es.kafka.topics import ACCOUNT_EVENTS, DEAD_LETTERS, PROJECT_EVENTS, ensure_topics
from aytada_es.providers.instant import instant_providers

pytestmark = pytest.mark.kafka


class SlowForSome(Stage):
    """Handles at once, except the projects in `slow`: those wait for `go`."""

    name = "slow-for-some"
    reacts_to = frozenset({"IdeasRequested"})

    def __init__(self, slow: set[uuid.UUID]) -> None:
        self.slow = slow
        self.go = asyncio.Event()
        self.started: list[uuid.UUID] = []
        self.done: list[uuid.UUID] = []

    async def handle(self, envelope: Envelope, ctx: StageContext) -> None:
        self.started.append(envelope.project_id)
        if envelope.project_id in self.slow:
            await self.go.wait()
        self.done.append(envelope.project_id)


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
async def running(
    studio: Studio, settings: Settings, broker: str, stage: Stage
) -> AsyncIterator[StageRunner]:
    """The stage's runner, as in `serve`; cancelled at the end, as a crash would stop it."""
    producer = clients.producer(broker)
    await producer.start()
    assets = AssetStore(settings.assets_dir)
    ctx = StageContext(studio, assets, instant_providers(assets))
    runner = stage_runner(stage, ctx, settings, broker, dead_letters=producer, bell=Doorbell())
    task = asyncio.create_task(runner.run(asyncio.Event()))
    try:
        yield runner
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await producer.stop()


async def publish(settings: Settings, broker: str, envelopes: list[Envelope]) -> None:
    producer = clients.producer(broker)
    await producer.start()
    try:
        sent = [
            await producer.send(
                settings.topic(PROJECT_EVENTS),
                value=e.to_bytes(),
                key=e.key,
                headers=[(TYPE_HEADER, e.type.encode())],
            )
            for e in envelopes
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_a_project_arriving_after_a_batch_of_slow_ones_is_handled_before_they_finish(
    studio: Studio, settings: Settings, broker: str
) -> None:
    topics = [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)]
    await ensure_topics(broker, topics, 6)
    a_projects = [uuid.uuid4() for _ in range(12)]
    b_project = uuid.uuid4()
    first = SlowForSome(set(a_projects))
    async with running(studio, settings, broker, first) as runner:
        await publish(settings, broker, [request(p) for p in a_projects])
        runner.notice(frozenset({"IdeasRequested"}))
        await wait_for(lambda: len(first.started) == 12, 30, "A's twelve to start")
        await publish(settings, broker, [request(b_project)])
        runner.notice(frozenset({"IdeasRequested"}))
        await wait_for(lambda: b_project in first.done, 10, "B's project, behind A's")
        assert first.done == [b_project]  # every one of A's is still at work

    # Killed mid-work: another member of the group gets every one of A's messages again.
    second = SlowForSome(set())
    async with running(studio, settings, broker, second) as runner:
        await wait_for(lambda: set(a_projects) <= set(second.done), 30, "A's messages again")
    assert sorted(map(str, second.done)) == sorted(map(str, second.started))


async def test_the_consumer_stops_fetching_while_its_cap_of_messages_waits_in_lanes(
    studio: Studio, settings: Settings, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage_runners, "MAX_BUFFERED", 5)
    topics = [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)]
    await ensure_topics(broker, topics, 6)
    projects = [uuid.uuid4() for _ in range(20)]
    stage = SlowForSome(set(projects))
    async with running(studio, settings, broker, stage) as runner:
        await publish(settings, broker, [request(p) for p in projects])
        runner.notice(frozenset({"IdeasRequested"}))
        await wait_for(
            lambda: runner.full and len(stage.started) >= 5, 30, "the consumer to stop fetching"
        )
        assert len(stage.started) == 5  # one lane per project: each took its message at once
        assert runner.waiting == 5 and runner.in_progress == 5
        stage.go.set()
        await wait_for(lambda: len(stage.done) == 20, 30, "the other fifteen, fetched again")
        assert sorted(map(str, stage.done)) == sorted(map(str, projects))
        await wait_for(lambda: runner.waiting == 0 and runner.in_progress == 0, 5, "the lanes")
