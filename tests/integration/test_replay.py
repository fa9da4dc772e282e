"""Replay equals live: a mixed workload through the real system, then every read model rebuilt
and every project and account replayed from its events give what the live system showed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from audits import account_audit, project_audit

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.domain.assets import IMAGE_KINDS
from aytada_es.domain.project import paused_at
from aytada_es.domain.status import ACTIVE
from aytada_es.projections import ReadModels, read_models
from aytada_es.providers.base import Brief, Call, ProviderError, Providers
from aytada_es.providers.instant import instant_providers

pytestmark = pytest.mark.kafka


class ScriptsThatFail:
    """The instant script provider, failing every attempt for the titles in `failing`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failing: set[str] = set()

    async def script(self, brief: Brief, idea: dict[str, Any] | None, call: Call) -> Any:
        if brief.title in self.failing:
            raise ProviderError(f"the script provider is down for {brief.title!r}")
        return await self.inner.script(brief, idea, call)


async def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def settled(system: System, ids: list[UUID]) -> bool:
    """No project is running, and the relay and every read model have every stored event."""
    last = system.studio.recorder.max_notification_id() or 0
    return (
        all(system.studio.project(i).status not in ACTIVE for i in ids)
        and system.relay is not None
        and system.relay.position >= last
        and min(system.read_models.positions().values()) >= last
    )


def shown(models: ReadModels, owners: list[UUID], projects: list[UUID]) -> dict[str, Any]:
    """Everything the read models answer about these owners and projects."""
    return {
        "videos": {o: models.videos.videos_of(o) for o in owners},
        "scripts": {o: models.scripts.scripts_of(o) for o in owners},
        "images": {o: models.images.images_of(o) for o in owners},
        "credits": {o: models.credits.statement(o) for o in owners},
        "accounts": {o: models.accounts.account(o) for o in owners},
        "ledgers": {p: models.credits.project_ledger(p) for p in projects},
        "deleted": models.deleted.deleted_projects(),
    }


def replayed_card(report: dict[str, Any]) -> dict[str, Any]:
    """The My Videos card of a project, from its replayed history alone."""
    state = report["project"]
    thumbnail = state["thumbnail"]
    return {
        "id": report["project_id"],
        "title": report["title"],
        "format": state["format"],
        "created_at": state["created_at"],
        "updated_at": state["updated_at"],
        "status": report["status"],
        "progress": state["progress"],
        "action": state["action"],
        "thumbnail_url": None if thumbnail is None else f"/api/assets/{thumbnail['id']}",
        "paused": paused_at(report["status"], state["autopilot_paused"]),
    }


async def run_the_workload(system: System, scripts: ScriptsThatFail) -> dict[str, UUID]:
    """Completed, failed, retried, deleted, restored and half-done projects of two users."""
    studio = system.studio
    alice = studio.open_account("alice", credits=10_000)[0].id
    bob = studio.open_account("bob", credits=10_000)[0].id
    scripts.failing |= {"Failed", "Retried"}

    def create(owner: UUID, title: str, autopilot: bool = True) -> UUID:
        actor = f"user:{studio.account(owner).name}"
        return studio.create_project(
            owner, title=title, format="9:16", brief="Real fruit", autopilot=autopilot, actor=actor
        ).id

    ids = {
        "alice": alice,
        "bob": bob,
        "done": create(alice, "Done"),
        "failed": create(alice, "Failed"),
        "retried": create(alice, "Retried"),
        "deleted": create(alice, "Deleted"),
        "restored": create(bob, "Restored"),
        "bobs": create(bob, "Bob's"),
        "manual": create(bob, "Manual", autopilot=False),
    }
    studio.request_ideas(bob, ids["manual"], count=2, actor="user:bob")
    projects = [v for k, v in ids.items() if k not in ("alice", "bob")]

    def status(name: str) -> str:
        return str(studio.project(ids[name]).status)

    await wait_for(lambda: status("retried") == "failed", "the script to fail")
    scripts.failing.discard("Retried")
    studio.retry(alice, ids["retried"], actor="user:alice")
    await wait_for(lambda: status("deleted") == "completed", "a project to complete")
    studio.delete_project(alice, ids["deleted"], actor="user:alice")
    await wait_for(lambda: status("restored") == "completed", "a project to complete")
    studio.delete_project(bob, ids["restored"], actor="user:bob")
    studio.restore_project(ids["restored"], actor="support:sam")
    await wait_for(lambda: settled(system, projects), "the system to settle")
    assert [status(n) for n in ("done", "failed", "retried", "manual")] == [
        "completed",
        "failed",
        "completed",
        "ideas_ready",
    ]
    return ids


async def test_rebuilt_read_models_and_replayed_histories_equal_the_live_system(
    settings: Settings, broker: str, database_url: str
) -> None:
    base = instant_providers(AssetStore(settings.assets_dir))
    scripts = ScriptsThatFail(base.script)
    providers = Providers(
        "failing-scripts",
        base.ideas,
        scripts,
        base.scenes,
        base.clips,
        base.voiceover,
        base.stitching,
        base.images,
    )
    system = bootstrap(settings, providers=providers, bootstrap_servers=broker)
    try:
        async with system.running():
            ids = await run_the_workload(system, scripts)
        owners = [ids["alice"], ids["bob"]]
        projects = [v for k, v in ids.items() if k not in ("alice", "bob")]
        studio = system.studio
        live = shown(system.read_models, owners, projects)
        check_replays(studio, system.read_models, ids, projects)
    finally:
        system.close()

    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": database_url,
        "AYTADA_LOG_LEVEL": "WARNING",
    }
    rebuilt = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "aytada_es", "projections", "rebuild"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    studio = Studio(settings.database().eventsourcing_env())
    try:
        models = read_models(studio)
        assert models.catch_up() == 0  # the rebuild went to the end of the log
        assert shown(models, owners, projects) == live
    finally:
        studio.close()


def check_replays(
    studio: Studio, models: ReadModels, ids: dict[str, UUID], projects: list[UUID]
) -> None:
    """Each project's and account's replay equals what the live read models show."""
    deleted = {d["project_id"]: d for d in models.deleted.deleted_projects()}
    assert set(deleted) == {str(ids["deleted"])}
    for project_id in projects:
        report = project_audit(studio, project_id)
        assert report["passed"], report["chain"]
        assert report["reconciliation"] == models.credits.project_ledger(project_id)
        assert report["reconciliation"]["consistent"]
        owner = report["owner_id"]
        _, cards = models.videos.videos_of(owner)
        listed = [c for c in cards if c["id"] == str(project_id)]
        assert listed == ([] if report["deleted"] else [replayed_card(report)])
        state = report["project"]
        images = {
            a["id"] for a in state["assets"] if a["kind"] in IMAGE_KINDS and not report["deleted"]
        }
        listed_images = models.images.images_of(owner)
        assert {i["id"] for i in listed_images if i["project_id"] == str(project_id)} == images
        scripts = [
            s for s in models.scripts.scripts_of(owner) if s["project_id"] == str(project_id)
        ]
        if state["script"] is None or report["deleted"]:
            assert scripts == []
        else:
            assert scripts[0]["text"] == state["script"]["text"]  # the newest one
        if report["deleted"]:
            assert deleted[str(project_id)]["deleted_by"] == state["deleted_by"]
            assert deleted[str(project_id)]["deleted_at"] == state["deleted_at"]
    retried = project_audit(studio, ids["retried"])
    types = [e["type"] for e in retried["events"]]
    assert types.count("StepFailed") == types.count("StepRetried") == 1
    failures = [e["data"] for e in retried["events"] if e["type"] == "GenerationRecorded"]
    assert [
        (g["step"], g["outcome"], g["attempts"]) for g in failures if g["step"] == "script"
    ] == [
        ("script", "failed", 3),
        ("script", "succeeded", 1),
    ]
    for name in ("alice", "bob"):
        account = studio.account(ids[name])
        statement = account_audit(studio, name)
        assert statement["passed"] and statement["consistent"]
        live = models.credits.statement(account.id)["history"]
        assert [{k: m[k] for k in live[0]} for m in statement["history"]] == live
        assert statement["history"][-1]["balance"] == account.balance
        assert statement["reserved"] == account.reserved == 0
