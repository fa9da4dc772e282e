"""One relay publishes at a time; a standby takes over when the active one is killed."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from polling import read_topic, wait_for

from aytada_es.application import Studio
from aytada_es.bootstrap import make_relay
from aytada_es.config import Database, Settings
from aytada_es.kafka import clients
from aytada_es.kafka.relay_lock import AdvisoryLock, relay_lock
from aytada_es.kafka.topics import ACCOUNT_EVENTS, PROJECT_EVENTS

pytestmark = pytest.mark.kafka


async def positions_on(broker: str, topics: list[str], expect: int) -> list[int]:
    """The `position` of every message on the topics (repeats included)."""
    records = await read_topic(broker, topics, expect, linger_s=0.5)
    return [json.loads(r.value)["position"] for r in records]


async def test_the_relay_lock_is_held_by_one_relay_until_it_lets_go(settings: Settings) -> None:
    env = settings.database().eventsourcing_env()
    first, second = relay_lock(env), relay_lock(env)
    try:
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.held() and not await second.held()
        await first.release()
        assert not await first.held()
        assert await second.acquire()
        assert not await first.acquire()
    finally:
        await first.release()
        await second.release()


def relay_process(settings: Settings, broker: str, log_file: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": settings.database_url,
        "AYTADA_KAFKA_BOOTSTRAP": broker,
        "AYTADA_KAFKA_NAMESPACE": settings.kafka_namespace,
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_RELAY_CHECK_S": str(settings.relay_check_s),
        "AYTADA_LOG_LEVEL": "INFO",
    }
    with log_file.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aytada_es", "worker", "relay"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_standby_relay_takes_over_from_a_killed_one_and_nothing_is_skipped(
    settings: Settings, broker: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(update={"relay_check_s": 0.3})
    studio = Studio(settings.database().eventsourcing_env())
    owner = studio.open_account("alice", credits=100)[0].id

    def create(n: int) -> None:
        for i in range(n):
            studio.create_project(owner, title=f"Ad {i}", format="1:1", brief="b", actor="cli")

    def max_position() -> int:
        return studio.recorder.max_notification_id() or 0

    create(5)
    log_file = tmp_path / "relay-a.log"
    active = relay_process(settings, broker, log_file)
    producer = clients.producer(broker)
    stop = asyncio.Event()
    standby = make_relay(studio, settings, producer, bootstrap=broker)
    task: asyncio.Task[None] | None = None
    try:
        await wait_for(
            lambda: standby.tracked_position() == max_position(),
            what=f"the first relay to publish; its log: {log_file.read_text()}",
        )
        await producer.start()
        caplog.set_level(logging.INFO, logger="aytada_es.kafka.relay")
        task = asyncio.create_task(standby.run(stop, 0.02))
        for _ in range(10):  # both run: only the first one publishes
            await asyncio.to_thread(create, 3)
            await asyncio.sleep(0.1)
        await wait_for(lambda: standby.tracked_position() == max_position(), what="publishing")
        assert not standby.leading and standby.published == 0
        # A standby follows how far the active relay got (its lag metric stays true).
        await wait_for(lambda: standby.position == max_position(), what="the standby to follow")

        writing = asyncio.create_task(asyncio.to_thread(create, 40))
        await asyncio.sleep(0.05)
        active.send_signal(signal.SIGKILL)  # mid-flow, as a crash would
        active.wait(10)
        took_over = await wait_for(lambda: standby.leading, timeout_s=10, what="the takeover")
        assert took_over < 3 * settings.relay_check_s + 1.0
        await writing
        await wait_for(lambda: standby.position == max_position(), what="the standby to catch up")
    finally:
        stop.set()
        if task is not None:
            await task
        await producer.stop()
        if active.poll() is None:
            active.kill()
            active.wait()
    started = [
        int(m.group(1))
        for r in caplog.records
        if (m := re.match(r"relay: publishing from position (\d+)", r.getMessage()))
    ]
    assert len(started) == 1, started
    resumed_from = started[0]

    total = max_position()
    studio.close()
    topics = [settings.topic(PROJECT_EVENTS), settings.topic(ACCOUNT_EVENTS)]
    seen = Counter(await positions_on(broker, topics, total))
    assert sorted(seen) == list(range(1, total + 1))  # nothing skipped
    repeated = sorted(p for p, n in seen.items() if n > 1)
    # Only what the killed relay published but had not recorded was published again, once.
    assert all(p > resumed_from for p in repeated), (resumed_from, repeated)
    assert all(seen[p] == 2 for p in repeated)
    assert standby.published == total - resumed_from


def test_relays_of_different_schemas_do_not_share_a_lock() -> None:
    one = Database.parse("postgresql://postgres@127.0.0.1:5432/test?schema=a")
    other = Database.parse("postgresql://postgres@127.0.0.1:5432/test?schema=b")
    assert AdvisoryLock(one.eventsourcing_env()).key != AdvisoryLock(other.eventsourcing_env()).key
    assert AdvisoryLock(one.eventsourcing_env()).key == AdvisoryLock(one.eventsourcing_env()).key


async def test_relays_starting_together_on_a_new_schema_all_start(
    settings: Settings, broker: str
) -> None:
    studios = [Studio(settings.database().eventsourcing_env()) for _ in range(4)]
    producer = clients.producer(broker)  # not started: the relays only need it to publish
    ready = threading.Barrier(len(studios))

    def build(studio: Studio) -> int:
        ready.wait(timeout=30)
        return make_relay(studio, settings, producer, bootstrap=broker).tracked_position()

    try:
        with ThreadPoolExecutor(len(studios)) as pool:
            assert list(pool.map(build, studios)) == [0] * len(studios)
    finally:
        await producer.stop()
        for studio in studios:
            studio.close()
