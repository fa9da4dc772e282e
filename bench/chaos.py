"""Chaos run: every role in its own process, one killed with SIGKILL every few seconds.

Usage: python bench/chaos.py [--projects N] [--database-url URL] [--kill-every S] [--seed N]

Starts the bundled broker on a fixed port, two relays (one publishes, one stands by), two stage
workers, the projections and the web app as `aytada-es worker ...` processes on PostgreSQL, with
the instant providers. It creates N autopilot projects while, every S seconds, it kills a worker
with SIGKILL and starts it again (each worker in turn, in a random order each round), and it
restarts the broker once, mid-run (losing every topic and committed offset).
Two WebSocket clients follow the owner's My Videos throughout, resuming with `?after=P`.

Then it checks: every project completed (a failed one is retried once its reason is recorded),
no step charged twice, every credit ledger consistent, the read models equal a rebuild, the
topics hold every stored event again, and the WebSocket positions only went up and end at the
same cards as `GET /api/videos`. Prints the figures and each check; exits 1 if one fails.

Without --database-url it makes a schema of its own in the local `test` database and drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aytada_es.adapters.sql import SQLStore
from aytada_es.application import Studio
from aytada_es.config import Database, Settings
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Step
from aytada_es.kafka.broker import BundledBroker, free_port
from aytada_es.kafka.topics import ACCOUNT_EVENTS, PROJECT_EVENTS
from aytada_es.projections import ReadModels

LOCAL_TEST_DB = "postgresql://postgres@127.0.0.1:5432/test"
CREDITS = 10_000_000
FORMATS = ("9:16", "16:9", "1:1", "4:5")
# Everything else is the same however the log was cut into batches; the change feed has one row
# per project per batch, so it is checked through each project's last change instead.
CHANGE_FEED = "aytada_video_changes"
POSITIONS = "aytada_positions"


@dataclass
class Worker:
    """One `aytada-es worker ROLE` process, started again after each kill."""

    name: str
    role: str
    env: dict[str, str]
    log_dir: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> None:
        self.starts += 1
        with self.log_file.open("ab") as out:
            out.write(f"==== start {self.starts}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aytada_es", "worker", self.role, *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Watcher:
    """A browser's WebSocket on My Videos: resumes with `?after=P`, checks every position."""

    name: str
    url: str
    token: str
    position: int | None = None
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: int = 0
    connections: int = 0
    problems: list[str] = field(default_factory=list)

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            url = self.url if self.position is None else f"{self.url}?after={self.position}"
            try:
                async with connect(
                    url, additional_headers={"Authorization": f"Bearer {self.token}"}
                ) as socket:
                    self.connections += 1
                    receiving = asyncio.ensure_future(self._receive(socket))
                    stopping = asyncio.ensure_future(stop.wait())
                    await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    receiving.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await receiving
            except (OSError, ConnectionClosed, InvalidStatus, TimeoutError):
                pass  # the web worker is down or going: try again
            if not stop.is_set():
                await asyncio.sleep(0.2)

    async def _receive(self, socket: Any) -> None:
        first = True
        async for text in socket:
            self.messages += 1
            self._take(json.loads(text), first)
            first = False

    def _take(self, message: dict[str, Any], first: bool) -> None:
        position = message["position"]
        before = self.position
        if message["type"] == "snapshot":
            # A snapshot starts a connection (or replaces a resume that is no longer possible).
            if not first:
                self.problems.append(f"{self.name}: a snapshot in the middle of a connection")
            if before is not None and position < before:
                self.problems.append(f"{self.name}: snapshot at {position} after {before}")
            self.cards = {card["id"]: card for card in message["videos"]}
        else:
            if before is not None and position <= before:
                self.problems.append(f"{self.name}: {message['type']} at {position} after {before}")
            if message["type"] == "update":
                self.cards[message["video"]["id"]] = message["video"]
            elif message["type"] == "removed":
                self.cards.pop(message["id"], None)
        self.position = position if before is None else max(before, position)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="PostgreSQL, an empty schema")
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between kills")
    parser.add_argument("--create-s", type=float, default=None, help="seconds to create them in")
    parser.add_argument("--settle-s", type=float, default=8.0, help="kills after the last create")
    parser.add_argument("--timeout", type=float, default=600.0, help="for everything to settle")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    return parser.parse_args()


def own_schema() -> tuple[str, str]:
    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_dsn(Database.parse(LOCAL_TEST_DB)), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{LOCAL_TEST_DB}?schema={schema}", schema


def drop_schema(database: Database, schema: str) -> None:
    with psycopg.connect(_dsn(database), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _dsn(db: Database) -> str:
    return f"host={db.host} port={db.port} dbname={db.name} user={db.user} password={db.password}"


async def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class ChaosRun:
    """The processes, the clients and the figures of one run."""

    def __init__(self, args: argparse.Namespace, database_url: str, data_dir: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.data_dir = data_dir
        self.database_url = database_url
        self.namespace = f"chaos{uuid.uuid4().hex[:6]}."
        self.broker = BundledBroker(port=free_port(), log_file=data_dir / "broker.log")
        self.web_port = free_port()
        while self.web_port == self.broker.port:
            self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        env = {
            **os.environ,
            "AYTADA_DATA_DIR": str(data_dir / "var"),
            "AYTADA_DATABASE_URL": database_url,
            "AYTADA_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "AYTADA_KAFKA_NAMESPACE": self.namespace,
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_RELAY_CHECK_S": "0.5",
            "AYTADA_STAGE_BACKOFF_S": "0.05",
            "AYTADA_LOG_LEVEL": "INFO",
            "AYTADA_RATE_LIMIT_WRITES": "0",  # retries of failed projects, as fast as they come
        }
        self.settings = Settings.from_env(env)
        logs = data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        web_args = ("--port", str(self.web_port))
        self.workers = [
            Worker("relay-1", "relay", env, logs),
            Worker("relay-2", "relay", env, logs),
            Worker("stages-1", "stages", env, logs),
            Worker("stages-2", "stages", env, logs),
            Worker("projections", "projections", env, logs),
            Worker("web", "web", env, logs, web_args),
        ]
        self.kills: Counter[str] = Counter()
        self.exits: Counter[str] = Counter()  # workers that died on their own, started again
        self.broker_restarts = 0
        self.retried: set[UUID] = set()

    async def run(self) -> int:
        began = time.monotonic()
        await asyncio.to_thread(self.broker.start)
        studio = Studio(self.settings.database().eventsourcing_env())
        http = httpx.AsyncClient(base_url=self.base_url, timeout=10.0)
        stop = asyncio.Event()
        watchers: list[Watcher] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            account, token = studio.open_account("chaos", credits=CREDITS, actor="cli:chaos")
            http.headers["Authorization"] = f"Bearer {token}"
            for worker in self.workers:
                worker.start()
            tasks.append(asyncio.create_task(self._supervise(stop)))
            await wait_until(lambda: self._web_up(http), 60, "the web worker")
            ws_url = f"ws://127.0.0.1:{self.web_port}/ws/videos"
            watchers = [Watcher(f"ws-{i}", ws_url, token) for i in (1, 2)]
            tasks += [asyncio.create_task(w.follow(stop)) for w in watchers]
            create_s = self.args.create_s or max(10.0, self.args.projects * 0.3)
            ids: list[UUID] = []
            chaos = asyncio.create_task(self._chaos(create_s + self.args.settle_s, studio, ids))
            await self._create(studio, account.id, create_s, ids)
            await chaos
            await self._settle(studio, http, ids)
            duration = time.monotonic() - began
            await self._caught_up(studio)
            checks = await asyncio.to_thread(self._store_checks, studio, account.id, ids)
            checks.append(await self._topic_check(studio))
            checks += await self._push_checks(http, watchers)
            self._report(studio, ids, duration, watchers, checks)
            return 0 if all(c.ok for c in checks) else 1
        except BaseException:
            for worker in (w for w in self.workers if w.log_file.exists()):
                lines = worker.log_file.read_text(errors="replace").splitlines()[-15:]
                print(f"---- {worker.name} (last lines)", *lines, sep="\n", file=sys.stderr)
            raise
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for worker in self.workers:
                worker.stop()
            await http.aclose()
            studio.close()
            await asyncio.to_thread(self.broker.stop)

    async def _supervise(self, stop: asyncio.Event) -> None:
        """Start again a worker that exited by itself, as a process supervisor would."""
        while not stop.is_set():
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() is not None:
                    self.exits[worker.name] += 1
                    print(f"  {worker.name} exited by itself (code {worker.process.returncode})")
                    worker.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def _web_up(self, http: httpx.AsyncClient) -> bool:
        try:
            return (await http.get("/api/videos")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _create(self, studio: Studio, owner: UUID, over_s: float, ids: list[UUID]) -> None:
        """Create the autopilot projects evenly over `over_s` seconds."""
        began = time.monotonic()
        for i in range(self.args.projects):
            project = await asyncio.to_thread(
                studio.create_project,
                owner,
                title=f"Chaos ad {i}",
                format=FORMATS[i % 4],
                brief="Sparkling water with real fruit, for people on the move.",
                autopilot=True,
                actor="user:chaos",
            )
            ids.append(project.id)
            await asyncio.sleep(
                max(0.0, began + over_s * (i + 1) / self.args.projects - time.monotonic())
            )

    async def _chaos(self, duration_s: float, studio: Studio, ids: list[UUID]) -> None:
        """Kill a worker every few seconds; restart the broker once, mid-run."""
        ends = time.monotonic() + duration_s
        broker_at = time.monotonic() + duration_s * 0.4
        victims: list[Worker] = []
        while time.monotonic() < ends:
            await asyncio.sleep(self.args.kill_every)
            now = time.monotonic()
            if not self.broker_restarts and now >= broker_at:
                statuses = await asyncio.to_thread(lambda: [studio.project(i).status for i in ids])
                midway = "completed" in statuses and any(s.is_active for s in statuses)
                if midway or now + self.args.kill_every >= ends:
                    await asyncio.to_thread(self.broker.restart)
                    self.broker_restarts += 1
                    active = sum(1 for s in statuses if s.is_active)
                    print(
                        f"  {now - ends + duration_s:6.1f} s  restarted the broker: every topic"
                        f" and offset gone ({active} projects active)"
                    )
                    continue
            if not victims:  # every worker in turn, in a random order each round
                victims = self.rng.sample(self.workers, len(self.workers))
            worker = victims.pop()
            worker.kill()
            self.kills[worker.role] += 1
            print(
                f"  {time.monotonic() - ends + duration_s:6.1f} s  killed {worker.name}", flush=True
            )
            worker.start()

    async def _settle(self, studio: Studio, http: httpx.AsyncClient, ids: list[UUID]) -> None:
        """Wait for every project to complete; retry a failed one once it recorded why."""

        async def all_completed() -> bool:
            projects = await asyncio.to_thread(lambda: [studio.project(i) for i in ids])
            for project in projects:
                if project.status == "failed" and project.failure and project.failure["error"]:
                    with contextlib.suppress(httpx.HTTPError):
                        answer = await http.post(f"/api/projects/{project.id}/retry")
                        if answer.status_code == 202:
                            self.retried.add(project.id)
            return all(p.status == "completed" for p in projects)

        try:
            await wait_until(all_completed, self.args.timeout, "every project to complete")
        except TimeoutError:
            for project in await asyncio.to_thread(lambda: [studio.project(i) for i in ids]):
                if project.status != "completed":
                    print(f"  not completed: {project.id} {project.status} {project.request}")
            raise

    async def _caught_up(self, studio: Studio) -> None:
        """Wait for every read model to reach the last stored event."""
        models = ReadModels(studio)

        async def projected() -> bool:
            last = await asyncio.to_thread(studio.recorder.max_notification_id) or 0
            return min((await asyncio.to_thread(models.positions)).values()) >= last

        await wait_until(projected, 120, "the read models to catch up")

    def _store_checks(self, studio: Studio, owner: UUID, ids: list[UUID]) -> list[Check]:
        checks: list[Check] = []
        projects = [studio.project(i) for i in ids]
        incomplete = [str(p.id) for p in projects if p.status != "completed"]
        checks.append(
            Check(
                "every project completed",
                not incomplete,
                f"{len(ids) - len(incomplete)}/{len(ids)}, {len(self.retried)} after a retry",
            )
        )
        unexplained = []
        twice: list[str] = []
        for project in projects:
            events = list(studio.events.get(project.id))
            failures = [e for e in events if isinstance(e, Project.StepFailed)]
            unexplained += [str(project.id) for f in failures if not (f.error and f.step)]
            charged = Counter(e.step for e in events if isinstance(e, Project.CreditsCharged))
            if charged != Counter(s.value for s in Step):
                twice.append(f"{project.id}: {dict(charged)}")
            scenes = Counter(e.scene for e in events if isinstance(e, Project.ClipRendered))
            if max(scenes.values(), default=1) > 1:
                twice.append(f"{project.id}: clips {dict(scenes)}")
        failed = sum(1 for p in projects if p.failure is not None) + len(self.retried)
        checks.append(
            Check(
                "every failure recorded its step and error",
                not unexplained,
                f"{failed} failures" + (f"; unexplained: {unexplained[:3]}" if unexplained else ""),
            )
        )
        store = SQLStore.of(studio)
        movements = store.query(
            "SELECT project_id, step, COUNT(*) AS n FROM {aytada_credit_movements}"
            " WHERE kind = 'charge' GROUP BY project_id, step"
        )
        twice += [
            f"{m['project_id']} {m['step']}: {m['n']} charges" for m in movements if m["n"] > 1
        ]
        charged_steps = sum(int(m["n"]) for m in movements)
        checks.append(
            Check(
                "no step charged twice",
                not twice and charged_steps == len(ids) * len(Step),
                f"{charged_steps} charges for {len(ids)} projects x {len(Step)} steps"
                + (f"; {twice[:3]}" if twice else ""),
            )
        )
        inconsistent = [
            str(p.id) for p in projects if not p.reconciliation().consistent or p.still_reserved
        ]
        account = studio.account(owner)
        spent = sum(p.charged for p in projects)
        checks.append(
            Check(
                "every credit reconciliation consistent",
                not inconsistent and account.reserved == 0 and account.balance == CREDITS - spent,
                f"{spent} credits charged, balance {account.balance}, reserved {account.reserved}",
            )
        )
        checks.append(self._rebuild_check(studio))
        return checks

    def _rebuild_check(self, studio: Studio) -> Check:
        """Rebuild every read model into a fresh schema and compare the tables row by row."""
        live_db = self.settings.database()
        fresh = f"{live_db.db_schema}_rebuilt"
        with psycopg.connect(_dsn(live_db), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{fresh}"')
        target = Studio({**live_db.eventsourcing_env(), "POSTGRES_SCHEMA": fresh})
        try:
            rebuilt = ReadModels(studio, SQLStore.of(target))
            replayed = rebuilt.rebuild()
            tables = [POSITIONS, *(t for p in rebuilt.projections for t in p.tables)]
            tables.remove(CHANGE_FEED)
            with psycopg.connect(_dsn(live_db)) as conn:
                differ = [
                    t for t in tables if _rows(conn, live_db.db_schema, t) != _rows(conn, fresh, t)
                ]
                same_feed = _last_changes(conn, live_db.db_schema) == _last_changes(conn, fresh)
        finally:
            target.close()
            drop_schema(live_db, fresh)
        return Check(
            "read models equal a rebuild",
            not differ and same_feed,
            f"{len(tables)} tables row by row after replaying {replayed} events, and each"
            " project's last change-feed card"
            + (f"; differ: {differ}" if differ else "")
            + ("" if same_feed else "; the change feed's last cards differ"),
        )

    async def _topic_check(self, studio: Studio) -> Check:
        """After the broker's loss and the relays' takeovers, the topics hold every event."""
        total = await asyncio.to_thread(studio.recorder.max_notification_id) or 0
        stored = {
            n.id
            for n in await asyncio.to_thread(studio.recorder.select_notifications, 1, total + 1)
        }
        consumer = AIOKafkaConsumer(
            self.settings.topic(PROJECT_EVENTS),
            self.settings.topic(ACCOUNT_EVENTS),
            bootstrap_servers=self.broker.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        seen: set[int] = set()
        try:
            deadline = time.monotonic() + 30
            while not stored <= seen and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.update(json.loads(r.value)["position"] for r in records)
        finally:
            await consumer.stop()
        missing = sorted(stored - seen)
        return Check(
            "the topics hold every stored event",
            not missing,
            f"{len(stored)} events" + (f"; missing {missing[:5]}..." if missing else ""),
        )

    async def _push_checks(self, http: httpx.AsyncClient, watchers: list[Watcher]) -> list[Check]:
        listed: list[dict[str, Any]] = []

        async def pushed() -> bool:
            nonlocal listed
            try:
                listed = (await http.get("/api/videos")).json()["videos"]
            except (httpx.HTTPError, KeyError, ValueError):
                return False
            return all(w.cards == {card["id"]: card for card in listed} for w in watchers)

        with contextlib.suppress(TimeoutError):
            await wait_until(pushed, 30, "the WebSocket clients to show every card")
        expected = {card["id"]: card for card in listed}
        differ = [w.name for w in watchers if w.cards != expected]
        problems = [p for w in watchers for p in w.problems]
        return [
            Check(
                "WebSocket positions strictly increase",
                not problems,
                f"{sum(w.messages for w in watchers)} messages over"
                f" {sum(w.connections for w in watchers)} connections"
                + (f"; {problems[:3]}" if problems else ""),
            ),
            Check(
                "WebSocket cards end as GET /api/videos",
                not differ
                and len(listed) == self.args.projects
                and all(c["status"] == "completed" for c in listed),
                f"{len(listed)} cards" + (f"; differ: {differ}" if differ else ""),
            ),
        ]

    def _report(
        self,
        studio: Studio,
        ids: list[UUID],
        duration: float,
        watchers: list[Watcher],
        checks: list[Check],
    ) -> None:
        relay_logs = "".join(
            w.log_file.read_text(errors="replace") for w in self.workers if w.role == "relay"
        )
        republished = sum(
            int(n) for n in re.findall(r"relay: republished (\d+) events", relay_logs)
        )
        leads = len(re.findall(r"relay: publishing from position", relay_logs))
        kills = ", ".join(f"{role} {n}" for role, n in sorted(self.kills.items()))
        print(f"projects:            {len(ids)}")
        print(f"kills (SIGKILL):     {sum(self.kills.values())} ({kills})")
        print(f"broker restarts:     {self.broker_restarts}")
        exits = ", ".join(f"{name} {n}" for name, n in sorted(self.exits.items())) or "none"
        print(f"exits on their own:  {sum(self.exits.values())} ({exits})")
        print(f"relay leaderships:   {leads} ({max(leads - 1, 0)} takeovers by a standby)")
        print(f"duration:            {duration:.1f} s (first start to every project completed)")
        stored = SQLStore.of(studio).query("SELECT COUNT(*) AS n FROM {aytada_events}")
        print(f"events:              {stored[0]['n']} stored")
        print(f"republished events:  {republished}")
        print(f"retried projects:    {len(self.retried)}")
        print(
            f"WebSocket messages:  {sum(w.messages for w in watchers)}"
            f" over {sum(w.connections for w in watchers)} connections"
        )
        for check in checks:
            print(f"  [{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
        print(f"checks passed:       {sum(c.ok for c in checks)}/{len(checks)}")


def _rows(conn: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[Any, ...]]:
    query = f'SELECT * FROM "{schema}"."{table}"'
    return sorted((tuple(row) for row in conn.execute(query)), key=repr)


def _last_changes(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """Each project's card as its last change-feed row has it."""
    rows = conn.execute(
        f'SELECT DISTINCT ON (project_id) project_id, card FROM "{schema}"."{CHANGE_FEED}"'
        " ORDER BY project_id, position DESC"
    )
    return {project_id: json.loads(card) if card else None for project_id, card in rows}


def main() -> int:
    args = parse_args()
    own = None
    database_url = args.database_url
    if database_url is None:
        database_url, own = own_schema()
    data_dir = Path(tempfile.mkdtemp(prefix="aytada-chaos-"))
    print(
        f"chaos run: {args.projects} projects, a kill every {args.kill_every:g} s;"
        f" data in {data_dir}"
    )
    try:
        return asyncio.run(ChaosRun(args, database_url, data_dir).run())
    finally:
        if own is not None:
            drop_schema(Database.parse(database_url), own)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
