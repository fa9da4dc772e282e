"""A restart independent of history: `serve` on a store of a million events, timed to caught-up.

Usage: python bench/restart.py [--projects N] [--owners N] [--days D] [--active N] [--runs N]
Builds once, and then reuses, a SQLite store under var/bench-restart/ of N project lives stored
through the Studio's own commands (`aytada_es.testing.history`; 20,500 lives make about a million
events), their times spread over the last D days as a service running that long would have them,
and the read models caught up (as the `serve` that stored them left them). Each run stores
`--active` new autopilot projects (their requests not yet published; deleted after the run),
starts `aytada-es serve` with its bundled broker, and prints how long after the start the relay's
lag was 0 and every active project had moved (a new event stored by a stage), and the broker's
memory (RSS) then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import eventsourcing.domain
import httpx
from eventsourcing.persistence import Tracking

from aytada_es.adapters.anchors import AnchorLog
from aytada_es.anchoring import Anchorer
from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap, make_relay
from aytada_es.config import Settings
from aytada_es.consumers.deadlines import DeadlineWatcher
from aytada_es.kafka.broker import BundledBroker, free_port
from aytada_es.kafka.relay import TRACKING_NAME
from aytada_es.testing.history import store_history

ROOT = Path(__file__).resolve().parent.parent
CAUGHT_UP_GOAL_S = 5.0
BROKER_GOAL_MB = 150.0


def settings_for(projects: int, owners: int, days: int) -> Settings:
    data_dir = ROOT / "var" / "bench-restart" / f"sqlite-p{projects}o{owners}d{days}-v3"
    return Settings.from_env({"AYTADA_DATA_DIR": str(data_dir), "AYTADA_PROVIDERS": "instant"})


@contextlib.contextmanager
def clock_from(start: datetime, step: timedelta) -> Iterator[None]:
    """Events stored meanwhile are timed `start`, `start + step`, ... (a service's months)."""
    now = [start]
    real = eventsourcing.domain.datetime_now_with_tzinfo

    def fake() -> datetime:
        now[0] = min(now[0] + step, real())  # never in the future
        return now[0]

    eventsourcing.domain.datetime_now_with_tzinfo = fake
    try:
        yield
    finally:
        eventsourcing.domain.datetime_now_with_tzinfo = real


def ensure_store(settings: Settings, projects: int, owners: int, days: int) -> int:
    """The number of stored events, storing the history first when the store has none."""
    studio = Studio(settings.database().eventsourcing_env(), sole_writer=True)
    try:
        stored = studio.recorder.max_notification_id() or 0
        if stored:
            left_as_serve_leaves_it(settings, stored)
            return stored
        began = time.perf_counter()
        span = timedelta(days=days)
        # About 52 events a life (`testing/history.py`): the last ones are stored about now.
        step = span / (projects * 52)
        with clock_from(datetime.now(UTC) - span, step):
            store_history(studio, projects, owners)
        stored = studio.recorder.max_notification_id() or 0
        print(f"stored {stored:,} events in {time.perf_counter() - began:.0f} s", flush=True)
    finally:
        studio.close()
    system = bootstrap(settings)
    try:
        began = time.perf_counter()
        system.read_models.rebuild()
        print(f"read models caught up in {time.perf_counter() - began:.0f} s", flush=True)
    finally:
        system.close()
    left_as_serve_leaves_it(settings, stored)
    return stored


def left_as_serve_leaves_it(settings: Settings, stored: int) -> None:
    """What the `serve` that stored the events would have left: the requests the history left
    open timed out long ago, the read models caught up, the chains' heads anchored, the relay's
    position recorded."""
    system = bootstrap(settings)
    try:
        watcher = DeadlineWatcher(
            system.studio, system.read_models.open_steps, settings.deadlines()
        )
        if timed_out := watcher.check():
            print(f"timed out {timed_out:,} requests the history left open", flush=True)
        while system.read_models.catch_up(5000):
            pass
    finally:
        system.close()
    stored = last_position(settings)
    studio = Studio(settings.database().eventsourcing_env())
    try:
        anchors = AnchorLog(settings.anchors_dir)
        if anchors.last_position() < stored:
            Anchorer(studio, anchors, interval_s=5, every=1000).anchor()
        relay = make_relay(studio, settings, producer=None)  # type: ignore[arg-type]
        if relay.tracked_position() < stored:
            relay.tracking.insert_tracking(Tracking(TRACKING_NAME, stored))
    finally:
        studio.close()


def store_active(settings: Settings, count: int) -> tuple[UUID, list[tuple[UUID, int]]]:
    """New autopilot projects of a new owner: the owner, and each project's id and version."""
    studio = Studio(settings.database().eventsourcing_env())
    try:
        name = f"active-{int(time.time() * 1000)}"
        owner = studio.open_account(name, credits=100_000)[0].id
        made = []
        for i in range(count):
            project = studio.create_project(
                owner, title=f"Ad {i}", format="1:1", brief="b", autopilot=True, actor="bench"
            )
            made.append((project.id, studio.project(project.id).version))
        return owner, made
    finally:
        studio.close()


def delete_active(settings: Settings, owner: UUID, projects: list[tuple[UUID, int]]) -> None:
    """Delete a run's projects: the next run starts with the history's own requests in flight."""
    studio = Studio(settings.database().eventsourcing_env())
    try:
        for project_id, _ in projects:
            studio.delete_project(owner, project_id, actor="bench")
    finally:
        studio.close()


def last_position(settings: Settings) -> int:
    studio = Studio(settings.database().eventsourcing_env())
    try:
        return studio.recorder.max_notification_id() or 0
    finally:
        studio.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def broker_pid(parent: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and b"tansu" in (entry / "cmdline").read_bytes():
                return int(entry.name)
    return None


def relay_lag(url: str) -> int | None:
    """The relay's lag once it has republished what the broker lost at start (else None)."""
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(f"{url}/metrics", timeout=2).text
        lag = re.search(r"^aytada_relay_lag_events (\S+)$", text, re.M)
        again = re.search(r"^aytada_relay_republished_total (\S+)$", text, re.M)
        if lag and again and float(again[1]) > 0:
            return int(float(lag[1]))
    return None


def one_run(settings: Settings, active: int, timeout_s: float = 120.0) -> dict[str, float]:
    """Start `serve`; seconds until caught up, and the broker's memory then (and at the end)."""
    owner, projects = store_active(settings, active)
    # Their requests went out before the restart, as a `serve` that stopped mid-step left them.
    left_as_serve_leaves_it(settings, last_position(settings))
    studio = Studio(settings.database().eventsourcing_env())
    port = free_port()
    # Plug-ins installed in this virtualenv (`make test` installs the captions one) would act on
    # the window's add-on requests of the history, whose files do not exist: the core is timed.
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_PLUGINS": "none",
    }
    log = (settings.data_dir / "serve.log").open("ab")
    log.write(f"---- bench: serve started at {datetime.now(UTC).isoformat()}\n".encode())
    log.flush()
    began = time.perf_counter()
    serve = subprocess.Popen(
        [str(Path(sys.executable).parent / "aytada-es"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        lag_zero_s = moved_s = 0.0
        deadline = began + timeout_s
        while (not lag_zero_s or not moved_s) and time.perf_counter() < deadline:
            if not lag_zero_s and relay_lag(url) == 0:
                lag_zero_s = time.perf_counter() - began
            if not moved_s and all(
                studio.project(pid).version > version for pid, version in projects
            ):
                moved_s = time.perf_counter() - began
            time.sleep(0.02)
        broker = broker_pid(serve.pid)
        rss = rss_mb(broker) if broker else float("nan")
        return {"lag_zero_s": lag_zero_s, "moved_s": moved_s, "broker_mb": rss}
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        studio.close()
        log.close()
        delete_active(settings, owner, projects)


def relay_alone(settings: Settings) -> tuple[int, float, float]:
    """The relay alone (no stages) after a fresh broker: events republished, seconds, broker MB."""

    async def run() -> tuple[int, float, float]:
        with BundledBroker() as broker:
            system = bootstrap(settings, roles=("relay",), bootstrap_servers=broker.bootstrap)
            began = time.perf_counter()
            try:
                async with system.running():
                    relay = None
                    while relay is None or not relay.last_replay:
                        await asyncio.sleep(0.02)
                        relay = system.relay
                    elapsed = time.perf_counter() - began
                    return relay.last_replay, elapsed, broker.rss_bytes() / 2**20
            finally:
                system.close()

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=20_500)
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--days", type=int, default=180, help="the span of the stored history")
    parser.add_argument("--active", type=int, default=50, help="projects in flight at the start")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--relay-alone", action="store_true", help="also time the relay's replay without stages"
    )
    args = parser.parse_args()
    settings = settings_for(args.projects, args.owners, args.days)
    stored = ensure_store(settings, args.projects, args.owners, args.days)
    if args.relay_alone:
        events, seconds, mb = relay_alone(settings)
        print(
            f"relay alone: republished {events:,} events in {seconds:.2f} s"
            f" ({events / seconds:,.0f} events/s), broker RSS {mb:.0f} MB;"
            f" load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    print(f"store: {stored:,} events over {args.days} days; {args.active} active projects a run")
    for run in range(args.runs):
        figures = one_run(settings, args.active)
        caught_up = max(figures["lag_zero_s"], figures["moved_s"])
        load = os.getloadavg()
        print(
            f"run {run + 1}: caught up {caught_up:.2f} s after start"
            f" (goal {CAUGHT_UP_GOAL_S:.0f} s;"
            f" relay lag 0 at {figures['lag_zero_s']:.2f} s, every active project moved at"
            f" {figures['moved_s']:.2f} s), broker RSS {figures['broker_mb']:.0f} MB"
            f" (goal {BROKER_GOAL_MB:.0f} MB); load average {load[0]:.2f} {load[1]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
