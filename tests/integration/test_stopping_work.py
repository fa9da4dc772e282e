"""Cancel and delete stop spending (docs/api.md §2, cancel): the step in flight is abandoned,
nothing is requested or charged afterwards, and a cancel racing a completion settles once."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from polling import wait_for
from web_server import json_of, serving

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.domain.errors import IllegalTransition
from aytada_es.domain.project import Project
from aytada_es.domain.status import Status
from aytada_es.domain.steps import Step
from aytada_es.providers.base import Brief, Call, Providers
from aytada_es.providers.instant import instant_providers
from aytada_es.providers.local.clips import LocalClips
from aytada_es.providers.local.speech import synthesize

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class ClipsThatTakeTheirTime:
    """Instant clips, each `delay_s` late; counts the clips abandoned half-way."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.started = 0
        self.abandoned = 0

    async def clip(self, brief: Brief, scene: dict[str, Any], call: Call) -> dict[str, Any]:
        self.started += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.abandoned += 1
            raise
        result: dict[str, Any] = await self.inner.clip(brief, scene, call)
        return result


def slow_providers(assets_dir: Path, clips: ClipsThatTakeTheirTime) -> Providers:
    base = instant_providers(AssetStore(assets_dir))
    return Providers(
        "slow",
        base.ideas,
        base.script,
        base.scenes,
        clips,
        base.voiceover,
        base.stitching,
        base.images,
        billed=False,
    )


def events_after(studio: Studio, project_id: UUID, name: str) -> list[str]:
    """The types of the project's events after the first one called `name`."""
    names = [type(e).__name__ for e in studio.events.get(project_id)]
    return names[names.index(name) + 1 :]


@pytest.mark.kafka
@pytest.mark.parametrize("how", ["cancel", "delete"])
async def test_stopping_a_render_abandons_it_and_nothing_is_charged_afterwards(
    settings: Settings, broker: str, how: str
) -> None:
    clips = ClipsThatTakeTheirTime(instant_providers(AssetStore(settings.assets_dir)).clips, 5.0)
    system = bootstrap(
        settings,
        providers=slow_providers(settings.assets_dir, clips),
        bootstrap_servers=broker,
    )
    studio = system.studio
    try:
        async with system.running(), serving(system) as served:
            owner, token = studio.open_account("alice", credits=1000)
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
                assert studio.project(project_id).status is Status.GENERATING_VIDEO
                charged = studio.project(project_id).charged

                if how == "cancel":
                    answer = await http.post(f"/api/projects/{project_id}/cancel")
                    assert answer.status_code == 202, answer.text
                    assert json_of(answer)["status"] == "failed"
                    assert answer.json()["action"] == "retry"
                else:
                    assert (await http.delete(f"/api/projects/{project_id}")).status_code == 204

                # The stage notices within its watch interval and kills the clip half-way.
                await wait_for(lambda: clips.abandoned == 1, 5, "the clip to be abandoned")
                stopped = studio.project(project_id)
                assert stopped.status is Status.FAILED and stopped.failure is not None
                assert stopped.failure["code"] == "cancelled"
                assert stopped.charged == charged and stopped.still_reserved == 0
                assert studio.account(owner.id).reserved == 0
                assert studio.account(owner.id).balance == 1000 - charged
                after = events_after(studio, project_id, "StepCancelled")
                deleted = ["ProjectDeleted"] if how == "delete" else []
                assert after == ["CreditsReleased"] * 3 + deleted
                assert clips.started == 1

                if how == "cancel":
                    view = json_of(await http.get(f"/api/projects/{project_id}"))
                    assert view["failure"]["code"] == "cancelled"
                    assert view["failure"]["step"] == "video"
                    assert view["failure"]["message"].startswith(
                        "You stopped making the video clips"
                    )
                    assert set(view["failure"]) == {
                        "step",
                        "code",
                        "message",
                        "attempts",
                        "failed_at",
                    }
                    clips.delay_s = 0
                    assert (await http.post(f"/api/projects/{project_id}/retry")).status_code == 202
                    await wait_for(
                        lambda: studio.project(project_id).status is Status.COMPLETED, 30, "done"
                    )
                    done = studio.project(project_id)
                    assert done.reconciliation().consistent
                    assert studio.account(owner.id).reserved == 0
    finally:
        system.close()


# ---- a cancel racing a completion ---------------------------------------------------------


@pytest.fixture(params=["one process", "two processes"])
def studios(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[Studio, Studio]]:
    """The web's Studio and the stage's: one shared (`serve`), or one each (separate workers)."""
    env = settings.database().eventsourcing_env()
    if request.param == "one process":
        studio = Studio(env, sole_writer=True)
        try:
            yield studio, studio
        finally:
            studio.close()
        return
    web, stage = Studio(env), Studio(env)
    try:
        yield web, stage
    finally:
        web.close()
        stage.close()


def race_once(web: Studio, stage: Studio, owner: UUID) -> str:
    """Complete a project's ideas and cancel them at the same moment; which one went ahead."""
    project = web.create_project(owner, title="Race", format="1:1", brief="", actor="u")
    web.request_ideas(owner, project.id, count=2, actor="u")
    request = web.project(project.id).request
    assert request is not None
    start = threading.Barrier(2)
    went_ahead: dict[str, bool] = {}

    def complete() -> None:
        start.wait()
        went_ahead["complete"] = stage.complete_step(
            project.id,
            step=Step.IDEAS,
            version=request["version"],
            result={"ideas": [{"title": "a"}, {"title": "b"}]},
            generation={
                "provider": "p",
                "stage_version": "1",
                "units": 2,
                "started_at": T0,
                "finished_at": T0,
                "attempts": 1,
            },
            actor="stage:ideas",
        )

    def cancel() -> None:
        start.wait()
        try:
            web.cancel(owner, project.id, actor="u")
            went_ahead["cancel"] = True
        except IllegalTransition:
            went_ahead["cancel"] = False

    threads = [threading.Thread(target=complete), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert went_ahead["complete"] != went_ahead["cancel"], went_ahead  # exactly one
    events = list(web.events.get(project.id))
    charges = [e for e in events if isinstance(e, Project.CreditsCharged)]
    cancels = [e for e in events if isinstance(e, Project.StepCancelled)]
    assert len(charges) + len(cancels) == 1
    settled = web.project(project.id)
    assert settled.reconciliation().consistent and settled.still_reserved == 0
    assert settled.status is (Status.IDEAS_READY if charges else Status.FAILED)
    return "charged" if charges else "cancelled"


def test_a_cancel_racing_a_completion_settles_exactly_once(
    studios: tuple[Studio, Studio],
) -> None:
    web, stage = studios
    owner = web.open_account(f"racer-{uuid.uuid4().hex[:6]}", credits=10_000)[0].id

    outcomes = [race_once(web, stage, owner) for _ in range(30)]

    account = web.account(owner)
    assert account.reserved == 0
    assert account.balance == 10_000 - 2 * outcomes.count("charged")


# ---- local renderers are killed, not left running ------------------------------------------


def children_named(word: str) -> list[int]:
    """Our child processes whose command line holds `word`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and word.encode() in cmdline:
            found.append(int(entry))
    return found


async def test_an_abandoned_clip_kills_its_ffmpeg_process(tmp_path: Path) -> None:
    clips = LocalClips(AssetStore(tmp_path), scale=0.5)
    brief = Brief(uuid.uuid4(), "Fizz", "9:16", "Lime")
    rendering = asyncio.ensure_future(
        clips.clip(brief, {"index": 0, "headline": "Hi", "duration_s": 6}, Call("k"))
    )
    await wait_for(lambda: bool(children_named("ffmpeg")), 20, "ffmpeg to start")

    rendering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await rendering

    assert children_named("ffmpeg") == []
    assert not any(tmp_path.rglob("*.mp4"))  # noqa: ASYNC240 (a tmp dir, after the fact)


async def test_an_abandoned_voiceover_kills_its_speech_process(tmp_path: Path) -> None:
    speaking = asyncio.ensure_future(synthesize("word " * 20000, tmp_path / "v.wav", 165))
    await wait_for(lambda: bool(children_named("_espeak")), 20, "espeak to start")

    speaking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await speaking

    assert children_named("_espeak") == []
