"""Adding a stage from outside the package; billing-safe provider calls; replay never calls out."""

from __future__ import annotations

from typing import Any

import pytest
from polling import wait_for

from aytada_es.adapters.assets import AssetStore
from aytada_es.adapters.calls import CallLedger
from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.domain.project import Project
from aytada_es.domain.steps import SPECS, Step
from aytada_es.providers.base import Brief, Call, Providers
from aytada_es.providers.instant import InstantMedia, InstantText
from aytada_es.testing import Start
from plugins.social_card import SocialCardStage

pytestmark = pytest.mark.kafka


class Counting:
    """Counts every provider call by method, then lets the instant providers answer."""

    def __init__(self, assets: AssetStore) -> None:
        self.calls: dict[str, int] = {}
        self._text = InstantText()
        self._media = InstantMedia(assets)

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def ideas(self, brief: Brief, count: int, call: Call) -> list[dict[str, Any]]:
        self._count("ideas")
        return await self._text.ideas(brief, count, call)

    async def script(self, brief: Brief, idea: dict[str, Any] | None, call: Call) -> Any:
        self._count("script")
        return await self._text.script(brief, idea, call)

    async def scenes(self, brief: Brief, script: dict[str, Any], call: Call) -> Any:
        self._count("scenes")
        return await self._text.scenes(brief, script, call)

    async def clip(self, brief: Brief, scene: dict[str, Any], call: Call) -> Any:
        self._count("clip")
        return await self._media.clip(brief, scene, call)

    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> Any:
        self._count("voiceover")
        return await self._media.voiceover(brief, text, duration_s, call)

    async def stitch(self, brief: Brief, clips: Any, voiceover: Any, call: Call) -> Any:
        self._count("stitch")
        return await self._media.stitch(brief, clips, voiceover, call)

    async def images(self, brief: Brief, scenes: Any, call: Call) -> Any:
        self._count("images")
        return await self._media.images(brief, scenes, call)

    def providers(self) -> Providers:
        return Providers("counting", self, self, self, self, self, self, self)


def events_of(studio: Studio, project_id: Any) -> list[Any]:
    return list(studio.events.get(project_id))


async def test_a_stage_from_outside_the_package_runs_end_to_end_through_the_broker(
    settings: Settings, broker: str
) -> None:
    system = bootstrap(settings, bootstrap_servers=broker, extra_stages=(SocialCardStage,))
    try:
        studio = system.studio
        owner = studio.open_account("alice", credits=1000)[0].id
        project = studio.create_project(
            owner, title="Fizz", format="1:1", brief="b", autopilot=True, actor="user:alice"
        )
        async with system.running():
            assert "stage:social-card" in system.health()
            await wait_for(
                lambda: any(
                    a["kind"] == "banner" and a["content_type"] == "application/json"
                    for a in studio.project(project.id).assets
                ),
                what="the plug-in's social card",
            )
            await wait_for(
                lambda: any(
                    i["kind"] == "banner" for i in system.read_models.images.images_of(owner)
                ),
                what="the card in My Images",
            )
        done = studio.project(project.id)
        assert done.status == "completed"
        added = [e for e in events_of(studio, project.id) if isinstance(e, Project.AssetsAdded)]
        assert added[-1].actor == "stage:social"
    finally:
        system.close()


async def test_a_plain_stage_acts_once_per_event_when_the_log_is_published_again(
    aytada_start: Start,
) -> None:
    run = await aytada_start(SocialCardStage)
    project_id = run.autopilot_project(run.user())
    await run.until_event(project_id, "AssetsAdded")
    await run.until_consumed("social-card")

    # After a restart the relay publishes the log again; the card would now differ.
    assert await run.republish(project_id, "VideoStitched") == 1
    await run.until_consumed("social-card")

    cards = [
        e
        for e in run.events(project_id)
        if isinstance(e, Project.AssetsAdded) and e.actor == "stage:social"
    ]
    assert len(cards) == 1


async def test_a_stage_that_crashes_between_the_call_and_the_save_calls_once_and_charges_once(
    settings: Settings, broker: str
) -> None:
    counting = Counting(AssetStore(settings.assets_dir))
    system = bootstrap(settings, bootstrap_servers=broker, providers=counting.providers())
    studio = system.studio
    real_complete = studio.complete_step
    crashed: list[str] = []

    def crash_once(project_id: Any, **kwargs: Any) -> bool:
        if kwargs["step"] is Step.IDEAS and not crashed:
            crashed.append("ideas")
            raise RuntimeError("the process died before the save")
        return real_complete(project_id, **kwargs)

    studio.complete_step = crash_once  # type: ignore[method-assign]
    try:
        owner = studio.open_account("alice", credits=1000)[0].id
        project = studio.create_project(
            owner, title="Fizz", format="1:1", brief="b", actor="user:alice"
        )
        studio.request_ideas(owner, project.id, count=3, actor="user:alice")
        async with system.running():
            await wait_for(lambda: bool(crashed), what="the crash")
            # As if the process died: the stage goes, its offset uncommitted, and comes back.
            await system.kill("stage:ideas")
            system.revive("stage:ideas")
            await wait_for(
                lambda: studio.project(project.id).status == "ideas_ready",
                what="the redelivered request to finish",
            )
        assert counting.calls == {"ideas": 1}
        events = events_of(studio, project.id)
        charges = [e for e in events if isinstance(e, Project.CreditsCharged)]
        assert [(c.step, c.amount) for c in charges] == [("ideas", 3)]
        assert len([e for e in events if isinstance(e, Project.GenerationRecorded)]) == 1
        recorded = CallLedger.of(studio).get(f"{project.id}/2/ideas")
        assert recorded is not None and recorded.status == "finished"
        assert studio.account(owner).balance == 1000 - 3
    finally:
        system.close()


async def test_every_charge_is_the_declared_price_of_the_units_and_replay_calls_no_provider(
    settings: Settings, broker: str
) -> None:
    counting = Counting(AssetStore(settings.assets_dir))
    system = bootstrap(settings, bootstrap_servers=broker, providers=counting.providers())
    try:
        studio = system.studio
        owner = studio.open_account("alice", credits=1000)[0].id
        ids = [
            studio.create_project(
                owner, title=f"Ad {i}", format="9:16", brief="b", autopilot=True, actor="user:alice"
            ).id
            for i in range(3)
        ]
        async with system.running():
            await wait_for(
                lambda: all(studio.project(i).status == "completed" for i in ids), what="completion"
            )
        calls = dict(counting.calls)
        clips = sum(len(studio.project(i).scenes) for i in ids)
        assert calls == {
            "ideas": 3,
            "script": 3,
            "scenes": 3,
            "images": 3,
            "clip": clips,
            "voiceover": 3,
            "stitch": 3,
        }
        for project_id in ids:
            events = events_of(studio, project_id)
            reserved = {e.step: e.amount for e in events if isinstance(e, Project.CreditsReserved)}
            for record in (e for e in events if isinstance(e, Project.GenerationRecorded)):
                price = SPECS[Step(record.step)].cost(record.units)
                assert record.credits == price  # charged in full: the estimate covered it
                assert reserved[record.step] >= price
            images = {a["kind"] for a in studio.project(project_id).assets}
            assert {"scene_still", "product_shot", "banner", "flyer"} <= images
        system.read_models.rebuild()
        replayed = Studio(settings.database().eventsourcing_env())
        try:
            for project_id in ids:
                assert replayed.project(project_id) == studio.project(project_id)
        finally:
            replayed.close()
        assert counting.calls == calls  # rebuilding and replaying called no provider
    finally:
        system.close()
