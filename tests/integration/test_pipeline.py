"""Projects run from draft to completed through the event store, the real broker and the stages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from uuid import UUID

from aytada_es.application import Studio
from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.domain.status import Status


async def wait_for(check: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def statuses(studio: Studio, ids: list[UUID]) -> list[str]:
    return [studio.project(i).status.value for i in ids]


async def test_twenty_autopilot_projects_complete_through_the_broker(
    settings: Settings, broker: str
) -> None:
    system = bootstrap(settings, bootstrap_servers=broker)
    try:
        studio = system.studio
        account, _ = studio.open_account("alice", credits=10_000)
        ids = [
            studio.create_project(
                account.id,
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
            await wait_for(lambda: _all_cards_completed(system, account.id, 20), what="cards")
        position, cards = system.read_models.videos.videos_of(account.id)
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
            }
            assert project.reconciliation().consistent
            assert project.still_reserved == 0
        assert position == studio.recorder.max_notification_id()
        after = studio.account(account.id)
        charged = sum(studio.project(i).charged for i in ids)
        assert after.reserved == 0
        assert after.balance == 10_000 - charged
    finally:
        system.close()


def _all_cards_completed(system: System, owner: UUID, count: int) -> bool:
    _, cards = system.read_models.videos.videos_of(owner)
    return len(cards) == count and all(c["status"] == "completed" for c in cards)


