"""The server pings idle WebSocket connections, so idle clients stay connected through proxies."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.web.app import create_app
from aytada_es.web.serving import WebServer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return head[0] & 0x0F, await reader.readexactly(length)


async def test_an_idle_connection_is_pinged(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(tmp_path / "var"),
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_SECRET_KEY": "k" * 32,
        }
    )
    system = bootstrap(settings)
    try:
        _, token = system.studio.open_account("alice", credits=10)
        async with WebServer(
            create_app(system.service()), host="127.0.0.1", port=0, ping_interval_s=0.2
        ) as server:
            host, port = server.url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET /ws/videos?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            status = await reader.readuntil(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 101")
            opcode, payload = await asyncio.wait_for(read_frame(reader), 5)
            assert opcode == 0x1 and b'"snapshot"' in payload
            started = time.monotonic()
            # Say nothing: the next frame must be the server's ping (opcode 9), well within 2 s.
            opcode, _ = await asyncio.wait_for(read_frame(reader), 2)
            assert opcode == 0x9
            assert time.monotonic() - started < 1.0
            writer.close()
    finally:
        system.close()
