"""Event-store write rate vs end-to-end pipeline rate through the real broker.

Usage: python bench/pipeline.py [--projects N] [--owners N] [--split [--stage-workers N]]
                                [--database-url URL] [--distinct-briefs]
Prints: the raw write rate (events/s, one save per command of the same workload, no broker),
the end-to-end rate (events/s from the first request to the last project completed and
projected, through the bundled broker, stages and projections, instant providers) and their ratio.
In the end-to-end run the users create their projects side by side, as browsers would; each user
creates theirs one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from aytada_es.application import Studio
from aytada_es.bootstrap import ROLES, bootstrap, tune_collector
from aytada_es.config import Settings
from aytada_es.domain.steps import Step
from aytada_es.kafka.broker import BundledBroker
from aytada_es.projections import CardChange


@contextlib.contextmanager
def fresh(database_url: str | None) -> Iterator[str | None]:
    """A PostgreSQL URL with a new, empty schema of its own (dropped afterwards); SQLite as is."""
    if not database_url or not database_url.startswith("postgresql"):
        yield database_url
        return
    import psycopg

    dsn = database_url.split("?", 1)[0]
    schema = f"bench_{uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{dsn}?schema={schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def stored_since(studio: Studio, position: int) -> int:
    """Events stored after `position` (PostgreSQL's ids have gaps where a save rolled back)."""
    return len(studio.recorder.select_notifications(position + 1, 10**9))


def settings_for(data_dir: Path, database_url: str | None) -> Settings:
    env = {"AYTADA_DATA_DIR": str(data_dir), "AYTADA_PROVIDERS": "instant"}
    if database_url:
        env["AYTADA_DATABASE_URL"] = database_url
    return Settings.from_env(env)


def raw_rate(settings: Settings, projects: int, owners: int) -> tuple[int, float]:
    """The pipeline's own commands, saved one by one straight into the event store."""
    studio = Studio(settings.database().eventsourcing_env(), sole_writer=True)
    tune_collector()  # the same collector settings as the end-to-end run
    accounts = [studio.open_account(f"bench-raw-{o}", credits=10**9)[0].id for o in range(owners)]
    now = datetime.now(UTC)
    gen = {
        "provider": "instant",
        "stage_version": "1",
        "units": 1,
        "started_at": now,
        "finished_at": now,
        "attempts": 1,
    }
    scenes = [{"index": i, "headline": "h", "visual": "v", "duration_s": 3} for i in range(4)]
    asset = {"id": "0" * 64, "kind": "clip", "content_type": "video/mp4", "created_at": "t"}
    start_events = studio.recorder.max_notification_id() or 0
    started = time.perf_counter()
    for i in range(projects):
        pid: UUID = studio.create_project(
            accounts[i % owners],
            title=f"Raw {i}",
            format="9:16",
            brief="b",
            autopilot=True,
            actor="bench",
        ).id

        def step(s: Step, result: dict[str, object], pid: UUID = pid) -> None:
            version = studio.project(pid).request["version"]  # type: ignore[index]
            studio.complete_step(
                pid, step=s, version=version, result=result, generation=gen, actor="bench"
            )

        step(Step.IDEAS, {"ideas": [{"title": "a"}, {"title": "b"}, {"title": "c"}]})
        step(Step.SCRIPT, {"script": {"text": "Buy it now. " * 5}})
        step(Step.SCENES, {"scenes": scenes})
        version = studio.project(pid).request["version"]  # type: ignore[index]
        for s in range(4):
            studio.record_clip(
                pid, version=version, scene=s, asset={**asset, "id": f"{s:064d}"}, actor="bench"
            )
        step(Step.VIDEO, {"duration_s": 12.0})
        step(Step.VOICEOVER, {"asset": {**asset, "kind": "voiceover"}})
        step(Step.STITCHING, {"video": asset, "thumbnail": {**asset, "id": "1" * 64}})
    elapsed = time.perf_counter() - started
    events = stored_since(studio, start_events)
    studio.close()
    return events, elapsed


async def pipeline_rate(
    settings: Settings,
    projects: int,
    owners: int,
    broker: str,
    stage_workers: int = 0,
    distinct: bool = False,
) -> tuple[int, float]:
    """All roles in this process, or the stages in `stage_workers` processes (`worker stages`)."""
    roles = ("relay", "projections") if stage_workers else ROLES
    system = bootstrap(settings, bootstrap_servers=broker, roles=roles)
    workers: list[subprocess.Popen[bytes]] = []
    if stage_workers:
        env = {
            **os.environ,
            "AYTADA_DATA_DIR": str(settings.data_dir),
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_KAFKA_BOOTSTRAP": broker,
            "AYTADA_LOG_LEVEL": "WARNING",
            "AYTADA_PLUGINS": "none",  # the core's stages, as in the one-process phase
        }
        if settings.database_url:
            env["AYTADA_DATABASE_URL"] = settings.database_url
        workers = [
            subprocess.Popen(  # noqa: ASYNC220 - started once, before timing
                [sys.executable, "-m", "aytada_es", "worker", "stages"], env=env
            )
            for _ in range(stage_workers)
        ]
    studio = system.studio
    accounts = [studio.open_account(f"bench-e2e-{o}", credits=10**9)[0].id for o in range(owners)]
    completed: set[str] = set()
    all_done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_changes(changes: Sequence[CardChange]) -> None:
        for change in changes:
            if change.card is not None and change.card["status"] == "completed":
                completed.add(change.project_id)
        if len(completed) >= projects:
            loop.call_soon_threadsafe(all_done.set)

    system.read_models.listen(on_changes)
    try:
        async with system.running():
            tune_collector()  # as `aytada-es serve` does once started
            await asyncio.sleep(8)  # let the six consumer groups join before timing
            start_events = studio.recorder.max_notification_id() or 0
            started = time.perf_counter()
            cpu_started = time.process_time()
            workers_cpu_started = [_cpu_of(w.pid) for w in workers]
            await asyncio.gather(
                *(
                    create_projects(studio, accounts[o], range(o, projects, owners), distinct)
                    for o in range(owners)
                )
            )
            created = time.perf_counter() - started
            await all_done.wait()  # every card completed in the My Videos read model
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            events = stored_since(studio, start_events)
            print(
                f"  (this process used {cpu:.2f} s of CPU in {elapsed:.2f} s; "
                f"the last project was created at {created:.2f} s)",
                file=sys.stderr,
            )
            for worker, cpu_started in zip(workers, workers_cpu_started, strict=True):
                worker_cpu = _cpu_of(worker.pid) - cpu_started
                print(f"  (a stages process used {worker_cpu:.2f} s of CPU)", file=sys.stderr)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            worker.wait(30)
        system.close()
    return events, elapsed


async def create_projects(studio: Studio, owner: UUID, numbers: range, distinct: bool) -> None:
    """One user creating projects one after another, as from a browser, beside the others.

    Unless `distinct`, every project has the same brief, so the instant providers' placeholder
    files are written once (see docs/benchmarks.md: on these machines a new file costs ~0.7 ms).
    """
    for i in numbers:
        await asyncio.to_thread(
            studio.create_project,
            owner,
            title=f"E2E {i}" if distinct else "E2E",
            format="9:16",
            brief="b",
            autopilot=True,
            actor="bench",
        )


def _cpu_of(pid: int) -> float:
    """User plus system CPU seconds of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--owners", type=int, default=30, help="users the projects belong to")
    parser.add_argument(
        "--distinct-briefs",
        action="store_true",
        help="a brief per project, so the instant providers write new files for each",
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--split", action="store_true", help="also measure with the stages in other processes"
    )
    parser.add_argument(
        "--stage-workers", type=int, default=1, help="how many stages processes --split starts"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as raw_dir, tempfile.TemporaryDirectory() as e2e_dir:
        with fresh(args.database_url) as url:
            raw_events, raw_s = raw_rate(
                settings_for(Path(raw_dir), url), args.projects, args.owners
            )
        with BundledBroker() as broker, fresh(args.database_url) as url:
            e2e_events, e2e_s = asyncio.run(
                pipeline_rate(
                    settings_for(Path(e2e_dir), url),
                    args.projects,
                    args.owners,
                    broker.bootstrap,
                    distinct=args.distinct_briefs,
                )
            )
        if args.split:
            with (
                tempfile.TemporaryDirectory() as split_dir,
                BundledBroker() as broker,
                fresh(args.database_url) as url,
            ):
                split_events, split_s = asyncio.run(
                    pipeline_rate(
                        settings_for(Path(split_dir), url),
                        args.projects,
                        args.owners,
                        broker.bootstrap,
                        stage_workers=args.stage_workers,
                        distinct=args.distinct_briefs,
                    )
                )
    raw = raw_events / raw_s
    e2e = e2e_events / e2e_s
    print(f"projects:                   {args.projects}")
    print(f"raw event-store writes:     {raw:8.0f} events/s ({raw_events} events in {raw_s:.2f} s)")
    print(f"end-to-end, one process:    {e2e:8.0f} events/s ({e2e_events} events in {e2e_s:.2f} s)")
    print(f"ratio (goal >= 0.40):       {e2e / raw:8.2f}")
    if args.split:
        split = split_events / split_s
        print(
            f"end-to-end, stages in {args.stage_workers} other process(es): {split:8.0f} events/s "
            f"({split_events} events in {split_s:.2f} s)"
        )
        print(f"ratio, stages apart:        {split / raw:8.2f}")


if __name__ == "__main__":
    main()
