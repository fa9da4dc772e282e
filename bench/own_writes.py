"""Read-your-writes benchmark: how long a read with `?min_position=` waits after a command.

Usage: python bench/own_writes.py [--commands 200] [--postgres]

Runs, in one process on loopback and in a fresh data dir, a system that applies the read models
with a web app over it (as in `serve`: its projection runner wakes the waiting reads), and a
second web app with no read models of its own (as `worker web`: its reads look at the positions
every 50 ms). Through each, one user creates N projects one after the other; after each create
it reads `GET /api/videos` twice: first without `min_position` (does the list already hold the
new card?), then with the create's `X-Aytada-Position` (it must). Prints, for each web app, how
often the plain read missed the user's own new project, and the waiting read's latency
(p50/p95/max, from the create's answer to the list's). SQLite by default; with --postgres,
a schema of its own in the local `test` database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.web import create_app
from aytada_es.web.serving import WebServer

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
BRIEF = {"title": "Bench", "format": "9:16", "brief": "A read that waits for its own write."}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(url: str, token: str, commands: int) -> tuple[int, list[float]]:
    """How many plain reads missed the new card, and each waiting read's latency (ms)."""
    missed, waits = 0, []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(commands):
            created = await client.post("/api/projects", json=BRIEF)
            created.raise_for_status()
            began = time.perf_counter()
            id, position = created.json()["id"], created.headers["X-Aytada-Position"]
            plain = (await client.get("/api/videos")).json()
            missed += all(card["id"] != id for card in plain["videos"])
            waited = await client.get("/api/videos", params={"min_position": position})
            waits.append((time.perf_counter() - began) * 1000)
            listed = waited.json()
            if waited.status_code != 200 or all(card["id"] != id for card in listed["videos"]):
                raise SystemExit(f"a read with min_position={position} missed project {id}")
    return missed, waits


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the local `test` database, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def main(commands: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings.from_env(
            {
                "AYTADA_DATA_DIR": str(Path(data) / "var"),
                "AYTADA_DATABASE_URL": database_url or f"sqlite:///{data}/aytada.sqlite",
                "AYTADA_KAFKA_NAMESPACE": f"b{uuid.uuid4().hex[:10]}.",
                "AYTADA_PROVIDERS": "instant",
                "AYTADA_RATE_LIMIT_LOGIN": "0",
                "AYTADA_RATE_LIMIT_WRITES": "0",
            }
        )
        applier = bootstrap(settings, roles=("projections",))
        async with applier.running():
            alone = bootstrap(settings, roles=(), bootstrap_servers=applier.bootstrap_servers)
            systems: list[tuple[str, System]] = [
                ("web app with the read models (serve)", applier),
                ("web app without them (worker web)", alone),
            ]
            async with alone.running():
                for name, system in systems:
                    _, token = system.studio.open_account(f"u{uuid.uuid4().hex[:8]}", credits=10)
                    app = create_app(system.service())
                    async with WebServer(app, host="127.0.0.1", port=0) as server:
                        missed, waits = await measure(server.url, token, commands)
                    print(
                        f"{name}: {commands} creates; plain reads right after that missed the"
                        f" new project: {missed} ({missed / commands:.0%}); reads with"
                        f" min_position: p50 {percentile(waits, 50):.1f} ms,"
                        f" p95 {percentile(waits, 95):.1f} ms, max {max(waits):.1f} ms"
                    )
            alone.close()
        applier.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    options = parser.parse_args()
    if options.postgres:
        with postgres_schema() as url:
            asyncio.run(main(options.commands, url))
    else:
        asyncio.run(main(options.commands, None))
