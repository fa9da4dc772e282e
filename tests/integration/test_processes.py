"""The service's processes and files: children die with it, its data dir is its user's alone."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from polling import line_with, wait_for

from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.web import create_app

pytestmark = pytest.mark.kafka
ACCEPT_FAILED = "socket.accept() out of system resource"
FILES = resource.RLIMIT_NOFILE


def parent_of(pid: int) -> int | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat_line.rpartition(")")[2].split()[1])


def gone(pid: int) -> bool:
    """Whether a process has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


def children(pid: int) -> dict[int, str]:
    """The child processes of `pid` and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid:
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
    return {child: cmdline.decode(errors="replace") for child, cmdline in found.items()}


async def test_the_bundled_broker_dies_with_a_serve_killed_by_sigkill(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(tmp_path / "var"),
        "AYTADA_DATABASE_URL": database_url,
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_LOG_LEVEL": "WARNING",
    }
    env.pop("AYTADA_KAFKA_BOOTSTRAP", None)
    serve = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aytada_es", "serve", "--port", "0"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    brokers: list[int] = []
    try:
        await line_with(serve, "aytada-es running")
        brokers = [pid for pid, command in children(serve.pid).items() if "tansu" in command]
        assert len(brokers) == 1, children(serve.pid)
        serve.kill()  # SIGKILL: serve runs no clean-up of its own
        await serve.wait()
        await wait_for(lambda: gone(brokers[0]), 10, "the broker to die with serve")
    finally:
        if serve.returncode is None:
            serve.kill()
            await serve.wait()
        for pid in brokers:
            if not gone(pid):  # the old behaviour: do not leave it running
                os.kill(pid, signal.SIGKILL)


async def test_a_serve_out_of_descriptors_logs_its_failing_accepts_about_once_a_second(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(tmp_path / "var"),
        "AYTADA_DATABASE_URL": database_url,
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_LOG_LEVEL": "WARNING",
    }

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(FILES)[1]))

    log = tmp_path / "serve.log"
    with log.open("wb") as errors:
        serve = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "aytada_es", "serve", "--port", "0"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            preexec_fn=few_descriptors,
        )
    connections: list[asyncio.StreamWriter] = []
    try:
        port = int((await line_with(serve, "web on http")).split(":")[2].split("/")[0])
        await line_with(serve, "aytada-es running")
        for _ in range(300):  # the kernel completes them; serve runs out of descriptors
            connections.append((await asyncio.open_connection("127.0.0.1", port))[1])
        began = time.monotonic()
        await wait_for(lambda: log.read_text().count(ACCEPT_FAILED) >= 2, 20, "two reports")
        reports = log.read_text().count(ACCEPT_FAILED)
        assert reports <= time.monotonic() - began + 2, f"{reports} reports"
        assert "more like it since the last one were not logged" in log.read_text()
    finally:
        for connection in connections:
            connection.close()
        serve.kill()
        await serve.wait()


async def test_a_child_started_with_dying_with_parent_dies_with_it() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import subprocess, sys, time\n"
        "from aytada_es.children import dying_with_parent\n"
        "child = subprocess.Popen(['sleep', '60'], preexec_fn=dying_with_parent())\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n",
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    child = 0
    try:
        child = int(await asyncio.wait_for(parent.stdout.readline(), 30))
        assert not gone(child)
        parent.kill()
        await parent.wait()
        await wait_for(lambda: gone(child), 10, "the child to die with its parent")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_nothing_the_service_writes_is_readable_by_other_users(settings: Settings) -> None:
    system = bootstrap(settings)  # no broker given: it starts its own, logging to broker.log
    try:
        async with system.running():
            create_app(system.service())  # the session key
            owner = system.studio.open_account("alice", credits=1000)[0].id
            project = system.studio.create_project(
                owner, title="Fizz", format="9:16", brief="b", autopilot=True, actor="user:alice"
            )
            await wait_for(
                lambda: system.studio.project(project.id).status == "completed",
                60,
                "the project to complete",
            )
    finally:
        system.close()
    data_dir = settings.data_dir
    written = [data_dir, *data_dir.rglob("*")]
    database = settings.database()
    if database.kind == "sqlite":
        written += [p for p in Path(database.path).parent.iterdir() if p.name.startswith("aytada")]
    names = {p.name for p in written}
    assert {"broker.log", "session.key", "assets"} <= names
    assert sum(1 for p in written if p.parent.parent.name == "assets") >= 5, "assets were stored"
    if database.kind == "sqlite":
        assert {"aytada.sqlite", "aytada.sqlite.writer-lock", "aytada.sqlite.relay-lock"} <= names
    loose = {str(p): oct(_mode(p)) for p in written if _mode(p) & 0o077}
    assert not loose, loose
