"""Start-up time of the command line: `aytada-es --help` and `aytada-es audit PROJECT_ID`.

Usage: python bench/cli.py [--projects N] [--owners N] [--runs N]
Reuses (or builds once) bench/rebuild.py's SQLite store of N project lives under
var/bench-rebuild/, with its read models rebuilt and its chains anchored once so that the audit
does all its checks. Then runs each command as a process, as a user would (the console script
next to this Python), after one warm-up run, and prints the median and the best of --runs runs
against the goals beside `python -c pass`. The audited project is the one with the most events.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rebuild import ensure_history, settings_for

from aytada_es.adapters.anchors import AnchorLog
from aytada_es.anchoring import Anchorer
from aytada_es.application import Studio
from aytada_es.config import Settings

HELP_GOAL_S = 0.25
AUDIT_GOAL_S = 0.6


def command() -> list[str]:
    """The console script beside this Python, or `python -m aytada_es` when none is installed."""
    script = Path(sys.executable).with_name("aytada-es")
    return [str(script)] if script.exists() else [sys.executable, "-m", "aytada_es"]


def environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, "AYTADA_DATA_DIR": str(settings.data_dir), "AYTADA_PROVIDERS": "instant"}


def prepare(settings: Settings) -> None:
    """Read models current and every chain anchored, so the audit compares and checks them."""
    env = environment(settings)
    status = subprocess.run(
        [*command(), "projections", "status", "--json"], env=env, capture_output=True, text=True
    )
    if any(r["lag_events"] for r in json.loads(status.stdout)["read_models"]):
        began = time.perf_counter()
        subprocess.run(
            [*command(), "projections", "rebuild"], env=env, check=True, capture_output=True
        )
        print(f"rebuilt the read models in {time.perf_counter() - began:.1f} s (reused next)")
    log = AnchorLog(settings.anchors_dir)
    if not log.path.exists():
        studio = Studio(settings.database().eventsourcing_env())
        try:
            anchors = Anchorer(studio, log, interval_s=1, every=1).anchor()
        finally:
            studio.close()
        print(f"anchored {len(anchors):,} chains (reused next)")


def largest_project(settings: Settings) -> str:
    """The id of the project with the most events."""
    database = settings.database()
    assert database.kind == "sqlite" and database.path
    with sqlite3.connect(database.path) as db:
        (project_id,) = db.execute(
            "SELECT originator_id FROM stored_events WHERE originator_id IN"
            " (SELECT originator_id FROM stored_events WHERE topic LIKE '%:Project.ProjectCreated')"
            " GROUP BY originator_id ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()
    return str(project_id)


def timed(
    argv: Sequence[str], env: dict[str, str], runs: int, ok: tuple[int, ...] = (0,)
) -> list[float]:
    """Wall-clock seconds of each of `runs` runs, after one warm-up; stops on another exit code."""
    times = []
    for i in range(runs + 1):
        began = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True)
        elapsed = time.perf_counter() - began
        if done.returncode not in ok:
            sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
        if i:
            times.append(elapsed)
    return times


def row(what: str, times: list[float], goal: float | None) -> str:
    median, best = statistics.median(times), min(times)
    verdict = "" if goal is None else ("met" if median <= goal else "MISSED")
    goal_text = "" if goal is None else f"{goal:.2f} s"
    return f"{what:<32} {median:>8.3f} s {best:>8.3f} s {goal_text:>8}  {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=1500)
    parser.add_argument("--owners", type=int, default=150, help="users the projects belong to")
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    args = parser.parse_args()
    settings = settings_for("sqlite", args.projects, args.owners, None)
    stored = ensure_history(settings, args.projects, args.owners)
    prepare(settings)
    project_id = largest_project(settings)
    env = environment(settings)
    cli = command()
    baseline = timed([sys.executable, "-c", "pass"], env, args.runs)
    helped = timed([*cli, "--help"], env, args.runs)
    audited = timed([*cli, "audit", project_id], env, args.runs, ok=(0, 1))  # 1: findings
    print(
        f"store:        SQLite, {args.projects} projects of {args.owners} users, {stored:,} events"
    )
    print(f"audited:      {project_id} (the project with the most events)")
    print(f"command:      {' '.join(cli)}")
    print(f"load average: {os.getloadavg()[0]:.1f} ({args.runs} runs each, after a warm-up)")
    print(f"{'':<32} {'median':>10} {'best':>10} {'goal':>8}")
    print(row("python -c pass", baseline, None))
    print(row("aytada-es --help", helped, HELP_GOAL_S))
    print(row("aytada-es audit PROJECT_ID", audited, AUDIT_GOAL_S))


if __name__ == "__main__":
    main()
