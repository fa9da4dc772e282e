"""Fixtures for the web tests: one running system and web server per test module, on loopback.

Import the fixtures into a test module (`from web_server import site, site_settings`) and mark
the module `pytest.mark.asyncio(loop_scope="module")`: the system, the server and the tests
share the module's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.domain.status import ACTIVE
from aytada_es.web import WebOptions, create_app
from aytada_es.web.context import Web
from aytada_es.web.serving import WebServer
from conftest import NO_RATE_LIMITS, PG_DSN, QUICK_GROUPS, require_postgres

SECRET_KEY = "a-test-secret-key-of-enough-length"


@dataclass
class Served:
    """A web app being served on loopback."""

    app: Starlette
    url: str

    @property
    def web(self) -> Web:
        web = self.app.state.web
        assert isinstance(web, Web)
        return web

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@contextlib.asynccontextmanager
async def serving(
    system: System,
    options: WebOptions | None = None,
    *,
    send_buffer: int | None = None,
) -> AsyncIterator[Served]:
    """Serve a web app over the system on a free loopback port, in this event loop."""
    app = create_app(system.service(), options, secret_key=SECRET_KEY)
    async with WebServer(app, host="127.0.0.1", port=0, send_buffer=send_buffer) as server:
        yield Served(app, server.url)


@dataclass
class Site:
    """A running system and its web server, shared by one test module."""

    system: System
    served: Served

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def ws_url(self) -> str:
        return self.served.ws_url

    def user(self, role: str = "user", credits: int = 10_000) -> tuple[UUID, str]:
        """A new account with a unique name: its id and token."""
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        account, token = self.system.studio.open_account(name, role=role, credits=credits)
        return account.id, token

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        """An HTTP client of the site, with the token as Bearer credentials."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    def stored(self) -> int:
        """How many events the store holds."""
        return self.system.studio.recorder.max_notification_id() or 0

    async def settled(self, timeout_s: float = 30.0) -> None:
        """Wait until no project is active and the read models hold every stored event."""

        def quiet() -> bool:
            # Caught up first, then the statuses: read the other way round, a request applied
            # between the two reads left a card read as it was before it, and "quiet" too soon.
            models = self.system.read_models
            if min(models.positions().values()) < self.stored():
                return False
            rows = models.store.query(
                "SELECT COUNT(*) AS n FROM {aytada_videos} WHERE status IN ("
                + ",".join("?" * len(ACTIVE))
                + ")",
                tuple(s.value for s in ACTIVE),
            )
            return int(rows[0]["n"]) == 0

        await wait_for(lambda: asyncio.to_thread(quiet), timeout_s, "the system to settle")


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0, what: str = ""
) -> None:
    """Poll an async check until it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or check}")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def site_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings of a fresh database (SQLite file or PostgreSQL schema) for one module."""
    data_dir: Path = tmp_path_factory.mktemp("site")
    schema = ""
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'aytada.sqlite'}"
    else:
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    try:
        yield Settings.from_env(
            {
                "AYTADA_DATA_DIR": str(data_dir / "var"),
                "AYTADA_DATABASE_URL": url,
                "AYTADA_KAFKA_NAMESPACE": f"t{uuid.uuid4().hex[:10]}.",
                "AYTADA_PROVIDERS": "instant",
                "AYTADA_STAGE_BACKOFF_S": "0.01",
                "AYTADA_STAGE_ATTEMPTS": "3",
                **NO_RATE_LIMITS,
                **QUICK_GROUPS,
            }
        )
    finally:
        if schema:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(site_settings: Settings, broker: str) -> AsyncIterator[Site]:
    """The whole system running on the real broker, and its web app on loopback."""
    system = bootstrap(site_settings, bootstrap_servers=broker)
    try:
        async with system.running(), serving(system) as served:
            yield Site(system, served)
    finally:
        system.close()


def json_of(response: httpx.Response) -> Any:
    """The JSON of a response, failing with its text when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code}: {response.text[:500]}") from None
