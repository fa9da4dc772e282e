"""uvicorn serving the app inside the running event loop, next to the rest of the system."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from .logs import install_log_filters

PING_INTERVAL_S = 20.0
MAX_MESSAGE = 64 * 1024


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs the loop owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listening_socket(host: str, port: int, *, send_buffer: int | None = None) -> socket.socket:
    """A bound TCP socket; `send_buffer` (bytes) is inherited by every accepted connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # a response written in two parts waits for the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if send_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class WebServer:
    """Serves an ASGI app with uvicorn as a task of the current loop, until `stop()`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        send_buffer: int | None = None,
        ping_interval_s: float = PING_INTERVAL_S,
        access_log: bool = False,
        log_level: str = "warning",
        backlog: int = 4096,
        limit_concurrency: int | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        """`limit_concurrency`: connections (and requests) past which HTTP requests answer 503;
        `sock`: a socket bound already (`listening_socket`), served instead of binding one."""
        self.config = uvicorn.Config(
            app,
            ws="websockets-sansio",
            lifespan="on",
            log_config=None,
            log_level=log_level,
            access_log=access_log,
            ws_ping_interval=ping_interval_s,
            ws_ping_timeout=ping_interval_s,
            ws_max_size=MAX_MESSAGE,
            # Cards are small; a compressor per connection would cost more memory than it saves.
            ws_per_message_deflate=False,
            timeout_graceful_shutdown=5,
            backlog=backlog,
            limit_concurrency=limit_concurrency,
        )
        self.host, self.port, self.send_buffer = host, port, send_buffer
        self.sock = sock
        self.server = _Server(self.config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Bind, start serving, and return the base URL (`http://host:port`)."""
        install_log_filters()
        sock = self.sock or listening_socket(self.host, self.port, send_buffer=self.send_buffer)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]), name="web:uvicorn")
        while not self.server.started:
            if self._task.done():
                sock.close()
                await self._task  # raises what stopped it
                raise RuntimeError("the web server stopped while starting")
            await asyncio.sleep(0.01)
        return self.url

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Close every connection (WebSockets get 1012), run the app's shutdown, end the task."""
        if self._task is None:
            return
        self.server.should_exit = True
        try:
            await self._task
        finally:
            self._task = None

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
