"""`make run` and `aytada-es serve` as an operator sees them: the port and host asked for, a
banner with the URL, the demo token and where data lives, and quiet logs (the Kafka client at
WARNING, the bundled broker's replay after a restart as information)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from polling import wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Another loopback address than the default's, so that the public URL's host shows it followed.
HOST = "127.0.0.2"
RULE = "-" * 72


@dataclass
class Served:
    url: str
    banner: list[str]
    errors: Path

    def line(self, start: str) -> str:
        return next(line for line in self.banner if line.startswith(start))


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def make_run(tmp_path: Path, port: int, **env: str) -> AsyncIterator[Served]:
    """`make run HOST=127.0.0.2 PORT=port` in a process group of its own; Ctrl-C at the end."""
    errors = tmp_path / f"stderr-{port}.log"
    environ = {**os.environ, "AYTADA_DATA_DIR": str(tmp_path / "var"), **env}
    for name in ("AYTADA_LOG_LEVEL", "AYTADA_KAFKA_LOG_LEVEL", "AYTADA_PUBLIC_URL"):
        if name not in env:
            environ.pop(name, None)
    for name in ("AYTADA_DATABASE_URL", "AYTADA_KAFKA_BOOTSTRAP", "AYTADA_ALLOWED_HOSTS"):
        environ.pop(name, None)
    with errors.open("wb") as stderr:
        # -o: the virtualenv is there already (the test runs in it); BIN: this very one.
        make = await asyncio.create_subprocess_exec(
            *("make", "-s", "-C", str(ROOT), "-o", ".venv/.installed", "run"),
            *(f"HOST={HOST}", f"PORT={port}", f"BIN={BIN}"),
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        assert make.stdout is not None
        banner: list[str] = []
        async with asyncio.timeout(60):
            while len(banner) < 2 or banner[-1] != RULE or "Ctrl-C stops" not in banner[-2]:
                line = (await make.stdout.readline()).decode()
                assert line, f"make run ended: {banner} {errors.read_text()}"
                banner.append(line.rstrip("\n"))
        url = next(line for line in banner if line.startswith("aytada-es web on "))
        yield Served(url.split()[3].removesuffix("/dashboard/videos"), banner, errors)
    finally:
        if make.returncode is None:
            os.killpg(make.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
            async with asyncio.timeout(30):
                await make.wait()
    # make ends as its child did, or re-raises the Ctrl-C; serve stopped in order either way.
    assert make.returncode in (0, -signal.SIGINT), errors.read_text()
    assert "Finished server process" in errors.read_text()


async def test_make_run_serves_on_the_port_and_host_asked_with_a_banner_and_quiet_logs(
    tmp_path: Path,
) -> None:
    port = free_port(HOST)
    async with make_run(tmp_path, port, AYTADA_PROVIDERS="instant") as served:
        assert served.url == f"http://{HOST}:{port}"
        assert served.banner[0] == served.banner[-1] == RULE
        demo = served.line("demo login: user 'demo', token ayt_")
        token = demo.split("token ")[1].split()[0]
        assert f"  sign in at {served.url}/login with that token" in served.banner
        data = served.line("data: ")
        assert str(tmp_path / "var" / "aytada.sqlite") in data
        assert str(tmp_path / "var" / "assets") in data
        assert served.line("broker: the bundled one, in memory")
        # The public URL followed --host and --port: that host is allowed without being listed.
        async with httpx.AsyncClient(base_url=served.url) as http:
            home = await http.get("/")
            assert home.status_code == 303 and home.headers["location"] == "/login"
            signed_in = {"Authorization": f"Bearer {token}"}
            assert (await http.get("/", headers=signed_in)).headers["location"] == (
                "/dashboard/videos"
            )
            card = (
                await http.post(
                    "/api/projects",
                    headers=signed_in,
                    json={"title": "Fizz", "format": "1:1", "brief": "b", "autopilot": True},
                )
            ).json()

            def completed() -> bool:
                answer = httpx.get(f"{served.url}/api/projects/{card['id']}", headers=signed_in)
                return bool(answer.json()["status"] == "completed")

            # Completed: every stage joined its consumer group, which the Kafka client logs.
            await wait_for(completed, 60, "the project to complete through every stage")
    logged = served.errors.read_text()
    assert " INFO aytada_es.kafka.broker: bundled broker listening" in logged
    assert "aiokafka" not in logged  # not one line of the Kafka client's at INFO
    assert "WARNING" not in logged and "ERROR" not in logged, logged

    # Started again: the bundled broker is empty, the relay publishes the log again (INFO).
    async with make_run(
        tmp_path, free_port(HOST), AYTADA_PROVIDERS="instant", AYTADA_KAFKA_LOG_LEVEL="info"
    ) as again:
        assert "exists" in again.line("demo login: user 'demo'")
        assert "ayt_" not in "\n".join(again.banner)
        await wait_for(lambda: "republished" in again.errors.read_text(), 30, "the relay's replay")
    logged = again.errors.read_text()
    assert " INFO aytada_es.kafka.relay: relay: the broker lost what was published" in logged
    assert " INFO aiokafka" in logged  # AYTADA_KAFKA_LOG_LEVEL raises the client's logs
    assert " WARNING aytada_es" not in logged, logged


async def test_a_port_in_use_or_a_bad_log_level_is_refused_at_once_with_a_message(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "AYTADA_DATA_DIR": str(tmp_path / "var")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "aytada_es", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"aytada-es: cannot serve on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert not (tmp_path / "var").exists()  # nothing was started or created
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "aytada_es", "serve"],
        env={**env, "AYTADA_KAFKA_LOG_LEVEL": "chatty"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "AYTADA_KAFKA_LOG_LEVEL: 'chatty' is not one of DEBUG, INFO" in done.stderr
