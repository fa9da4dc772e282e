"""Web edge benchmark: live-push latency, memory per idle WebSocket, My Videos list latency.

Usage: python bench/web.py [--clients 1000] [--idle 10000] [--projects 500] [--rate 200]
Starts, on loopback only and in a fresh data dir, `aytada-es serve` (everything in one process)
and `aytada-es worker web` (a web process alone, tailing the change feed), then prints:
- push latency from a command's commit (the event's own timestamp, which the card carries as
  `updated_at`) to the message arriving at each of N connected WebSocket clients (p50/p99),
  through `serve` (pushed by its projections) and through `worker web` (the change feed);
- the RSS of the `worker web` process holding M idle WebSocket connections;
- GET /api/videos latency (p50/p99) for a user with P projects at R requests/s, open loop.
Clients are raw asyncio sockets speaking just enough WebSocket (no per-message library cost),
so the figures are the server's, not the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from aytada_es.web.quota import descriptor_budget

HOST = "127.0.0.1"
GOALS = {"push_p99_ms": 50.0, "rss_mb": 600.0, "list_p99_ms": 25.0}


def raise_file_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# ---- a minimal WebSocket client ---------------------------------------------------------------


class Socket(asyncio.Protocol):
    """One client connection: records when each text message arrives, answers pings."""

    def __init__(self, on_text: Callable[[float, bytes], None] | None) -> None:
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.texts = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self.buffer += data
        if not self.upgraded.done():
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self.buffer = rest
            self.upgraded.set_result(None)
        while (frame := self._frame()) is not None:
            opcode, payload = frame
            if opcode == 0x1:
                self.texts += 1
                if self.on_text is not None:
                    self.on_text(arrived, payload)
            elif opcode == 0x9:  # ping: pong with the same payload
                self._send(0xA, payload)
            elif opcode == 0x8 and not self.closed.done():
                self.closed.set_result(payload)

    def _frame(self) -> tuple[int, bytes] | None:
        b = self.buffer
        if len(b) < 2:
            return None
        length, start = b[1] & 0x7F, 2
        if length == 126:
            if len(b) < 4:
                return None
            length, start = int.from_bytes(b[2:4], "big"), 4
        elif length == 127:
            if len(b) < 10:
                return None
            length, start = int.from_bytes(b[2:10], "big"), 10
        if len(b) < start + length:
            return None
        self.buffer = b[start + length :]
        return b[0] & 0x0F, b[start : start + length]

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(b"")
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("lost before the upgrade"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_socket(
    port: int, token: str, on_text: Callable[[float, bytes], None] | None = None
) -> Socket:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Socket(on_text), HOST, port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/videos HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    assert client.transport is not None
    client.transport.write(request.encode())
    await asyncio.wait_for(client.upgraded, 60)
    return client


async def open_many(port: int, token: str, count: int, **kw: Any) -> list[Socket]:
    sockets: list[Socket] = []
    batch = 200
    for start in range(0, count, batch):
        sockets += await asyncio.gather(
            *(open_socket(port, token, **kw) for _ in range(min(batch, count - start)))
        )
    return sockets


# ---- the servers ------------------------------------------------------------------------------


def start_server(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start `aytada-es ARGS --port 0`; returns the process and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aytada_es", *args, "--host", HOST, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=raise_file_limit,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if match := re.search(r"web on (http://[\d.]+:\d+)", line):
            return process, match.group(1)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"{' '.join(args)} did not start")


def stop_server(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def new_user(env: dict[str, str], name: str, credits: int = 10**7) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aytada_es", "users", "add", name, "--credits", str(credits)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


# ---- the measurements -------------------------------------------------------------------------


async def push_latency(
    url: str, token: str, clients: int, commands: int, command_url: str
) -> list[float]:
    """Milliseconds from each command's event timestamp to each client (on `url`) receiving it."""
    port = int(url.rsplit(":", 1)[1])
    received: list[tuple[float, bytes]] = []  # decoded afterwards: the client stays cheap

    def on_text(arrived: float, payload: bytes) -> None:
        received.append((arrived, payload))

    sockets = await open_many(port, token, clients, on_text=on_text)
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=command_url, headers=auth(token), timeout=30) as http:
            (await http.post("/api/projects", json=brief("Warm-up"))).raise_for_status()
            await asyncio.sleep(1.0)
            received.clear()
            for i in range(commands):
                (await http.post("/api/projects", json=brief(f"Pushed {i}"))).raise_for_status()
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.0)
        arrivals: dict[int, list[float]] = {}
        for arrived, payload in received:
            message = json.loads(payload)
            if message["type"] == "update":
                committed = datetime.fromisoformat(message["video"]["updated_at"]).timestamp()
                arrivals.setdefault(message["position"], []).append((arrived - committed) * 1000)
        complete = [values for values in arrivals.values() if len(values) == clients]
        if len(complete) != commands:
            raise RuntimeError(f"{commands - len(complete)} changes did not reach every client")
        latencies = [v for values in complete for v in values]
    finally:
        for s in sockets:
            s.close()
    return latencies


async def idle_connections(url: str, token: str, count: int, pid: int) -> tuple[float, float]:
    """RSS (MB) of the web process before and while holding `count` idle WebSockets."""
    port = int(url.rsplit(":", 1)[1])
    before = rss_mb(pid)
    sockets = await open_many(port, token, count)
    await asyncio.sleep(3.0)
    held = rss_mb(pid)
    alive = sum(1 for s in sockets if not s.closed.done())
    for s in sockets:
        s.close()
    if alive != count:
        raise RuntimeError(f"only {alive} of {count} connections stayed open")
    return before, held


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads whole answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def get(self, path: str, token: str) -> tuple[int, bytes]:
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def list_latency(url: str, token: str, rate: float, seconds: float) -> list[float]:
    """Milliseconds per GET /api/videos from when it was due, started at a fixed rate."""
    port = int(url.rsplit(":", 1)[1])
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    connections = [await HttpConnection.open(port) for _ in range(20)]
    for connection in connections:
        pool.put_nowait(connection)
    latencies: list[float] = []

    async def one(due: float) -> None:
        connection = await pool.get()
        try:
            status, _ = await connection.get("/api/videos", token)
        finally:
            pool.put_nowait(connection)
        if status != 200:
            raise RuntimeError(f"GET /api/videos answered {status}")
        latencies.append((time.perf_counter() - due) * 1000)

    try:
        for _ in range(20):  # warm up
            await one(time.perf_counter())
        latencies.clear()
        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    finally:
        for connection in connections:
            connection.close()
    return latencies


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def brief(title: str) -> dict[str, Any]:
    return {"title": title, "format": "9:16", "brief": "Sparkling water, real fruit."}


async def create_projects(url: str, token: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=url, headers=auth(token), timeout=30) as http:
        for i in range(count):
            (await http.post("/api/projects", json=brief(f"Ad {i}"))).raise_for_status()


def report(name: str, values: list[float], goal: float | None = None) -> None:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    verdict = (
        ""
        if goal is None
        else (" (goal ≤ {:.0f} ms: {})".format(goal, "met" if p99 <= goal else "MISSED"))
    )
    print(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, n={len(values)}{verdict}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--commands", type=int, default=20)
    args = parser.parse_args()
    limit = raise_file_limit()
    sockets = descriptor_budget(limit).sockets  # what a server started with this limit holds
    if sockets < max(args.idle, args.clients):
        raise SystemExit(
            f"RLIMIT_NOFILE is {limit}: a server holds {sockets} WebSockets, "
            f"too few for {max(args.idle, args.clients)}"
        )
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "AYTADA_DATA_DIR": data_dir,
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_LOG_LEVEL": "WARNING",
            # One user holds every client socket and creates every project.
            "AYTADA_WS_PER_USER": str(args.clients + args.idle),
            "AYTADA_RATE_LIMIT_WRITES": "0",
        }
        pusher, lister = new_user(env, "bench-push"), new_user(env, "bench-list")
        serve, serve_url = start_server(["serve"], env)
        web, web_url = start_server(["worker", "web"], env)
        try:
            print(
                f"serve on {serve_url}, worker web on {web_url}; "
                f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            # Commands always go to serve, whose projections run at once on its own saves; a
            # `worker web` client then gets the change through the change-feed tailer.
            for name, url in (("serve (projections)", serve_url), ("worker web (feed)", web_url)):
                latencies = await push_latency(
                    url, pusher, args.clients, args.commands, command_url=serve_url
                )
                report(
                    f"push latency, commit to {args.clients} clients, {name}",
                    latencies,
                    GOALS["push_p99_ms"],
                )
            await create_projects(serve_url, lister, args.projects)
            await asyncio.sleep(1.0)
            for name, url in (("serve", serve_url), ("worker web", web_url)):
                latencies = await list_latency(url, lister, args.rate, args.seconds)
                report(
                    f"GET /api/videos, {args.projects} projects, {args.rate:.0f} req/s, {name}",
                    latencies,
                    GOALS["list_p99_ms"],
                )
            before, held = await idle_connections(web_url, pusher, args.idle, web.pid)
            verdict = "met" if held <= GOALS["rss_mb"] else "MISSED"
            print(
                f"RSS of worker web: {before:.0f} MB idle, {held:.0f} MB with {args.idle} "
                f"idle WebSockets ({(held - before) * 1024 / args.idle:.1f} KB each; "
                f"goal ≤ {GOALS['rss_mb']:.0f} MB: {verdict})",
                flush=True,
            )
            print(f"load average at the end {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            stop_server(web)
            stop_server(serve)


if __name__ == "__main__":
    asyncio.run(main())
