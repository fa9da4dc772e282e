"""An online backup while projects run, restored and served: nothing complete is lost."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from polling import line_with

import aytada_es.cli as aytada_es
from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.testing import wait_for
from conftest import NO_RATE_LIMITS, PG_DSN

pytestmark = pytest.mark.kafka
PHRASE = "the operator's passphrase"
BRIEF = {"format": "9:16", "brief": "Real fruit, no sugar.", "autopilot": True}


def environment(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        **NO_RATE_LIMITS,
        "AYTADA_DATA_DIR": str(data_dir),
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_LOG_LEVEL": "WARNING",
        "AYTADA_BACKUP_PASSPHRASE": PHRASE,
    }
    env.pop("AYTADA_KAFKA_BOOTSTRAP", None)
    env.pop("AYTADA_DATABASE_URL", None)
    if database_url:
        env["AYTADA_DATABASE_URL"] = database_url
    return env


@asynccontextmanager
async def serving(env: dict[str, str]) -> AsyncIterator[tuple[str, str | None]]:
    """`aytada-es serve` on a free port: its URL and the demo token it printed, if any."""
    serve = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aytada_es", "serve", "--port", "0"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = (await line_with(serve, "web on http")).split()[-1].removesuffix("/dashboard/videos")
        demo = await line_with(serve, "demo login")
        token = demo.split("token ")[1].split()[0] if "token ayt_" in demo else None
        await line_with(serve, "aytada-es running")
        yield url, token
    finally:
        serve.send_signal(2)  # SIGINT: a clean stop of serve and its broker
        try:
            async with asyncio.timeout(30):
                await serve.wait()
        except TimeoutError:
            serve.kill()
            await serve.wait()


async def aytada(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aytada_es", *args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def completed_by(settings: Settings, position: int) -> set[str]:
    """The projects whose final video was stored at or before `position`."""
    studio = Studio(settings.database().eventsourcing_env())
    try:
        notifications = studio.recorder.select_notifications(1, position, stop=position)
        return {str(n.originator_id) for n in notifications if n.topic.endswith(".VideoStitched")}
    finally:
        studio.close()


async def test_a_backup_taken_while_projects_run_restores_into_a_serve_that_has_them_all(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres = database_url.startswith("postgresql")
    source_env = environment(tmp_path / "source", database_url if postgres else "")
    target_schema = f"t_{uuid.uuid4().hex[:12]}"
    target_url = f"postgresql://postgres@127.0.0.1:5432/test?schema={target_schema}"
    target_env = environment(tmp_path / "restored", target_url if postgres else "")
    backup = tmp_path / "backup.tar"
    if postgres:
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            pg.execute(f"CREATE SCHEMA {target_schema}")
    try:
        async with serving(source_env) as (url, token):
            assert token is not None
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:

                async def create(n: int) -> str:
                    answer = await http.post("/api/projects", json={"title": f"Ad {n}", **BRIEF})
                    assert answer.status_code == 201, answer.text
                    return str(answer.json()["id"])

                first = [await create(n) for n in range(4)]

                def all_completed() -> bool:
                    return len(statuses(url, auth)["completed"]) >= len(first)

                await wait_for(all_completed, timeout_s=60, what="the first projects to complete")
                more: list[str] = []

                async def keep_creating() -> None:
                    while True:
                        more.append(await create(len(first) + len(more)))
                        await asyncio.sleep(0.05)

                creating = asyncio.create_task(keep_creating())
                try:
                    await asyncio.sleep(0.3)
                    code, out = await aytada(source_env, "backup", str(backup))
                    created_during = len(more)
                finally:
                    creating.cancel()
                assert code == 0, out
                assert created_during >= 2, "projects were not being created during the backup"
                code, out = await aytada(source_env, "backup", "verify", str(backup))
                assert code == 0, out
                assert "intact" in out
        position = int(out.split("up to position ")[1].split(",")[0])
        source = Settings.from_env(
            {k: v for k, v in source_env.items() if k.startswith("AYTADA_DATA")}
        )
        complete = completed_by(source, position)
        assert set(first) <= complete

        code, out = await aytada(target_env, "restore", str(backup))
        assert code == 0, out
        assert "proven whole" in out
        restored = Settings.from_env(
            {k: v for k, v in target_env.items() if k.startswith("AYTADA_DATA")}
        )
        assert completed_by(restored, 10**9) == complete  # nothing after the backup's position

        async with serving(target_env) as (url, again):
            assert again is None  # the demo user came back with the restore, its token too
            async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:

                def shown() -> bool:
                    return complete <= statuses(url, auth)["completed"]

                await wait_for(shown, timeout_s=30, what="the complete projects in My Videos")
                monkeypatch.setenv("AYTADA_DATA_DIR", target_env["AYTADA_DATA_DIR"])
                if postgres:
                    monkeypatch.setenv("AYTADA_DATABASE_URL", target_url)
                else:
                    monkeypatch.delenv("AYTADA_DATABASE_URL", raising=False)
                for project_id in sorted(complete)[:2]:
                    studio = (await http.get(f"/api/projects/{project_id}")).json()
                    assert studio["title"].startswith("Ad ")
                    assert studio["assets"]
                    for asset in studio["assets"]:
                        answer = await http.get(asset["url"])
                        assert answer.status_code == 200, asset
                        assert hashlib.sha256(answer.content).hexdigest() == asset["id"]
                    assert aytada_es.main(["audit", project_id]) == 0
                assert aytada_es.main(["audit", "--account", "demo"]) == 0

                answer = await http.post("/api/projects", json={"title": "After", **BRIEF})
                assert answer.status_code == 201, answer.text
                new = answer.json()["id"]

                def new_completed() -> bool:
                    return new in statuses(url, auth)["completed"]

                await wait_for(new_completed, timeout_s=60, what="a new project to complete")
    finally:
        if postgres:
            with psycopg.connect(PG_DSN, autocommit=True) as pg:
                pg.execute(f"DROP SCHEMA IF EXISTS {target_schema} CASCADE")


def statuses(url: str, auth: dict[str, str]) -> dict[str, set[str]]:
    """My Videos: the project ids by status."""
    videos = httpx.get(f"{url}/api/videos", headers=auth, timeout=10).json()["videos"]
    found: dict[str, set[str]] = {"completed": set()}
    for video in videos:
        found.setdefault(video["status"], set()).add(video["id"])
    return found
