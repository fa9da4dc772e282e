"""The captions plug-in of tests/plugins/captions, built and installed as a real wheel (make
test does it), run end to end through the real broker on both stores, and listed by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import httpx
import pytest
from audits import project_audit
from web_server import json_of, serving

from aytada_es.consumers.registry import BUILT_IN, installed
from aytada_es.consumers.stage import Stage
from aytada_es.domain.project import Project
from aytada_es.kafka import clients
from aytada_es.kafka.topics import PROJECT_EVENTS, ensure_topics
from aytada_es.providers.local.ffmpeg import probe
from aytada_es.testing import Start
from conftest import unavailable

pytestmark = pytest.mark.kafka
PLUGIN = "aytada-captions"


def captions_stage() -> type[Stage]:
    """The plug-in's stage, found through its entry point as `serve` finds it."""
    try:
        dist = distribution(PLUGIN)
    except PackageNotFoundError:
        unavailable(f"{PLUGIN} is not installed: `make test` builds its wheel and installs it")
    origin = json.loads(dist.read_text("direct_url.json") or "{}")
    assert "dir_info" not in origin, f"{PLUGIN} is installed from a folder, not as a wheel"
    found = [cls for cls, source in installed() if source == PLUGIN]
    assert len(found) == 1, f"{PLUGIN} registers {found}"
    module = sys.modules[found[0].__module__]
    assert "site-packages" in Path(str(module.__file__)).parts  # the wheel's, not tests/'s
    return found[0]


def stages_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aytada_es", "stages", "--json"],
        env={**os.environ, "AYTADA_LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_installed_captions_plug_in_captions_an_ad_and_bills_it_once(
    aytada_start: Start,
) -> None:
    run = await aytada_start(captions_stage(), providers="local", scale=0.2)
    account, token = run.studio.open_account("alice", credits=1000)
    project_id = run.autopilot_project(account.id, format="1:1")

    completed = await run.until_event(project_id, "AddOnCompleted", timeout_s=120)

    project = run.project(project_id)
    assert project.status == "completed" and project.final_video is not None
    (video,) = completed.assets  # type: ignore[attr-defined]
    info = probe(run.asset_path(video))
    assert (info.video, info.audio, info.size) == ("h264", "aac", (216, 216))
    assert abs(info.duration_s - probe(run.asset_path(project.final_video)).duration_s) < 0.2
    records = [
        e
        for e in run.events(project_id)
        if isinstance(e, Project.GenerationRecorded) and e.step == "captions"
    ]
    assert [(r.stage_version, r.units, r.credits) for r in records] == [
        (distribution(PLUGIN).version, 1, 2)
    ]
    audit = project_audit(run.studio, project_id)
    assert audit["passed"] and audit["reconciliation"]["still_reserved"] == 0
    captions = [e for e in audit["events"] if e["data"].get("step") == "captions"]
    assert [e["type"] for e in captions] == [
        "AddOnRequested",
        "CreditsReserved",
        "GenerationRecorded",
        "AddOnCompleted",
        "CreditsCharged",
    ]
    async with (
        serving(run.system) as served,
        httpx.AsyncClient(base_url=served.url, headers={"Authorization": f"Bearer {token}"}) as web,
    ):
        view = json_of(await web.get(f"/api/projects/{project_id}"))
    shown = [a for a in view["assets"] if a["id"] == video["id"]]
    assert [(a["kind"], a["label"]) for a in shown] == [("captioned_video", "Captioned video")]
    assert view["add_ons"] == [{"name": "captions", "state": "completed", "message": None}]

    # A restart's relay publishes the log again: nothing is captioned or charged twice.
    balance, before = run.studio.account(account.id).balance, run.event_types(project_id)
    assert await run.republish(project_id, "VideoStitched") == 1
    await run.until_consumed("captions")
    assert run.event_types(project_id) == before
    assert run.studio.account(account.id).balance == balance


async def test_stages_lists_the_plug_in_next_to_the_built_in_stages_with_their_lag(
    tmp_path: Path, broker: str
) -> None:
    captions_stage()
    namespace = f"t{uuid.uuid4().hex[:10]}."
    topic = f"{namespace}{PROJECT_EVENTS}"
    await ensure_topics(broker, [topic], 2)
    producer = clients.producer(broker)
    try:
        await clients.start(producer)
        for i in range(3):
            await producer.send_and_wait(topic, value=b"{}", key=f"p{i}".encode())
    finally:
        await clients.to_the_end(producer.stop())
    env = {
        "AYTADA_DATA_DIR": str(tmp_path / "var"),
        "AYTADA_KAFKA_NAMESPACE": namespace,
        "AYTADA_KAFKA_BOOTSTRAP": broker,
        "AYTADA_PLUGINS": "all",
    }

    done = stages_cli(env)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["broker"] == broker
    rows = {s["name"]: s for s in report["stages"]}
    assert list(rows) == [*(cls.name for cls in BUILT_IN), "captions"]
    assert {rows[cls.name]["source"] for cls in BUILT_IN} == {"builtin"}
    captions: dict[str, Any] = rows["captions"]
    assert captions == {
        "name": "captions",
        "version": distribution(PLUGIN).version,
        "reacts_to": ["VideoStitched"],
        "source": PLUGIN,
        "records": {"captioned_video": "Captioned video"},
        "lag": 3,  # no member of the group has handled any of the three yet
    }
    assert {s["lag"] for s in rows.values()} == {3}


def test_stages_without_a_broker_lists_them_with_an_unknown_lag(tmp_path: Path) -> None:
    captions_stage()
    base = {"AYTADA_DATA_DIR": str(tmp_path / "var"), "AYTADA_PLUGINS": "all"}
    nowhere = {**base, "AYTADA_KAFKA_BOOTSTRAP": "127.0.0.1:9"}  # nothing listens there

    for env in (base, nowhere):
        done = stages_cli(env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["broker"] is None
        assert "captions" in {s["name"] for s in report["stages"]}
        assert {s["lag"] for s in report["stages"]} == {None}
    table = subprocess.run(
        [sys.executable, "-m", "aytada_es", "stages"],
        env={**os.environ, **nowhere},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "unknown" in table and "no broker answered at 127.0.0.1:9" in table


def test_plug_ins_run_only_where_they_are_allowed(tmp_path: Path) -> None:
    captions_stage()

    done = stages_cli({"AYTADA_DATA_DIR": str(tmp_path / "var"), "AYTADA_PLUGINS": "none"})

    assert done.returncode == 0, done.stderr
    names = [s["name"] for s in json.loads(done.stdout)["stages"]]
    assert names == [cls.name for cls in BUILT_IN]
