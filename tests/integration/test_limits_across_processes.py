"""Two stage worker processes share a provider's limit: together they never exceed it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from polling import wait_for

from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.domain.status import Status

pytestmark = pytest.mark.kafka
LIMIT = 2
TESTS = Path(__file__).resolve().parents[1]


def most_at_once(record: str) -> tuple[int, set[str], set[str]]:
    """The most calls in flight at one moment, the processes that made calls, their owners."""
    changes = []
    pids, owners = set(), set()
    for line in record.splitlines():
        at, what, pid, owner = line.split()
        pids.add(pid)
        owners.add(owner)
        changes.append((float(at), 1 if what == "start" else -1))
    # At the same instant an end counts before a start.
    changes.sort()
    running = most = 0
    for _, change in changes:
        running += change
        most = max(most, running)
    return most, pids, owners


async def test_two_stage_workers_together_never_exceed_a_providers_concurrency(
    settings: Settings, broker: str, tmp_path: Path
) -> None:
    record = tmp_path / "renders.log"
    record.touch()
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": settings.database_url,
        "AYTADA_KAFKA_BOOTSTRAP": broker,
        "AYTADA_KAFKA_NAMESPACE": settings.kafka_namespace,
        "AYTADA_LIMIT_RENDERS_CONCURRENCY": str(LIMIT),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    logs = [(tmp_path / f"worker-{n}.log").open("wb") for n in range(2)]
    workers = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "fakes.recorded_worker", str(record), "0.15"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        for log in logs
    ]
    relay = bootstrap(settings, roles=("relay",), bootstrap_servers=broker)
    studio = Studio(settings.database().eventsourcing_env())
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert await asyncio.wait_for(worker.stdout.readline(), 60) == b"running\n"
        async with relay.running():
            owners = [studio.open_account(name, credits=10_000)[0].id for name in ("alice", "bob")]
            ids = [
                studio.create_project(
                    owners[i % 2], title=f"Ad {i}", format="9:16", brief="Fizz",
                    autopilot=True, actor="test",
                ).id
                for i in range(10)
            ]  # fmt: skip

            def completed() -> bool:
                return all(studio.project(i).status == Status.COMPLETED for i in ids)

            await wait_for(completed, timeout_s=120, what="every project to complete")
        most, pids, owned_by = most_at_once(record.read_text())
        assert len(pids) == 2  # both workers rendered
        assert owned_by == {str(owner) for owner in owners}  # for the projects' owners
        assert most == LIMIT  # the limit was reached, and never passed
        clips = sum(len(studio.project(i).clips) for i in ids)
        assert record.read_text().count(" start ") == clips
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await asyncio.wait_for(worker.wait(), 30)
        for log in logs:
            log.close()
        studio.close()
        relay.close()
