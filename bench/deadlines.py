"""What the deadline watcher costs: its query over many steps in flight, and timing steps out.

Usage: python bench/deadlines.py [--open 20000] [--projects 200] [--database-url URL]
In a fresh SQLite file (or, with a PostgreSQL URL, a fresh schema in that database):
- puts `--open` rows straight into the `open_steps` read model (steps of every kind, requested
  over the last 100 s) and times one round's query of the watcher (`DeadlineWatcher.overdue`)
  when nothing is due (every second, in every process that runs stages) and when 100 are due;
- creates `--projects` real projects with ideas requested, and times `DeadlineWatcher.check`
  timing them all out (each a save of the project and its owner's account).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

import psycopg

from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.consumers.deadlines import DeadlineWatcher
from aytada_es.projections.runner import ReadModels, read_models

STEPS = ("ideas", "script", "scenes", "video", "voiceover", "stitching", "captions")
ROUNDS = 200


def timed_ms(fn: object, rounds: int = ROUNDS) -> tuple[float, float]:
    """Median and max of `rounds` calls, in milliseconds."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), max(times)


def fill(models: ReadModels, count: int, now: float) -> None:
    with models.store.transaction() as tx:
        tx.executemany(
            "INSERT INTO {aytada_open_steps} (project_id, step, version, requested_at)"
            " VALUES (?, ?, ?, ?)",
            [(str(uuid.uuid4()), STEPS[i % len(STEPS)], 2, now - (i % 100)) for i in range(count)],
        )


def run(database_url: str, open_count: int, projects: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings.from_env(
            {"AYTADA_DATA_DIR": data, "AYTADA_DATABASE_URL": database_url or ""}
            if database_url
            else {"AYTADA_DATA_DIR": data}
        )
        studio = Studio(settings.database().eventsourcing_env())
        try:
            models = read_models(studio)
            deadlines = settings.deadlines()
            now = time.time()
            fill(models, open_count, now)
            clock = [now]
            watcher = DeadlineWatcher(
                studio,
                models.open_steps,
                deadlines,
                add_ons=frozenset({"captions"}),
                clock=lambda: clock[0],
            )
            assert watcher.overdue() == []
            idle = timed_ms(watcher.overdue)
            clock[0] = now + 60  # text steps requested over 60 s ago are due: a round takes 100
            due = len(watcher.overdue())
            busy = timed_ms(watcher.overdue)
            print(f"{settings.database().kind}: {open_count} steps in flight")
            print(f"  a round with nothing due: median {idle[0]:.2f} ms, max {idle[1]:.2f} ms")
            print(f"  a round with {due} due: median {busy[0]:.2f} ms, max {busy[1]:.2f} ms")

            with models.store.transaction() as tx:
                tx.execute("DELETE FROM {aytada_open_steps}")
            owner = studio.open_account("bench", credits=10 * projects)[0].id
            for i in range(projects):
                made = studio.create_project(
                    owner, title=f"P{i}", format="1:1", brief="", actor="u"
                )
                studio.request_ideas(owner, made.id, count=1, actor="u")
            while models.catch_up():
                pass
            clock[0] = time.time() + 3600
            began = time.perf_counter()
            failed = 0
            while (done := watcher.check()) > 0:
                failed += done
            took = time.perf_counter() - began
            assert failed == projects and studio.account(owner).reserved == 0
            print(f"  timing out {failed} steps: {took:.2f} s, {failed / took:.0f} steps/s")
        finally:
            studio.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=20_000)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url = args.database_url
    if url.startswith("postgresql://"):
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            run(f"{url}?schema={schema}", args.open, args.projects)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    else:
        run(url, args.open, args.projects)


if __name__ == "__main__":
    main()
