"""A live rebuild (`projections rebuild --live`) while the read models serve, read and write.

Usage: python bench/live_rebuild.py [--store sqlite|postgres] [--projects N] [--owners N]
Builds once, and then reuses, a store of N project lives (`aytada_es.testing.history`), SQLite
under var/bench-live-rebuild/, PostgreSQL in a schema of its own named after N. Then, with a
serving runner keeping the read models, a reader listing My Videos of every owner in turn and a
writer creating a project every 20 ms, it runs the live rebuild and prints: the time to build
and switch and its rate, how many reads were made meanwhile (failed ones and lists shorter than
before are counted: both must be 0), the slowest read, command and serving runner batch, before
and during (the old generation is dropped 2 s after the switch, as the CLI does).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from aytada_es.application import Studio
from aytada_es.bootstrap import tune_collector
from aytada_es.config import Settings
from aytada_es.projections import ReadModels
from aytada_es.testing.history import store_history

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def settings_for(store: str, projects: int, owners: int) -> Settings:
    name = f"p{projects}o{owners}"
    data_dir = ROOT / "var" / "bench-live-rebuild" / f"{store}-{name}"
    env = {"AYTADA_DATA_DIR": str(data_dir), "AYTADA_PROVIDERS": "instant"}
    if store == "postgres":
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS bench_live_{name}")
        env["AYTADA_DATABASE_URL"] = f"{POSTGRES}?schema=bench_live_{name}"
    return Settings.from_env(env)


@dataclass
class Timings:
    """Durations (s) of one kind of operation, split at the moment the rebuild began."""

    before: list[float] = field(default_factory=list)
    during: list[float] = field(default_factory=list)

    def add(self, seconds: float, rebuilding: bool) -> None:
        (self.during if rebuilding else self.before).append(seconds)

    def line(self, name: str) -> str:
        def worst(values: list[float]) -> str:
            return f"{max(values) * 1000:7.1f} ms" if values else "      -"

        return (
            f"{name:<22} before: {len(self.before):6,} max {worst(self.before)}   "
            f"during: {len(self.during):6,} max {worst(self.during)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--projects", type=int, default=1500)
    parser.add_argument("--owners", type=int, default=150)
    args = parser.parse_args()
    settings = settings_for(args.store, args.projects, args.owners)
    env = settings.database().eventsourcing_env()
    studio = Studio(env)
    if not studio.recorder.max_notification_id():
        began = time.perf_counter()
        store_history(studio, args.projects, args.owners)
        print(f"stored the history in {time.perf_counter() - began:.1f} s (reused next)")
    tune_collector()
    serving = ReadModels(studio)
    while serving.catch_up(5000):
        pass
    owners = [
        UUID(r["owner_id"])
        for r in serving.store.query("SELECT DISTINCT owner_id FROM {aytada_videos}")
    ]
    stop = threading.Event()
    rebuilding = threading.Event()
    reads, commands, batches = Timings(), Timings(), Timings()
    shorter: list[str] = []
    failed: list[str] = []

    def read() -> None:
        seen: dict[UUID, int] = {}
        i = 0
        while not stop.is_set():
            owner = owners[i % len(owners)]
            i += 1
            began = time.perf_counter()
            try:
                cards = serving.videos.listing(owner)[2]
            except Exception as e:
                failed.append(repr(e))
                continue
            reads.add(time.perf_counter() - began, rebuilding.is_set())
            if len(cards) < seen.get(owner, 0):
                shorter.append(f"{owner}: {len(cards)} after {seen[owner]}")
            seen[owner] = len(cards)

    def write() -> None:
        n = 0
        while not stop.is_set():
            began = time.perf_counter()
            studio.create_project(
                owners[n % len(owners)], title=f"Live {n}", format="9:16", brief="b", actor="bench"
            )
            commands.add(time.perf_counter() - began, rebuilding.is_set())
            n += 1
            stop.wait(0.02)

    def keep() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            applied = serving.catch_up()
            if applied:
                batches.add(time.perf_counter() - began, rebuilding.is_set())
            else:
                stop.wait(0.01)

    threads = [threading.Thread(target=f, daemon=True) for f in (read, write, keep)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # the "before" figures
    # The command as an operator runs it: a process of its own beside the serving one.
    command = [sys.executable, "-m", "aytada_es", "projections", "rebuild", "--live"]
    environment = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": settings.database_url,
    }
    rebuilding.set()
    began = time.perf_counter()
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    switched_s = 0.0
    for line in process.stderr:  # the switch is logged, then the grace, then the drop
        if "rebuilt as generation" in line and not switched_s:
            switched_s = time.perf_counter() - began
    out = process.stdout.read() if process.stdout else ""
    if process.wait() != 0 or not switched_s:
        raise SystemExit(f"rebuild --live failed: {out}")
    elapsed = time.perf_counter() - began
    replayed = int(out.split(" from ", 1)[1].split(" events", 1)[0])
    built_s = float(out.split(" ones in ", 1)[1].split(" s ", 1)[0])
    epoch = out.rsplit("epoch ", 1)[1].strip()
    time.sleep(0.5)  # the serving runner moves to the new generation
    stop.set()
    for thread in threads:
        thread.join()
    print(f"store:          {args.store}, {args.projects} projects of {args.owners} users")
    print(f"load average:   {os.getloadavg()[0]:.1f}")
    print(
        f"rebuild --live: {replayed:,} events built and switched in {built_s:.2f} s "
        f"({replayed / built_s:,.0f} events/s); {switched_s:.2f} s from the command's start "
        f"(process start included), exited after {elapsed:.2f} s (old generation dropped); "
        f"epoch {epoch}"
    )
    print(reads.line("reads (My Videos)"))
    print(commands.line("commands (create)"))
    print(batches.line("serving runner batches"))
    print(f"failed reads:   {len(failed)} {failed[:3]}")
    print(f"shorter lists:  {len(shorter)}")
    print(f"serving now:    generation {serving.store.generation}")
    studio.close()
    if shorter or failed or str(serving.store.generation) != epoch:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
