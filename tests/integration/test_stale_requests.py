"""A step stage passes over a request already settled without loading its project (issue 17),
but only once the `open_steps` read model has applied it; a request still open is acted on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import pytest

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.stage import Done
from aytada_es.consumers.steps import StepOutput, StepStage
from aytada_es.consumers.webhooks import WebhookStage
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Step
from aytada_es.kafka.envelope import Envelope
from aytada_es.projections.runner import ReadModels, read_models
from aytada_es.providers.instant import instant_providers

T0 = datetime(2025, 1, 1, tzinfo=UTC)
GENERATION = {
    "provider": "p",
    "stage_version": "1",
    "units": 1,
    "started_at": T0,
    "finished_at": T0,
    "attempts": 1,
}


class ScriptStage(StepStage):
    """Writes a script and counts its calls."""

    name = "script-test"
    reacts_to = frozenset({"ScriptRequested"})
    step: ClassVar[Step] = Step.SCRIPT

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        self.calls += 1
        return StepOutput({"script": {"text": "Buy it.", "idea": None}}, 1)


@pytest.fixture
def models(studio: Studio) -> ReadModels:
    return read_models(studio)


@pytest.fixture
def ctx(studio: Studio, settings: Settings, models: ReadModels) -> StageContext:
    return StageContext(
        studio,
        AssetStore(settings.assets_dir),
        instant_providers(AssetStore(settings.assets_dir)),
        open_steps=models.open_steps,
    )


def caught_up(models: ReadModels) -> None:
    while models.catch_up():
        pass


def request_envelope(studio: Studio, project_id: UUID) -> Envelope:
    """The message the relay publishes for the project's current request."""
    request = studio.project(project_id).request
    assert request is not None
    return envelope_at(studio, project_id, int(request["version"]))


def envelope_at(studio: Studio, project_id: UUID, version: int) -> Envelope:
    """The message of the project's request made at `version`, stored long ago."""
    position = next(
        n.id
        for n in studio.recorder.select_notifications(1, 100_000)
        if n.originator_id == project_id and n.originator_version == version
    )
    return Envelope(
        event_id=uuid.uuid4(),
        position=position,
        project_id=project_id,
        version=version,
        type="ScriptRequested",
        occurred_at=T0,
        data={},
    )


def no_loading(monkeypatch: pytest.MonkeyPatch, studio: Studio) -> list[UUID]:
    """Record every load of a project (from the store or the cache) the stage makes."""
    loads: list[UUID] = []
    project, cached = studio.project, studio.cached_project

    def counted_project(project_id: UUID, **kw: Any) -> Project:
        loads.append(project_id)
        return project(project_id, **kw)

    def counted_cached(project_id: UUID, **kw: Any) -> Project | None:
        loads.append(project_id)
        return cached(project_id, **kw)

    monkeypatch.setattr(studio, "project", counted_project)
    monkeypatch.setattr(studio, "cached_project", counted_cached)
    return loads


async def test_a_settled_request_is_passed_over_without_loading_its_project(
    studio: Studio, models: ReadModels, ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = studio.open_account("ann", credits=1000)[0].id
    project = studio.create_project(owner, title="t", format="1:1", brief="", actor="u").id
    studio.request_script(owner, project, actor="u")
    envelope = request_envelope(studio, project)
    assert studio.complete_step(
        project,
        step=Step.SCRIPT,
        version=envelope.version,
        result={"script": {"text": "Done before.", "idea": None}},
        generation=GENERATION,
        actor="stage:script",
    )
    # Settled in the store, but the read model has not applied the request yet: it cannot tell.
    assert not await ctx.settled(envelope, Step.SCRIPT)
    caught_up(models)
    assert await ctx.settled(envelope, Step.SCRIPT)
    stage = ScriptStage()
    loads = no_loading(monkeypatch, studio)
    assert await stage.handle(envelope, ctx) == Done()
    assert loads == [] and stage.calls == 0
    assert studio.project(project).script == {"text": "Done before.", "idea": None}


async def test_an_open_request_is_acted_on_once_whether_or_not_the_read_model_saw_it(
    studio: Studio, models: ReadModels, ctx: StageContext
) -> None:
    owner = studio.open_account("bob", credits=1000)[0].id
    seen, unseen = (
        studio.create_project(owner, title=t, format="1:1", brief="", actor="u").id
        for t in ("seen", "unseen")
    )
    studio.request_script(owner, seen, actor="u")
    caught_up(models)
    studio.request_script(owner, unseen, actor="u")  # the read model is behind on this one
    stage = ScriptStage()
    for project in (seen, unseen):
        envelope = request_envelope(studio, project)
        assert not await ctx.settled(envelope, Step.SCRIPT)
        assert await stage.handle(envelope, ctx) == Done()
        assert studio.project(project).script == {"text": "Buy it.", "idea": None}
        # The same message again (a republish): settled now, not acted on twice.
        assert await stage.handle(envelope, ctx) == Done()
    assert stage.calls == 2
    caught_up(models)
    for project in (seen, unseen):
        assert await ctx.settled(request_envelope_of_script(studio, project), Step.SCRIPT)


def request_envelope_of_script(studio: Studio, project_id: UUID) -> Envelope:
    """The message of the project's (settled) script request."""
    version = next(
        e.originator_version
        for e in studio.events.get(project_id)
        if isinstance(e, Project.ScriptRequested)
    )
    return envelope_at(studio, project_id, version)


async def test_a_request_superseded_or_deleted_is_settled(
    studio: Studio, models: ReadModels, ctx: StageContext
) -> None:
    owner = studio.open_account("cat", credits=1000)[0].id
    project = studio.create_project(owner, title="t", format="1:1", brief="", actor="u").id
    studio.request_ideas(owner, project, count=2, actor="u")
    ideas = request_envelope(studio, project)
    caught_up(models)
    assert not await ctx.settled(ideas, Step.IDEAS)
    studio.delete_project(owner, project, actor="u")
    caught_up(models)
    assert await ctx.settled(ideas, Step.IDEAS)


async def test_the_webhooks_stage_loads_no_project_while_nobody_has_an_endpoint(
    studio: Studio, ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = studio.open_account("dan", credits=1000)[0].id
    project = studio.create_project(owner, title="t", format="1:1", brief="", actor="u").id
    studio.request_script(owner, project, actor="u")
    envelope = request_envelope(studio, project)
    loads = no_loading(monkeypatch, studio)
    assert await WebhookStage().handle(envelope, ctx) == Done()
    assert loads == []


async def test_a_replay_of_many_settled_requests_asks_the_store_once(
    studio: Studio, models: ReadModels, ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = studio.open_account("dan", credits=10_000)[0].id
    settled, still_open = [], []
    for i in range(12):
        project = studio.create_project(owner, title=f"t{i}", format="1:1", brief="", actor="u").id
        studio.request_ideas(owner, project, count=2, actor="u")
        (still_open if i % 4 == 0 else settled).append(request_envelope(studio, project))
        if i % 4:
            studio.delete_project(owner, project, actor="u")
    caught_up(models)
    store = models.open_steps.store
    queries: list[str] = []
    query = store.query
    monkeypatch.setattr(store, "query", lambda sql, *a: queries.append(sql) or query(sql, *a))

    for _ in range(3):  # a republish, and another
        for envelope in settled:
            assert await ctx.settled(envelope, Step.IDEAS)
    assert len(queries) == 1  # one snapshot of every open request answered all 27
    for envelope in still_open:  # open in the snapshot: asked again, one by one
        assert not await ctx.settled(envelope, Step.IDEAS)
    assert len(queries) == 1 + len(still_open)
    studio.delete_project(owner, still_open[0].project_id, actor="u")
    caught_up(models)  # settled since the snapshot: the store says so
    assert await ctx.settled(still_open[0], Step.IDEAS)


async def test_a_request_stored_just_now_is_live_and_asks_the_read_model_nothing(
    studio: Studio, models: ReadModels, ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = studio.open_account("eve", credits=1000)[0].id
    project = studio.create_project(owner, title="t", format="1:1", brief="", actor="u").id
    studio.request_ideas(owner, project, count=2, actor="u")
    old = request_envelope(studio, project)  # stored long ago, as a republished one
    live = old.model_copy(update={"occurred_at": datetime.now(UTC)})
    studio.delete_project(owner, project, actor="u")
    caught_up(models)
    asked: list[str] = []
    query = models.open_steps.store.query
    monkeypatch.setattr(
        models.open_steps.store, "query", lambda sql, *a: asked.append(sql) or query(sql, *a)
    )
    # The stage loads the project anyway for a live request: no query to add before it.
    assert not await ctx.settled(live, Step.IDEAS)
    assert asked == []
    assert await ctx.settled(old, Step.IDEAS)  # settled (deleted): passed over unloaded
    assert asked
    # A message whose time names no zone (not the relay's) cannot be told live: it is asked.
    naive = old.model_copy(update={"occurred_at": datetime.now()})
    assert await ctx.settled(naive, Step.IDEAS)
