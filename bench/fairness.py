"""Fairness across users with the offline `local` providers, through the bundled broker.

Usage: python bench/fairness.py [--heavy N] [--skew-heavy N --skew-light N] [--scale S]
                                [--database-url URL] [--no-limits]
Prints, from one system started once:
- the light user's one project on an idle system, the same right after a heavy user started
  `--heavy` (12) projects, and the ratio of the two (issue 12's bound: at most 2.5);
- under a skew (`--skew-heavy` 30 projects of the heavy user, then `--skew-light` 3 of the light
  user's, 10:1), the wait of each user's CPU-bound calls (clips, stitching, stills, speech):
  from a call asking for its slot to its start, p50/p95/max; and the light projects' times.
`--no-limits` lifts the CPU slot's limit (AYTADA_LIMIT_FFMPEG_CONCURRENCY=0): no fair gate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.domain.status import Status
from aytada_es.kafka.broker import BundledBroker
from aytada_es.providers.local import local_providers


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


async def start(system: System, owner: UUID, title: str) -> UUID:
    project = await asyncio.to_thread(
        system.studio.create_project,
        owner,
        title=title,
        format="9:16",
        brief=f"{title}: smooth cold brew, ready in the fridge.",
        autopilot=True,
        actor="bench",
    )
    return project.id


async def completed(system: System, projects: list[UUID]) -> dict[UUID, float]:
    """Wait for every one of `projects` to complete; when each did (monotonic seconds)."""
    done: dict[UUID, float] = {}
    while len(done) < len(projects):
        for project_id in projects:
            if project_id in done:
                continue
            status = (await asyncio.to_thread(system.studio.project, project_id)).status
            if status is Status.FAILED:
                raise SystemExit(f"project {project_id} failed")
            if status is Status.COMPLETED:
                done[project_id] = time.monotonic()
        await asyncio.sleep(0.02)
    return done


async def one_project_s(system: System, owner: UUID, title: str) -> float:
    began = time.monotonic()
    project_id = await start(system, owner, title)
    return (await completed(system, [project_id]))[project_id] - began


@contextlib.asynccontextmanager
async def slot_waits(system: System) -> AsyncIterator[dict[str, list[float]]]:
    """Each call's wait for its slot at the gate, by owner."""
    gate = system.limits
    assert gate is not None, "the stages run here: the gate exists once started"
    waits: dict[str, list[float]] = {}
    slot: Callable[..., Any] = gate.slot

    @contextlib.asynccontextmanager
    async def timed(provider: str, owner: str) -> AsyncIterator[None]:
        asked = time.monotonic()
        async with slot(provider, owner):
            waits.setdefault(owner, []).append(time.monotonic() - asked)
            yield

    gate.slot = timed  # type: ignore[method-assign]
    try:
        yield waits
    finally:
        del gate.slot


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else 0.0


async def measure(settings: Settings, broker: str, args: argparse.Namespace) -> None:
    system = bootstrap(settings, bootstrap_servers=broker)
    system.providers = local_providers(system.assets, scale=args.scale)
    studio = system.studio
    heavy = studio.open_account("heavy", credits=10**9)[0].id
    light = studio.open_account("light", credits=10**9)[0].id
    try:
        async with system.running():
            await one_project_s(system, light, "Warm-up")  # first renders, joins, connections
            idle_s = await one_project_s(system, light, "Idle")
            heavy_projects = [await start(system, heavy, f"Heavy {i}") for i in range(args.heavy)]
            loaded_s = await one_project_s(system, light, "Loaded")
            await completed(system, heavy_projects)
            print(f"light user's project, idle:             {idle_s:6.2f} s")
            print(f"light user's project, after {args.heavy:2d} heavy:    {loaded_s:6.2f} s")
            print(f"ratio (bound <= 2.5):                   {loaded_s / idle_s:6.2f}")

            async with slot_waits(system) as waits:
                began = time.monotonic()
                skew = [await start(system, heavy, f"Skew {i}") for i in range(args.skew_heavy)]
                lights = [await start(system, light, f"Light {i}") for i in range(args.skew_light)]
                light_started = time.monotonic()
                done = await completed(system, skew + lights)
                elapsed = time.monotonic() - began
            light_s = sorted(done[p] - light_started for p in lights)
            print(
                f"skew {args.skew_heavy}:{args.skew_light} "
                f"({elapsed:.1f} s for all); wait for a CPU slot, from asking to starting:"
            )
            for name, owner in (("light", light), ("heavy", heavy)):
                w = waits.get(str(owner), [0.0])
                print(
                    f"  {name:5s} user: {len(w):3d} calls, p50 {statistics.median(w):5.2f} s,"
                    f" p95 {p95(w):5.2f} s, max {max(w):5.2f} s"
                )
            print(
                "  light user's projects completed in "
                + ", ".join(f"{s:.2f}" for s in light_s)
                + f" s (idle: {idle_s:.2f} s each)"
            )
    finally:
        system.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heavy", type=int, default=12, help="the heavy user's projects")
    parser.add_argument("--skew-heavy", type=int, default=30)
    parser.add_argument("--skew-light", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.25, help="frame size (1.0: 1080p)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-limits", action="store_true", help="no limit on the CPU slot")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"load average before: {load:.2f}; {os.cpu_count()} CPUs; scale {args.scale}")
    with (
        tempfile.TemporaryDirectory() as data_dir,
        BundledBroker() as broker,
        fresh(args.database_url) as url,
    ):
        env = {"AYTADA_DATA_DIR": str(Path(data_dir)), "AYTADA_PROVIDERS": "local"}
        if url:
            env["AYTADA_DATABASE_URL"] = url
        if args.no_limits:
            env["AYTADA_LIMIT_FFMPEG_CONCURRENCY"] = "0"
        asyncio.run(measure(Settings.from_env(env), broker.bootstrap, args))
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
