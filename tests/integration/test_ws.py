"""The live push `/ws/videos` (docs/api.md §3) on a real server on loopback, SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import websockets
from web_server import Site, json_of, serving, site, site_settings, wait_for
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from aytada_es.web import WebOptions

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"title": "Sparkling water", "format": "9:16", "brief": "Real fruit, no sugar."}
QUIET_S = 0.4


def connect(url: str, token: str, query: str = "", **options: Any) -> websockets.connect:
    headers = {"Authorization": f"Bearer {token}"}
    return websockets.connect(f"{url}/ws/videos{query}", additional_headers=headers, **options)


async def receive(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
    return message


async def nothing_more(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), QUIET_S)


async def until(ws: ClientConnection, check: Any, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    """Messages up to and including the first that passes the check."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        seen.append(await receive(ws, max(deadline - time.monotonic(), 0.01)))
        if check(seen[-1]):
            return seen


def increasing(messages: list[dict[str, Any]]) -> bool:
    return all(a["position"] < b["position"] for a, b in pairwise(messages))


@pytest.fixture
async def alice(site: Site) -> AsyncIterator[tuple[UUID, str, httpx.AsyncClient]]:
    owner, token = site.user()
    async with site.client(token) as http:
        yield owner, token, http


async def test_a_snapshot_then_an_update_within_a_second_of_a_command(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, token, http = alice
    existing = json_of(await http.post("/api/projects", json=BRIEF))
    await site.settled()
    async with connect(site.ws_url, token) as ws:
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot"
        assert [v["id"] for v in snapshot["videos"]] == [existing["id"]]
        assert snapshot["position"] >= 1
        started = time.monotonic()
        created = json_of(await http.post("/api/projects", json={**BRIEF, "title": "Live"}))
        update = await receive(ws, 1.0)
        assert time.monotonic() - started < 1.0
        assert update == {"type": "update", "position": update["position"], "video": created}
        assert update["position"] > snapshot["position"]
        started = time.monotonic()
        await http.post(f"/api/projects/{created['id']}/ideas")
        messages = await until(ws, lambda m: m["video"]["status"] == "ideas_ready")
        assert messages[0]["video"]["status"] == "generating_ideas"
        assert time.monotonic() - started < 5.0
        assert increasing([update, *messages])


async def test_a_soft_delete_is_pushed_as_removed(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, token, http = alice
    card = json_of(await http.post("/api/projects", json=BRIEF))
    await site.settled()
    async with connect(site.ws_url, token) as ws:
        snapshot = await receive(ws)
        assert (await http.delete(f"/api/projects/{card['id']}")).status_code == 204
        removed = await receive(ws, 1.0)
        assert removed == {"type": "removed", "position": removed["position"], "id": card["id"]}
        assert removed["position"] > snapshot["position"]


async def test_resuming_after_a_position_gives_exactly_the_missed_changes_in_order(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, token, http = alice
    json_of(await http.post("/api/projects", json=BRIEF))
    await site.settled()
    async with connect(site.ws_url, token) as ws:
        seen = (await receive(ws))["position"]
    ids = [json_of(await http.post("/api/projects", json=BRIEF))["id"] for _ in range(3)]
    assert (await http.post(f"/api/projects/{ids[0]}/ideas")).status_code == 202
    await site.settled()  # listed before it is deleted: a removal, not just nothing
    deleted = await http.delete(f"/api/projects/{ids[1]}")
    assert deleted.status_code == 204, deleted.text
    await site.settled()
    missed = [c.message() for c in site.system.read_models.videos.changes_after(owner, seen)]
    assert len(missed) >= 4
    async with connect(site.ws_url, token, f"?after={seen}") as ws:
        resumed = [await receive(ws) for _ in missed]
        assert resumed == missed
        assert increasing(resumed) and resumed[0]["position"] > seen
        assert [m["id"] for m in resumed if m["type"] == "removed"] == [ids[1]]
        await nothing_more(ws)
        last = resumed[-1]["position"]
        live = json_of(await http.post("/api/projects", json=BRIEF))
        update = await receive(ws)
        assert update["video"] == live and update["position"] > last


async def test_a_position_the_feed_cannot_resume_from_gets_a_new_snapshot(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, token, http = alice
    card = json_of(await http.post("/api/projects", json=BRIEF))
    await site.settled()
    videos = site.system.read_models.videos
    oldest = videos.oldest_change_position()
    assert oldest is not None and oldest > 1
    for after in (0, oldest - 2, videos.position() + 1000):
        async with connect(site.ws_url, token, f"?after={after}") as ws:
            snapshot = await receive(ws)
            assert snapshot["type"] == "snapshot", after
            assert [v["id"] for v in snapshot["videos"]] == [card["id"]]
            assert snapshot["position"] == videos.position()
    async with connect(site.ws_url, token, f"?after={videos.position()}") as ws:
        await nothing_more(ws)  # nothing missed: nothing to send
    for bad in ("-1", "abc", "1.5", "%C2%B2", "9" * 30):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(site.ws_url, token, f"?after={bad}"):
                pass
        assert refused.value.response.status_code == 422
        body = json.loads(refused.value.response.body or b"{}")
        assert body["error"]["fields"] == {"after": "a position: a whole number, 0 or more"}
    del owner


async def test_a_user_receives_only_their_own_projects(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, alice_token, alice_http = alice
    _, bob_token = site.user()
    await site.settled()
    async with (
        connect(site.ws_url, alice_token) as alice_ws,
        connect(site.ws_url, bob_token) as bob_ws,
        site.client(bob_token) as bob_http,
    ):
        assert (await receive(alice_ws))["videos"] == []
        assert (await receive(bob_ws))["videos"] == []
        mine = json_of(await alice_http.post("/api/projects", json=BRIEF))
        assert (await receive(alice_ws))["video"]["id"] == mine["id"]
        await nothing_more(bob_ws)
        his = json_of(await bob_http.post("/api/projects", json=BRIEF))
        assert (await receive(bob_ws))["video"]["id"] == his["id"]
        await nothing_more(alice_ws)
        await bob_http.delete(f"/api/projects/{his['id']}")
        assert (await receive(bob_ws))["type"] == "removed"
        await nothing_more(alice_ws)


async def test_unauthenticated_or_cross_site_sockets_are_refused(site: Site) -> None:
    _, token = site.user()
    for headers in ({}, {"Authorization": "Bearer ayt_wrong"}):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"{site.ws_url}/ws/videos", additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
    async with websockets.connect(f"{site.ws_url}/ws/videos?token={token}") as ws:
        assert (await receive(ws))["type"] == "snapshot"
    async with site.client() as http:
        await http.post("/login", data={"token": token})
        cookie = f"aytada_session={http.cookies['aytada_session']}"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            f"{site.ws_url}/ws/videos",
            additional_headers={"Cookie": cookie},
            origin="http://evil.example",  # type: ignore[arg-type]
        ):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(
        f"{site.ws_url}/ws/videos",
        additional_headers={"Cookie": cookie},
        origin=site.url,  # type: ignore[arg-type]
    ) as ws:
        assert (await receive(ws))["type"] == "snapshot"


async def test_a_slow_client_is_closed_with_4008_while_the_others_keep_up(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, token, _ = alice
    await site.settled()
    # Small socket buffers on both ends, and a client that never reads: its backlog stays in
    # the server's queue.
    async with serving(site.system, WebOptions(queue_limit=32), send_buffer=4096) as served:
        hub = served.web.hub
        slow = await RawSocket.open(served.url, token)
        async with connect(served.ws_url, token) as fast:
            assert (await receive(fast))["type"] == "snapshot"
            title = "t" * 200  # big cards fill the buffers sooner

            def create_many() -> list[str]:
                studio = site.system.studio
                return [
                    str(
                        studio.create_project(
                            owner, title=title, format="1:1", brief="b", actor="user:test"
                        ).id
                    )
                    for _ in range(400)
                ]

            creating = asyncio.create_task(asyncio.to_thread(create_many))
            received = [await receive(fast, 30.0) for _ in range(400)]
            ids = await creating
            assert [m["video"]["id"] for m in received] == ids
            assert increasing(received)
            await wait_for(lambda: _true(hub.too_slow == 1), 10, "the slow client to be dropped")
            assert hub.connections == 1
            code, reason = await slow.read_until_closed()
            assert code == 4008 and "?after=" in reason
            await nothing_more(fast)


class RawSocket:
    """A WebSocket client that reads nothing until asked to: a client too slow to keep up."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def open(cls, url: str, token: str) -> RawSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        await loop.sock_connect(sock, (host, int(port)))
        request = (
            f"GET /ws/videos HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await loop.sock_recv(sock, 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(sock)

    async def read_until_closed(self) -> tuple[int, str]:
        """Read every frame until the server's close frame: its code and reason."""
        loop = asyncio.get_running_loop()
        buffer = b""
        try:
            while True:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 15)
                assert chunk, "the connection ended without a close frame"
                buffer += chunk
                while len(buffer) >= 2:
                    length, start = buffer[1] & 0x7F, 2
                    if length == 126:
                        length, start = int.from_bytes(buffer[2:4], "big"), 4
                    if len(buffer) < start + length:
                        break
                    opcode, payload = buffer[0] & 0x0F, buffer[start : start + length]
                    buffer = buffer[start + length :]
                    if opcode == 0x8:
                        return int.from_bytes(payload[:2], "big"), payload[2:].decode()
        finally:
            self.sock.close()


async def test_a_web_process_without_projections_tails_the_change_feed(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, token, http = alice
    await site.settled()
    async with serving(site.system, WebOptions(live="feed")) as other:
        assert other.web.hub.source == "feed"
        async with (
            connect(other.ws_url, token) as there,
            connect(site.ws_url, token) as here,
        ):
            first = await receive(there)
            assert first["type"] == "snapshot"
            assert (await receive(here))["type"] == "snapshot"
            card = json_of(await http.post("/api/projects", json=BRIEF))
            started = time.monotonic()
            pushed = await receive(there, 1.0)
            assert time.monotonic() - started < 1.0
            assert pushed == await receive(here)
            assert pushed["video"] == card
            await http.post(f"/api/projects/{card['id']}/ideas")
            tail = await until(there, lambda m: m["video"]["status"] == "ideas_ready")
            assert increasing([first, pushed, *tail])


async def _true(value: bool) -> bool:
    return value


def _serve(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `aytada-es ARGS --port 0`: the process, its URL and what it printed up to it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aytada_es", *args, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        lines.append(process.stdout.readline())
        if "Ctrl-C stops" in lines[-1]:
            url = next(line.split()[3] for line in lines if line.startswith("aytada-es web on"))
            return process, url.removesuffix("/dashboard/videos"), lines
    _stop(process)
    raise AssertionError(f"{args} did not start: {lines}")


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def test_serve_and_a_separate_web_worker_push_every_change(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(tmp_path / "var"),
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_LOG_LEVEL": "WARNING",
    }
    env.pop("AYTADA_DATABASE_URL", None)
    env.pop("AYTADA_KAFKA_BOOTSTRAP", None)
    serve, serve_url, printed = await asyncio.to_thread(_serve, "serve", env=env)
    web = None
    try:
        demo = next(line for line in printed if line.startswith("demo login"))
        token = demo.split("token ")[1].split()[0]
        web, web_url, _ = await asyncio.to_thread(_serve, "worker", "web", env=env)
        async with (
            httpx.AsyncClient(
                base_url=serve_url, headers={"Authorization": f"Bearer {token}"}
            ) as http,
            connect(web_url.replace("http://", "ws://"), token) as there,
        ):
            assert (await http.get("/healthz")).status_code == 200
            async with httpx.AsyncClient(base_url=web_url) as other:
                health = json_of(await other.get("/healthz"))
                names = (
                    "videos",
                    "deleted",
                    "accounts",
                    "scripts",
                    "images",
                    "credits",
                    "open_steps",
                )
                assert health["status"] == "ok"
                assert set(health["parts"]) == {
                    "store",
                    "push",
                    *(f"read_model:{n}" for n in names),
                }
            assert (await receive(there, 10))["type"] == "snapshot"
            card = json_of(await http.post("/api/projects", json={**BRIEF, "autopilot": True}))
            pushed = await receive(there, 1.0)
            assert pushed["video"]["id"] == card["id"]
            done = await until(there, lambda m: m["video"]["status"] == "completed", 60)
            assert increasing([pushed, *done])
    finally:
        if web is not None:
            assert await asyncio.to_thread(_stop, web) == 0
        assert await asyncio.to_thread(_stop, serve) == 0
    serve, _, printed = await asyncio.to_thread(_serve, "serve", env=env)
    try:
        again = next(line for line in printed if line.startswith("demo login"))
        assert "aytada-es users add" in again and "ayt_" not in again
    finally:
        assert await asyncio.to_thread(_stop, serve) == 0
