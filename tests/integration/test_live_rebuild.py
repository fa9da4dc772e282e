"""Rebuild with no downtime (docs/api.md §6): `aytada-es projections rebuild --live` while clients
read My Videos and follow the WebSocket, on `serve`, on a web process of its own in this process,
and on a separate `aytada-es worker web`; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from web_server import Served, Site, json_of, serving, site, site_settings, wait_for
from websockets.asyncio.client import ClientConnection

from aytada_es.adapters.sql import SQLStore
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.projections.base import POSITIONS
from aytada_es.web import WebOptions
from conftest import NO_RATE_LIMITS

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]


def env_of(settings: Settings) -> dict[str, str]:
    """The environment of an `aytada-es` process over the same database."""
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": settings.database_url,
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_LOG_LEVEL": "WARNING",
        **NO_RATE_LIMITS,
    }
    env.pop("AYTADA_KAFKA_BOOTSTRAP", None)
    return env


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def elsewhere(site: Site, site_settings: Settings) -> AsyncIterator[Served]:
    """A web process over the site's database in this process: the site applies the events."""
    system = bootstrap(site_settings, roles=())
    try:
        async with serving(system, WebOptions(live="feed")) as served:
            yield served
    finally:
        system.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker_web(site: Site, site_settings: Settings) -> AsyncIterator[str]:
    """A separate `aytada-es worker web` process over the site's database: its URL."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aytada_es", "worker", "web", "--port", "0"),
        env=env_of(site_settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        url = ""
        async with asyncio.timeout(60):
            while line := (await process.stdout.readline()).decode():
                if "aytada-es web on " in line:
                    url = line.split("aytada-es web on ", 1)[1].split("/dashboard", 1)[0]
                    break
        assert url, f"worker web exited with {await process.wait()} before serving"
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(2)
            async with asyncio.timeout(30):
                await process.wait()


@dataclass
class Reader:
    """Reads `GET /api/videos` over and over; keeps every status and list length."""

    client: httpx.AsyncClient
    statuses: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    epochs: set[str] = field(default_factory=set)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            response = await self.client.get("/api/videos")
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                body = response.json()
                self.lengths.append(len(body["videos"]))
                self.epochs.add(body["epoch"])
            await asyncio.sleep(0.005)


@dataclass
class Follower:
    """One open WebSocket and every message it received."""

    ws: ClientConnection
    messages: list[dict[str, Any]] = field(default_factory=list)

    async def run(self) -> None:
        async for text in self.ws:
            self.messages.append(json.loads(text))

    def after_resync(self) -> list[dict[str, Any]]:
        kinds = [m["type"] for m in self.messages]
        return self.messages[kinds.index("resync") :] if "resync" in kinds else []


async def rebuild_live(settings: Settings) -> str:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aytada_es", "projections", "rebuild", "--live"),
        env=env_of(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode == 0, f"{out.decode()}\n{err.decode()}"
    return out.decode()


async def create(client: httpx.AsyncClient, title: str) -> str:
    brief = {"title": title, "format": "9:16", "brief": "A lamp.", "autopilot": False}
    response = await client.post("/api/projects", json=brief)
    assert response.status_code == 201, response.text
    return str(json_of(response)["id"])


async def test_rebuild_live_switches_while_clients_read_and_follow(
    site: Site, elsewhere: Served, worker_web: str, site_settings: Settings
) -> None:
    _, token = site.user()
    headers = {"Authorization": f"Bearer {token}"}
    urls = [site.url, elsewhere.url, worker_web]
    clients = [httpx.AsyncClient(base_url=u, headers=headers, timeout=10) for u in urls]
    writer = clients[0]
    for i in range(6):
        await create(writer, f"Before {i}")
    await site.settled()
    first = json_of(await writer.get("/api/videos"))
    assert len(first["videos"]) == 6
    epoch = first["epoch"]
    assert isinstance(epoch, str)

    followers = []
    for url in [site.ws_url, site.ws_url, elsewhere.ws_url, worker_web.replace("http", "ws", 1)]:
        ws = await websockets.connect(f"{url}/ws/videos", additional_headers=headers)
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert snapshot["type"] == "snapshot" and snapshot["epoch"] == epoch
        assert len(snapshot["videos"]) == 6
        followers.append(Follower(ws))
    following = [asyncio.create_task(f.run()) for f in followers]

    stop = asyncio.Event()
    readers = [Reader(c) for c in clients]
    reading = [asyncio.create_task(r.run(stop)) for r in readers]

    async def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            await create(writer, f"During {n}")
            n += 1
            await asyncio.sleep(0.2)

    writing = asyncio.create_task(keep_writing())
    try:
        printed = await rebuild_live(site_settings)
    finally:
        stop.set()
        await asyncio.gather(*reading, writing)

    # Every answer meanwhile: 200, and never a shorter list than an earlier one.
    for reader in readers:
        assert reader.statuses and set(reader.statuses) == {200}
        assert reader.lengths[0] >= 6
        assert all(b >= a for a, b in zip(reader.lengths, reader.lengths[1:], strict=False)), (
            reader.lengths
        )
    after = json_of(await writer.get("/api/videos"))
    new_epoch = after["epoch"]
    assert new_epoch != epoch
    assert f"epoch {new_epoch}" in printed

    # Every socket: a resync to the new epoch, then a new, complete snapshot.
    async def resynced() -> bool:
        return all(len(f.after_resync()) >= 2 for f in followers)

    await wait_for(resynced, 10, "a resync and a snapshot on every socket")
    for follower in followers:
        resync, snapshot = follower.after_resync()[:2]
        assert resync == {"type": "resync", "epoch": new_epoch}
        assert snapshot["type"] == "snapshot" and snapshot["epoch"] == new_epoch
        assert len(snapshot["videos"]) >= 6

    # Updates keep flowing on every socket, and every web process reads the new generation.
    latest = await create(writer, "After the switch")

    async def delivered() -> bool:
        return all(
            any(m.get("video", {}).get("id") == latest for m in f.after_resync()) for f in followers
        )

    await wait_for(delivered, 15, "the new project's update on every socket")
    for client in clients:
        listed = json_of(await client.get("/api/videos"))
        assert listed["epoch"] == new_epoch

    # The serving process keeps the new generation; the old one's tables are gone.
    store = site.system.read_models.store
    assert store.generation == int(new_epoch)
    assert not store.missing([POSITIONS, "aytada_videos"])
    old = SQLStore(store.datastore)  # generation 0: the tables' own names
    assert old.missing([POSITIONS, "aytada_videos"]) == {POSITIONS, "aytada_videos"}

    # `?after=P` from the older epoch gets a snapshot; from this one, the changes after P.
    position = after["position"]
    for query, kind in [(f"epoch={epoch}", "snapshot"), (f"epoch={new_epoch}", None)]:
        async with websockets.connect(
            f"{site.ws_url}/ws/videos?after={position}&{query}", additional_headers=headers
        ) as ws:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if kind == "snapshot":
                assert message["type"] == "snapshot" and message["epoch"] == new_epoch
            else:
                assert message["type"] == "update" and message["position"] > position

    for task in following:
        task.cancel()
    for follower in followers:
        await follower.ws.close()
    for client in clients:
        await client.aclose()
