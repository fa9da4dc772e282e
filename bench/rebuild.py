"""Rebuild rate of the read models vs the rate of merely reading and decoding the same events.

Usage: python bench/rebuild.py [--store sqlite|postgres] [--projects N] [--owners N]
                               [--database-url URL] [--runs N] [--profile]
Builds once, and then reuses, a store of N project lives stored through the Studio's own commands
(failures, retries, cancels, add-ons, deletes, restores, credits: `aytada_es.testing.history`),
SQLite under var/bench-rebuild/, PostgreSQL in a schema of its own named after N. Then times
`projections rebuild` (the code path of the CLI) and the read and decode of every stored event
(pages read as the rebuild reads them, `notifications_from`, and the application's mapper with
every personal field opened, upcasting included), and prints both rates and their ratio.
`--profile` prints where the rebuild's time goes (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

from aytada_es.adapters.sqlite import notifications_from
from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap, tune_collector
from aytada_es.config import Settings
from aytada_es.projections.runner import REBUILD_BATCH
from aytada_es.testing.history import store_history

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def settings_for(store: str, projects: int, owners: int, database_url: str | None) -> Settings:
    name = f"p{projects}o{owners}"
    data_dir = ROOT / "var" / "bench-rebuild" / f"{store}-{name}"
    env = {"AYTADA_DATA_DIR": str(data_dir), "AYTADA_PROVIDERS": "instant"}
    if store == "postgres":
        env["AYTADA_DATABASE_URL"] = f"{database_url or POSTGRES}?schema=bench_rebuild_{name}"
    return Settings.from_env(env)


def ensure_history(settings: Settings, projects: int, owners: int) -> int:
    """The number of stored events, storing the history first when the store has none."""
    if settings.database_url.startswith("postgresql"):
        import psycopg

        dsn, _, query = settings.database_url.partition("?schema=")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {query}")
    studio = Studio(settings.database().eventsourcing_env(), sole_writer=True)
    try:
        stored = studio.recorder.max_notification_id() or 0
        if stored == 0:
            began = time.perf_counter()
            store_history(studio, projects, owners)
            stored = studio.recorder.max_notification_id() or 0
            print(f"stored {stored:,} events in {time.perf_counter() - began:.1f} s (reused next)")
        return stored
    finally:
        studio.close()


def read_and_decode(settings: Settings, page: int = REBUILD_BATCH) -> tuple[int, float, float]:
    """Every stored event read page by page and decoded by the mapper: how many, seconds, CPU."""
    studio = Studio(settings.database().eventsourcing_env())
    try:
        recorder, to_event = studio.recorder, studio.mapper.to_domain_event
        began, cpu = time.perf_counter(), time.process_time()
        decoded, start = 0, 1
        while notifications := notifications_from(recorder, start, page):
            for notification in notifications:
                to_event(notification)
            decoded += len(notifications)
            start = notifications[-1].id + 1
        return decoded, time.perf_counter() - began, time.process_time() - cpu
    finally:
        studio.close()


def rebuild(settings: Settings, profile: bool) -> tuple[int, float, float]:
    """`aytada-es projections rebuild`, as the CLI runs it: how many events, seconds, CPU."""
    system = bootstrap(settings)
    tune_collector()  # as `_rebuild` in cli.py does
    profiler = cProfile.Profile() if profile else None
    try:
        began, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        replayed = system.read_models.rebuild()
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    finally:
        system.close()
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(30)
    return replayed, elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--projects", type=int, default=1500)
    parser.add_argument("--owners", type=int, default=150, help="users the projects belong to")
    parser.add_argument("--database-url", default=None, help=f"PostgreSQL (default {POSTGRES})")
    parser.add_argument("--runs", type=int, default=3, help="rebuilds; the best one counts")
    parser.add_argument("--profile", action="store_true", help="cProfile one rebuild")
    args = parser.parse_args()
    settings = settings_for(args.store, args.projects, args.owners, args.database_url)
    stored = ensure_history(settings, args.projects, args.owners)
    load_before = os.getloadavg()[0]
    if args.profile:
        rebuild(settings, profile=True)
        return
    reads = [read_and_decode(settings) for _ in range(args.runs)]
    rebuilds = [rebuild(settings, profile=False) for _ in range(args.runs)]
    decoded, read_s, read_cpu = min(reads, key=lambda r: r[1])
    replayed, rebuild_s, rebuild_cpu = min(rebuilds, key=lambda r: r[1])
    assert decoded == replayed == stored, (decoded, replayed, stored)
    rebuild_rate, read_rate = replayed / rebuild_s, decoded / read_s
    print(f"store:          {args.store}, {args.projects} projects of {args.owners} users")
    print(f"events:         {stored:,}")
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(f"load average:   {load} (2 cores; best of {args.runs} runs each)")
    print(f"read + decode:  {read_s:.3f} s  {read_rate:,.0f} events/s  (CPU {read_cpu:.3f} s)")
    rate = f"{rebuild_rate:,.0f} events/s"
    print(f"rebuild:        {rebuild_s:.3f} s  {rate}  (CPU {rebuild_cpu:.3f} s)")
    print(f"ratio:          {rebuild_rate / read_rate:.2f} (rebuild rate / read + decode rate)")
    print(f"rebuild by CPU: {replayed / rebuild_cpu:,.0f} events per CPU second")


if __name__ == "__main__":
    main()
