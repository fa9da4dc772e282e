"""The stage runner alone retries a provider, honouring its Retry-After; one count everywhere."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest
from audits import project_audit
from polling import wait_for

from aytada_es.adapters.assets import AssetStore
from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.domain.project import Project
from aytada_es.domain.status import Status
from aytada_es.providers.base import Providers
from aytada_es.providers.cloud import ChatLLM
from aytada_es.providers.instant import InstantMedia
from aytada_es.web.projects import studio_view
from fakes.cloud_apis import LLM_KEY, FakeCloud, Reply, fake_cloud

pytestmark = pytest.mark.kafka


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloud]:
    async with fake_cloud() as fake:
        yield fake


@pytest.fixture
async def system(settings: Settings, broker: str, fake: FakeCloud) -> AsyncIterator[System]:
    """The whole system, its text steps asked of the fake LLM (billed: through the call ledger)."""
    async with httpx.AsyncClient() as http:
        text = ChatLLM(http, f"{fake.url}/llm/v1", LLM_KEY, timeout_s=2.0)
        media = InstantMedia(AssetStore(settings.assets_dir))
        providers = Providers("cloud-fake", text, text, text, media, media, media, media)
        built = bootstrap(
            settings.model_copy(update={"stage_attempts": 3}),
            providers=providers,
            bootstrap_servers=broker,
        )
        try:
            async with built.running():
                yield built
        finally:
            built.close()


def ideas_of(system: System) -> tuple[UUID, UUID]:
    owner = system.studio.open_account("alice", credits=100)[0].id
    project = system.studio.create_project(owner, title="Fizz", format="9:16", brief="", actor="u")
    system.studio.request_ideas(owner, project.id, count=2, actor="u")
    return owner, project.id


async def test_a_provider_that_says_wait_twice_is_called_three_times_and_charged_once(
    system: System, fake: FakeCloud
) -> None:
    wait = Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "0.5"})
    fake.script("chat", wait, wait)
    began = time.monotonic()
    _, project_id = ideas_of(system)

    await wait_for(
        lambda: system.studio.project(project_id).status is Status.IDEAS_READY, 30, "ideas"
    )

    assert time.monotonic() - began >= 1.0  # two Retry-Afters of 0.5 s, honoured
    assert fake.count("chat") == 3
    events = list(system.studio.events.get(project_id))
    charges = [e for e in events if isinstance(e, Project.CreditsCharged)]
    records = [e for e in events if isinstance(e, Project.GenerationRecorded)]
    assert [(c.step, c.amount) for c in charges] == [("ideas", 2)]
    assert [(r.outcome, r.attempts, r.stage_version) for r in records] == [("succeeded", 3, "1")]


async def test_a_step_that_keeps_failing_shows_one_attempt_count_everywhere(
    system: System, fake: FakeCloud
) -> None:
    fake.script("chat", *[Reply(503, {"error": {"message": "overloaded"}})] * 3)
    owner, project_id = ideas_of(system)

    await wait_for(lambda: system.studio.project(project_id).status is Status.FAILED, 30, "fail")

    assert fake.count("chat") == 3
    project = system.studio.project(project_id)
    failure = studio_view(project)["failure"]
    assert (failure["code"], failure["attempts"]) == ("provider_unavailable", 3)
    assert "HTTP 503" not in failure["message"]  # the raw error is for auditors only
    report = project_audit(system.studio, project_id)
    failed = [e["data"] for e in report["events"] if e["type"] == "StepFailed"]
    recorded = [e["data"] for e in report["events"] if e["type"] == "GenerationRecorded"]
    assert [d["attempts"] for d in failed + recorded] == [3, 3]
    assert "HTTP 503" in failed[0]["error"] and "attempts" not in failed[0]["error"]
    assert project.reconciliation().consistent and project.charged == 0
    assert system.studio.account(owner).reserved == 0
