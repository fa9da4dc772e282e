"""Issue 12's bound: with the offline providers, user A's autopilot projects do not keep user
B's one, started right after, from completing within 2.5 times its time on an idle system."""

from __future__ import annotations

import asyncio
import logging
import time
from uuid import UUID

import pytest
from polling import wait_for

from aytada_es.application import Studio
from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.domain.status import Status
from aytada_es.providers.local import local_providers

pytestmark = pytest.mark.kafka
log = logging.getLogger(__name__)

BOUND = 2.5
# Issue 12 says 12 (bench/fairness.py runs that); 6 keep the test short and still tell: in
# arrival order B's renders would wait behind all of A's (several times its idle time), while
# the fair order makes them wait for at most the render in progress, however many A started.
HEAVY = 6
SCALE = 0.25  # small frames: the same steps and ffmpeg calls, quicker


async def start(studio: Studio, owner: UUID, title: str) -> UUID:
    """An autopilot project, as the API creates it."""
    project = await asyncio.to_thread(
        studio.create_project,
        owner,
        title=title,
        format="9:16",
        brief=f"{title}: smooth cold brew, ready in the fridge.",
        autopilot=True,
        actor="user",
    )
    return project.id


def completed(studio: Studio, project_id: UUID) -> bool:
    project = studio.project(project_id)
    assert project.status is not Status.FAILED, project.failure
    return project.status is Status.COMPLETED


async def completion_s(system: System, owner: UUID, title: str) -> float:
    """How long a new project of `owner` takes from its creation to its completion."""
    began = time.monotonic()
    project_id = await start(system.studio, owner, title)
    await wait_for(lambda: completed(system.studio, project_id), 300, f"{title} to complete")
    return time.monotonic() - began


async def test_a_light_users_project_completes_within_the_bound_under_a_heavy_users_load(
    settings: Settings, broker: str
) -> None:
    system = bootstrap(settings, bootstrap_servers=broker)
    system.providers = local_providers(system.assets, scale=SCALE)
    studio = system.studio
    heavy = studio.open_account("heavy", credits=100_000)[0].id
    light = studio.open_account("light", credits=100_000)[0].id
    try:
        async with system.running():
            await completion_s(system, light, "Warm-up")  # first renders, connections, joins
            idle_s = await completion_s(system, light, "Idle")
            heavy_projects = [await start(studio, heavy, f"Heavy {i}") for i in range(HEAVY)]
            loaded_s = await completion_s(system, light, "Loaded")
            log.warning("light user's project: idle %.2f s, loaded %.2f s", idle_s, loaded_s)
            assert loaded_s <= BOUND * idle_s, (idle_s, loaded_s)
            # ... and the heavy user's work is delayed, not lost.
            await wait_for(
                lambda: all(completed(studio, p) for p in heavy_projects), 600, "A's projects"
            )
    finally:
        system.close()
