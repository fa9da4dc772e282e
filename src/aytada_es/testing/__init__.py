"""The stage kit's pytest plugin: run a stage against the real bundled broker and a fresh store.

Installing aytada-es registers this module as a pytest plugin (entry point `pytest11`), so the
tests of a plug-in get its fixtures with nothing to configure. Every name starts with `aytada_`;
the async fixture needs pytest-asyncio. Nothing heavy is imported until a fixture runs: pytest
loads the plugin in every session of an environment where aytada-es is installed.

Fixtures:
- `aytada_broker` (session): the address of a real bundled Kafka-protocol broker (Tansu).
- `aytada_settings`: settings of a fresh SQLite store in the test's temporary directory, with
  a Kafka namespace of its own, the instant providers, no rate limits and fast retries.
- `aytada_start` (async): `run = await aytada_start(MyStage, providers="local", scale=0.2)`
  starts the whole system (relay, the six built-in stages and yours, read models) and gives a
  `StudioRun` that creates users and projects, waits for events and reads them; every system
  it started is stopped and closed after the test.

Helpers: `wait_for(check, what=...)`, and `StudioRun` (`aytada_es.testing.studio_run`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pytest

if TYPE_CHECKING:
    from ..config import Settings
    from ..consumers.stage import Stage
    from .studio_run import StudioRun

F = TypeVar("F", bound=Callable[..., Any])
Start = Callable[..., Awaitable["StudioRun"]]
WAIT_S = 60.0


def _async_fixture(fixture: F) -> F:
    """An async fixture of pytest-asyncio, which runs it in the test's own event loop."""
    try:
        import pytest_asyncio
    except ImportError:  # the fixture then says what is missing, when a test asks for it

        def missing(*args: Any, **kwargs: Any) -> None:
            pytest.fail("the aytada_es fixtures need pytest-asyncio: pip install pytest-asyncio")

        missing.__name__ = fixture.__name__
        missing.__doc__ = fixture.__doc__
        return pytest.fixture(missing)  # type: ignore[return-value]
    return pytest_asyncio.fixture(fixture)  # type: ignore[return-value]


async def wait_for(
    check: Callable[[], bool], *, timeout_s: float = WAIT_S, what: str = ""
) -> float:
    """Wait until `check` (run in a thread: it may query the store) holds; how long it took.

    AssertionError naming `what` when `timeout_s` passes first.
    """
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if await asyncio.to_thread(check):
            return time.monotonic() - began
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what or check}")


@pytest.fixture(scope="session")
def aytada_broker() -> Iterator[str]:
    """The address (`127.0.0.1:PORT`) of a real bundled Kafka-protocol broker (Tansu, memory
    storage), started once for the session and stopped at its end."""
    from ..kafka.broker import BundledBroker

    with BundledBroker() as running:
        yield running.bootstrap


@pytest.fixture
def aytada_settings(tmp_path: Path) -> Settings:
    """Settings of a fresh SQLite store under the test's `tmp_path`, with a Kafka namespace of
    its own (tests share the broker, not topics), the instant providers, rate limits off, and
    retries 10 ms apart. Override this fixture to change them."""
    from ..config import Settings

    return Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(tmp_path / "aytada"),
            "AYTADA_KAFKA_NAMESPACE": f"kit{uuid.uuid4().hex[:10]}.",
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_STAGE_BACKOFF_S": "0.01",
            "AYTADA_RATE_LIMIT_LOGIN": "0",
            "AYTADA_RATE_LIMIT_WRITES": "0",
        }
    )


@_async_fixture
async def aytada_start(aytada_settings: Settings, aytada_broker: str) -> AsyncIterator[Start]:
    """Start the system with the stages a test names, next to the six built in:
    `run = await aytada_start(MyStage, providers="local", scale=0.2)`.

    `providers`: `instant` (text from the brief, placeholder files; the default) or `local`
    (real offline renders: ffmpeg clips, a spoken voiceover, a real MP4), with frames shrunk
    by `scale`. Returns a `StudioRun`; every system started is stopped and closed after the
    test, whatever it did. Installed plug-ins do not run unless named.
    """
    from .studio_run import StudioRun

    runs: list[StudioRun] = []

    async def start(
        *stages: type[Stage],
        providers: Literal["instant", "local"] = "instant",
        scale: float = 0.2,
    ) -> StudioRun:
        run = await StudioRun.start(
            aytada_settings, aytada_broker, stages, providers=providers, scale=scale
        )
        runs.append(run)
        return run

    try:
        yield start
    finally:
        for run in reversed(runs):
            await run.stop()
