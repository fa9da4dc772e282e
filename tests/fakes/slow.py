"""Instant providers whose clips take a while, so renders are running when a test strikes; and
what must hold afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Step
from aytada_es.providers.base import Brief, Call, Providers
from aytada_es.providers.instant import instant_providers


def serve_settings(tmp_path: Path, **more: str) -> Settings:
    """`serve`'s settings on SQLite for a test that strikes mid-pipeline: instant providers, short
    stage retries, a relay that checks its broker every 0.3 s; `more` variables on top."""
    return Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(tmp_path / "var"),
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_STAGE_BACKOFF_S": "0.01",
            "AYTADA_STAGE_ATTEMPTS": "3",
            "AYTADA_RELAY_CHECK_S": "0.3",
            **more,
        }
    )


class SlowClips:
    """The instant clip provider, each clip `delay_s` late."""

    def __init__(self, inner: object, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s

    async def clip(self, brief: Brief, scene: dict[str, object], call: Call) -> dict[str, object]:
        await asyncio.sleep(self.delay_s)
        return await self.inner.clip(brief, scene, call)  # type: ignore[attr-defined, no-any-return]


def slow_providers(assets_dir: Path, clip_delay_s: float) -> Providers:
    """The instant providers with slow clips."""
    base = instant_providers(AssetStore(assets_dir))
    clips = SlowClips(base.clips, clip_delay_s)
    return Providers(
        "slow", base.ideas, base.script, base.scenes, clips, base.voiceover, base.stitching
    )


def autopilot_projects(studio: Studio, count: int) -> tuple[UUID, list[UUID]]:
    """Alice (given 10,000 credits) and her `count` projects on autopilot."""
    account, _ = studio.open_account("alice", credits=10_000)
    return account.id, [
        studio.create_project(
            account.id,
            title=f"Ad {i}",
            format="9:16",
            brief="Fizz",
            autopilot=True,
            actor="user:alice",
        ).id
        for i in range(count)
    ]


def assert_each_step_charged_once(studio: Studio, owner: UUID, ids: list[UUID]) -> None:
    """Every step generated and charged once, every clip rendered once, every ledger even."""
    for project_id in ids:
        events = list(studio.events.get(project_id))
        charged = [e.step for e in events if isinstance(e, Project.CreditsCharged)]
        generated = [e.step for e in events if isinstance(e, Project.GenerationRecorded)]
        assert sorted(charged) == sorted(s.value for s in Step), charged
        assert sorted(generated) == sorted(s.value for s in Step), generated
        clips = [e.scene for e in events if isinstance(e, Project.ClipRendered)]
        assert len(clips) == len(set(clips))
        assert studio.project(project_id).reconciliation().consistent
    after = studio.account(owner)
    assert after.reserved == 0
    assert after.balance == 10_000 - sum(studio.project(i).charged for i in ids)
