"""Deadlines (issue 12): a step still active past its deadline is failed with `timed_out`, its
reservation released, once whoever watches; the stage abandons it; retry resumes from it."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import httpx
import pytest
from polling import wait_for
from prometheus_client.parser import text_string_to_metric_families
from web_server import json_of, serving

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.consumers import deadlines
from aytada_es.consumers.addons import AddOnOutput, AddOnStage
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.deadlines import DeadlineWatcher
from aytada_es.domain.deadlines import Deadlines
from aytada_es.domain.failures import failure_message
from aytada_es.domain.project import Project
from aytada_es.domain.status import Status
from aytada_es.domain.steps import Price, Step
from aytada_es.projections.runner import ReadModels, read_models
from aytada_es.providers.base import Brief, Call, Providers
from aytada_es.providers.instant import instant_providers

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DEADLINES = Deadlines({"ideas": 10.0, "script": 100.0, "scenes": 0.0}, default_s=50.0)


def generation(units: int) -> dict[str, Any]:
    return {
        "provider": "p",
        "stage_version": "1",
        "units": units,
        "started_at": T0,
        "finished_at": T0,
        "attempts": 1,
    }


@pytest.fixture
def models(studio: Studio) -> ReadModels:
    return read_models(studio)


def caught_up(models: ReadModels) -> None:
    while models.catch_up():
        pass


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def watcher(studio: Studio, models: ReadModels, clock: Clock) -> DeadlineWatcher:
    return DeadlineWatcher(
        studio, models.open_steps, DEADLINES, add_ons=frozenset({"captions"}), clock=clock
    )


def request_version(studio: Studio, project_id: UUID) -> int:
    request = studio.project(project_id).request
    assert request is not None
    return int(request["version"])


def projects_in_flight(studio: Studio, owner: UUID) -> dict[str, UUID]:
    """Projects waiting for ideas, a script, scenes (no deadline) and an add-on; one settled."""
    made = {
        name: studio.create_project(owner, title=name, format="1:1", brief="", actor="u").id
        for name in ("ideas", "script", "scenes", "addon", "settled")
    }
    studio.request_ideas(owner, made["ideas"], count=2, actor="u")
    studio.request_script(owner, made["script"], actor="u")
    studio.request_ideas(owner, made["settled"], count=2, actor="u")
    assert studio.complete_step(
        made["settled"],
        step=Step.IDEAS,
        version=request_version(studio, made["settled"]),
        result={"ideas": [{"title": "a"}, {"title": "b"}]},
        generation=generation(2),
        actor="stage:ideas",
    )
    # A project with scenes requested: its step has no deadline (0).
    scenes = made["scenes"]
    studio.request_script(owner, scenes, actor="u")
    assert studio.complete_step(
        scenes,
        step=Step.SCRIPT,
        version=request_version(studio, scenes),
        result={"script": {"text": "Buy it.", "idea": None}},
        generation=generation(1),
        actor="stage:script",
    )
    studio.request_scenes(owner, scenes, actor="u")
    assert studio.request_addon(
        made["addon"],
        step="captions",
        trigger_version=1,
        estimate=3,
        stage_version="1",
        actor="stage:captions",
    )
    return made


def overdue_names(w: DeadlineWatcher, made: dict[str, UUID]) -> list[str]:
    names = {v: k for k, v in made.items()}
    return sorted(names[o.project_id] for o in w.overdue())


def test_the_watcher_selects_only_requests_past_their_own_steps_deadline(
    studio: Studio, models: ReadModels
) -> None:
    owner = studio.open_account("ann", credits=1000)[0].id
    made = projects_in_flight(studio, owner)
    caught_up(models)
    clock = Clock()
    w = watcher(studio, models, clock)

    assert overdue_names(w, made) == []
    clock.now += 20  # past ideas (10 s) only
    assert overdue_names(w, made) == ["ideas"]
    clock.now += 40  # past the add-on's default (50 s) too
    assert overdue_names(w, made) == ["addon", "ideas"]
    clock.now += 10_000  # past the script's (100 s); scenes have none; settled is gone
    assert overdue_names(w, made) == ["addon", "ideas", "script"]
    assert {o.step for o in w.overdue()} == {"ideas", "script", "captions"}


def test_a_timed_out_step_fails_releases_its_credits_and_can_be_retried(
    studio: Studio, models: ReadModels
) -> None:
    owner = studio.open_account("bob", credits=1000)[0].id
    made = projects_in_flight(studio, owner)
    balance_before = studio.account(owner).balance
    reserved_before = studio.account(owner).reserved
    ideas = studio.project(made["ideas"])
    assert ideas.request is not None
    request_version, held = ideas.request["version"], ideas.still_reserved
    caught_up(models)
    clock = Clock()
    clock.now += 10_000
    w = watcher(studio, models, clock)

    assert w.check() == 3
    assert w.check() == 0  # still listed (the read model has not caught up): passed over

    failed = studio.project(made["ideas"])
    assert failed.status is Status.FAILED and failed.failure is not None
    assert failed.failure["code"] == "timed_out" and failed.failure["step"] == "ideas"
    assert failed.still_reserved == 0 and failed.reconciliation().consistent
    stopped = [e for e in studio.events.get(made["ideas"]) if isinstance(e, Project.StepFailed)]
    assert [(e.code, e.actor) for e in stopped] == [("timed_out", "deadline")]
    assert failure_message("timed_out", "ideas").startswith("Making the ad ideas took too long")
    addon = studio.project(made["addon"])
    assert addon.status is Status.DRAFT  # an add-on fails alone
    assert addon.addons["captions"]["state"] == "failed"
    assert addon.addons["captions"]["failure"]["code"] == "timed_out"
    assert studio.project(made["scenes"]).status is Status.GENERATING_SCENES
    account = studio.account(owner)
    scenes_held = studio.project(made["scenes"]).still_reserved
    assert account.reserved == scenes_held
    assert account.balance == balance_before + reserved_before - scenes_held

    # A late answer changes nothing: no result, no charge.
    assert not studio.complete_step(
        made["ideas"],
        step=Step.IDEAS,
        version=request_version,
        result={"ideas": [{"title": "late"}, {"title": "later"}]},
        generation=generation(2),
        actor="stage:ideas",
    )
    assert studio.project(made["ideas"]).charged == 0

    caught_up(models)
    statement = models.credits.statement(owner)
    releases = [
        m
        for m in statement["history"]
        if m["kind"] == "release" and m["project_id"] == str(made["ideas"])
    ]
    assert [(m["step"], m["amount"]) for m in releases] == [("ideas", held)]
    assert w.overdue() == []  # settled requests leave the read model

    retried = studio.retry(owner, made["ideas"], actor="u")
    assert retried.status is Status.GENERATING_IDEAS and retried.still_reserved == held
    caught_up(models)
    clock.now = time.time()
    assert w.overdue() == []  # a new request: its own deadline, from now
    clock.now += 20
    assert [o.project_id for o in w.overdue()] == [made["ideas"]]


@pytest.fixture(params=["one process", "two processes"])
def studios(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[Studio, Studio]]:
    """Two watchers' Studios: one shared (`serve`), or one each (two stage workers)."""
    env = settings.database().eventsourcing_env()
    if request.param == "one process":
        studio = Studio(env, sole_writer=True)
        try:
            yield studio, studio
        finally:
            studio.close()
        return
    first, second = Studio(env), Studio(env)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_watchers_in_several_processes_time_each_step_out_once(
    studios: tuple[Studio, Studio],
) -> None:
    first, second = studios
    owner = first.open_account(f"w-{uuid.uuid4().hex[:6]}", credits=10_000)[0].id
    projects = []
    for i in range(12):
        project = first.create_project(owner, title=f"P{i}", format="1:1", brief="", actor="u")
        first.request_ideas(owner, project.id, count=2, actor="u")
        projects.append(project.id)
    models = read_models(first)
    caught_up(models)
    clock = Clock()
    clock.now += 60
    watchers = [watcher(s, read_models(s), clock) for s in (first, second)]
    start = threading.Barrier(2)
    counts: list[int] = []

    def watch(w: DeadlineWatcher) -> None:
        start.wait()
        counts.append(w.check())

    threads = [threading.Thread(target=watch, args=(w,)) for w in watchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == len(projects)
    for project_id in projects:
        events = list(first.events.get(project_id))
        assert sum(isinstance(e, Project.StepFailed) for e in events) == 1
        assert sum(isinstance(e, Project.CreditsReleased) for e in events) == 1
        assert first.project(project_id).reconciliation().consistent
    assert first.account(owner).reserved == 0
    assert first.account(owner).balance == 10_000


def test_a_deadline_for_no_step_stops_the_start(settings: Settings) -> None:
    from aytada_es.domain.errors import ConfigError

    typo = settings.model_copy(update={"deadlines_s": {"videos": 5.0}})
    with pytest.raises(ConfigError, match="AYTADA_DEADLINE_VIDEOS_S names no billed step"):
        bootstrap(typo)


# ---- a provider that never answers, the real broker ----------------------------------------


class ClipsThatNeverAnswer:
    """Instant clips once `answer` is set; until then every call waits for ever."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.answer = asyncio.Event()
        self.started = 0
        self.abandoned = 0

    async def clip(self, brief: Brief, scene: dict[str, Any], call: Call) -> dict[str, Any]:
        self.started += 1
        try:
            await self.answer.wait()
        except asyncio.CancelledError:
            self.abandoned += 1
            raise
        result: dict[str, Any] = await self.inner.clip(brief, scene, call)
        return result


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.kafka
async def test_a_provider_that_never_answers_is_timed_out_and_its_credits_released(
    settings: Settings, broker: str
) -> None:
    base = instant_providers(AssetStore(settings.assets_dir))
    clips = ClipsThatNeverAnswer(base.clips)
    providers = Providers(
        "hanging",
        base.ideas,
        base.script,
        base.scenes,
        clips,
        base.voiceover,
        base.stitching,
        base.images,
        billed=False,
    )
    system = bootstrap(
        settings.model_copy(update={"deadlines_s": {"video": 1.5}}),
        providers=providers,
        bootstrap_servers=broker,
    )
    studio = system.studio
    try:
        async with system.running(), serving(system) as served:
            owner, token = studio.open_account("carol", credits=1000)
            async with httpx.AsyncClient(
                base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
            ) as http:
                card = json_of(
                    await http.post(
                        "/api/projects",
                        json={"title": "Fizz", "format": "9:16", "brief": "", "autopilot": True},
                    )
                )
                project_id = UUID(card["id"])
                await wait_for(lambda: clips.started > 0, 30, "the first clip to start")
                rendering = studio.project(project_id)
                assert rendering.status is Status.GENERATING_VIDEO
                charged, held = rendering.charged, rendering.still_reserved
                assert set(rendering.open_reservations) == {"video", "voiceover", "stitching"}

                await wait_for(
                    lambda: studio.project(project_id).status is Status.FAILED, 10, "the deadline"
                )
                # The stage notices within its watch interval and abandons the clip.
                await wait_for(lambda: clips.abandoned == 1, 5, "the clip to be abandoned")
                failed = studio.project(project_id)
                assert failed.failure is not None and failed.failure["code"] == "timed_out"
                assert failed.failure["step"] == "video"
                assert failed.charged == charged and failed.still_reserved == 0
                assert studio.account(owner.id).reserved == 0
                assert studio.account(owner.id).balance == 1000 - charged

                view = json_of(await http.get(f"/api/projects/{project_id}"))
                assert view["status"] == "failed" and view["action"] == "retry"
                assert view["failure"]["code"] == "timed_out"
                assert view["failure"]["message"] == failure_message("timed_out", "video")

                def released() -> int:
                    rows = system.read_models.credits.statement(owner.id)["history"]
                    return sum(
                        m["amount"]
                        for m in rows
                        if m["kind"] == "release"
                        and m["project_id"] == str(project_id)
                        and m["step"] in ("video", "voiceover", "stitching")
                    )

                await wait_for(lambda: released() == held, 5, "the release in the statement")
                statement = json_of(await http.get("/api/credits"))
                assert statement["balance"] == 1000 - charged and statement["reserved"] == 0

                metrics = scrape((await http.get("/metrics")).text)
                assert (
                    metrics[("aytada_steps_timed_out_total", frozenset({("step", "video")}))] == 1
                )
                assert (
                    metrics[("aytada_steps_timed_out_total", frozenset({("step", "ideas")}))] == 0
                )

                clips.answer.set()
                assert (await http.post(f"/api/projects/{project_id}/retry")).status_code == 202
                await wait_for(
                    lambda: studio.project(project_id).status is Status.COMPLETED, 30, "done"
                )
                done = studio.project(project_id)
                assert done.reconciliation().consistent and done.still_reserved == 0
                assert studio.account(owner.id).reserved == 0
                assert clips.started == 1 + len(done.scenes)
    finally:
        system.close()


class HangingSubtitles(AddOnStage):
    """A plug-in's billed step whose provider never answers."""

    name = "subtitles"
    version = "1"
    reacts_to = frozenset({"ProjectCreated"})
    records: ClassVar[dict[str, str]] = {"subtitles": "Subtitles"}
    price = Price("file", 4)
    started = 0
    abandoned = 0

    async def generate(self, project: Project, ctx: StageContext) -> AddOnOutput:
        type(self).started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            type(self).abandoned += 1
            raise
        raise AssertionError("never answers")


@pytest.mark.kafka
async def test_an_add_on_past_its_deadline_fails_alone_and_releases_its_reservation(
    settings: Settings, broker: str
) -> None:
    HangingSubtitles.started = HangingSubtitles.abandoned = 0
    system = bootstrap(
        settings.model_copy(update={"deadlines_s": {"subtitles": 1.0}}),
        extra_stages=[HangingSubtitles],
        bootstrap_servers=broker,
    )
    studio = system.studio
    try:
        async with system.running():
            owner = studio.open_account("dan", credits=100)[0].id
            project = studio.create_project(owner, title="Fizz", format="1:1", brief="", actor="u")
            await wait_for(lambda: HangingSubtitles.started > 0, 30, "the add-on to start")
            assert studio.account(owner).reserved == 4

            def timed_out() -> bool:
                addon = studio.project(project.id).addon("subtitles")
                return addon is not None and addon["state"] == "failed"

            await wait_for(timed_out, 10, "the add-on's deadline")
            await wait_for(lambda: HangingSubtitles.abandoned == 1, 5, "the work abandoned")
            settled = studio.project(project.id)
            addon = settled.addon("subtitles")
            assert addon is not None and addon["failure"]["code"] == "timed_out"
            assert settled.status is Status.DRAFT and settled.failure is None
            assert (settled.reserved, settled.charged, settled.released) == (4, 0, 4)
            account = studio.account(owner)
            assert (account.balance, account.reserved) == (100, 0)
            exposition = system.metrics.exposition(None)[0].decode()
            timed_out = scrape(exposition)
            assert (
                timed_out[("aytada_steps_timed_out_total", frozenset({("step", "subtitles")}))] == 1
            )
    finally:
        system.close()


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("roles", "watches"),
    [(("stages",), True), (("relay",), False), (("projections",), False)],
)
async def test_the_watcher_runs_where_stages_run(
    settings: Settings, broker: str, roles: tuple[str, ...], watches: bool
) -> None:
    system = bootstrap(settings, roles=roles, bootstrap_servers=broker)
    try:
        async with system.running():
            assert ("deadlines" in system.health()) is watches
            if watches:
                await wait_for(lambda: system.health()["deadlines"], 5, "the watcher to run")
    finally:
        system.close()


def test_one_round_times_out_every_overdue_step_page_by_page(
    studio: Studio, models: ReadModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadlines, "PAGE", 5)
    owner = studio.open_account("eve", credits=1000)[0].id
    made = []
    for i in range(12):
        project = studio.create_project(owner, title=f"P{i}", format="1:1", brief="", actor="u")
        studio.request_ideas(owner, project.id, count=2, actor="u")
        made.append(project.id)
    caught_up(models)
    clock = Clock()
    clock.now += 60
    w = watcher(studio, models, clock)
    assert len(w.overdue()) == 5

    assert w.check() == 12  # three pages in one round
    assert all(studio.project(p).status is Status.FAILED for p in made)
    assert w.check() == 0  # still listed (the read model lags): passed over, no project loaded
    caught_up(models)
    assert w.overdue() == []


def test_a_fresh_watcher_finds_a_listed_but_settled_request_settled_and_changes_nothing(
    studio: Studio, models: ReadModels
) -> None:
    owner = studio.open_account("fay", credits=1000)[0].id
    made = projects_in_flight(studio, owner)
    caught_up(models)
    clock = Clock()
    clock.now += 10_000
    assert watcher(studio, models, clock).check() == 3
    stored = studio.recorder.max_notification_id()

    assert watcher(studio, models, clock).check() == 0  # the rows are still there: it looks
    assert studio.recorder.max_notification_id() == stored  # and saves nothing
    assert studio.project(made["ideas"]).status is Status.FAILED
