"""Projects run from draft to completed through the event store, the real broker and the stages."""

from __future__ import annotations

import asyncio
from uuid import UUID

from polling import wait_for

from aytada_es.application import Studio
from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from fakes.slow import assert_each_step_charged_once, autopilot_projects, slow_providers


def statuses(studio: Studio, ids: list[UUID]) -> list[str]:
    return [studio.project(i).status.value for i in ids]


async def test_twenty_autopilot_projects_complete_through_the_broker(
    settings: Settings, broker: str
) -> None:
    system = bootstrap(settings, bootstrap_servers=broker)
    try:
        studio = system.studio
        owner = studio.open_account("alice", credits=10_000)[0].id
        ids = [
            studio.create_project(
                owner,
                title=f"Ad {i}",
                format=("9:16", "16:9", "1:1", "4:5")[i % 4],
                brief="Sparkling water with real fruit.",
                autopilot=True,
                actor="user:alice",
            ).id
            for i in range(20)
        ]
        async with system.running():
            await wait_for(
                lambda: all(s == "completed" for s in statuses(studio, ids)),
                what="20 projects to complete",
            )
            await wait_for(lambda: _all_cards_completed(system, owner, 20), what="cards")
        position, cards = system.read_models.videos.videos_of(owner)
        assert [c["id"] for c in cards] == [str(i) for i in reversed(ids)]
        for card, project_id in zip(cards, reversed(ids), strict=True):
            project = studio.project(project_id)
            assert card == {
                "id": str(project_id),
                "title": project.title,
                "format": project.format,
                "created_at": project.created_on.isoformat().replace("+00:00", "Z"),
                "updated_at": project.modified_on.isoformat().replace("+00:00", "Z"),
                "status": "completed",
                "progress": 100,
                "action": "view",
                "thumbnail_url": f"/api/assets/{project.thumbnail['id']}",
                "paused": None,
            }
            assert project.reconciliation().consistent
            assert project.still_reserved == 0
        assert position == studio.recorder.max_notification_id()
        after = studio.account(owner)
        charged = sum(studio.project(i).charged for i in ids)
        assert after.reserved == 0
        assert after.balance == 10_000 - charged
    finally:
        system.close()


def _all_cards_completed(system: System, owner: UUID, count: int) -> bool:
    _, cards = system.read_models.videos.videos_of(owner)
    return len(cards) == count and all(c["status"] == "completed" for c in cards)


async def test_killing_the_relay_and_a_stage_mid_run_loses_nothing_and_charges_once(
    settings: Settings, broker: str
) -> None:
    slow = slow_providers(settings.assets_dir, clip_delay_s=0.1)
    system = bootstrap(settings, providers=slow, bootstrap_servers=broker)
    try:
        studio = system.studio
        owner, ids = autopilot_projects(studio, 10)
        async with system.running():
            await wait_for(
                lambda: any(s == "generating_video" for s in statuses(studio, ids)),
                what="a render to start",
            )
            await system.kill("relay")
            await system.kill("stage:video")
            health = system.health()
            assert health["relay"] is False and health["stage:video"] is False
            assert health["projections"] is True and health["stage:ideas"] is True
            await asyncio.sleep(1.0)  # events pile up in the store, unpublished
            assert not all(s == "completed" for s in statuses(studio, ids))
            system.revive("relay")
            system.revive("stage:video")
            assert all(system.health().values())
            await wait_for(
                lambda: all(s == "completed" for s in statuses(studio, ids)),
                what="every project to complete after the restart",
            )
            await wait_for(lambda: _all_cards_completed(system, owner, 10), what="cards")
        assert_each_step_charged_once(studio, owner, ids)
        live = system.read_models.videos.videos_of(owner)
        system.read_models.rebuild()
        assert system.read_models.videos.videos_of(owner) == live
    finally:
        system.close()
