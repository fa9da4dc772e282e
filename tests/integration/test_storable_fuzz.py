"""Arbitrary text and numbers through every command: whatever the domain accepts, every read
model applies, on SQLite and on PostgreSQL (docs/api.md §2: nothing unstorable enters the store)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.domain.errors import AytadaError
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import FORMATS
from aytada_es.domain.steps import Step
from aytada_es.projections import ReadModels, read_models

T0 = datetime(2025, 1, 1, tzinfo=UTC)
# Every character class, surrogates and controls included: what a client or a provider could send.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
# Text a person would type, now and then with anything else mixed in.
SOME_TEXT = st.one_of(
    st.text(st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=40),
    ANY_TEXT,
)
ANY_INTEGER = st.one_of(st.integers(-5, 10), st.integers(), st.integers(2**62, 2**70))
ANY_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), ANY_INTEGER)


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[Studio, ReadModels]]:
    studio = Studio(settings.database().eventsourcing_env())
    try:
        yield studio, read_models(studio)
    finally:
        studio.close()


def an_asset(data: st.DataObject, kind: str) -> dict[str, Any]:
    return {
        "id": uuid4().hex * 2,
        "kind": data.draw(st.one_of(st.just(kind), ANY_TEXT)),
        "content_type": data.draw(st.one_of(st.just("image/png"), ANY_TEXT)),
        "created_at": data.draw(st.one_of(st.just(T0.isoformat()), ANY_TEXT)),
    }


def a_result(data: st.DataObject, step: Step) -> dict[str, Any]:
    """A stage's output with arbitrary text and numbers where a provider's answer goes."""
    if step is Step.IDEAS:
        ideas = st.lists(st.fixed_dictionaries({"title": ANY_TEXT, "pitch": ANY_TEXT}), max_size=3)
        return {"ideas": data.draw(ideas)}
    if step is Step.SCRIPT:
        return {"script": {"title": data.draw(ANY_TEXT), "text": data.draw(ANY_TEXT)}}
    if step is Step.SCENES:
        scene = st.fixed_dictionaries(
            {"index": ANY_INTEGER, "headline": ANY_TEXT, "duration_s": ANY_NUMBER}
        )
        return {"scenes": data.draw(st.lists(scene, min_size=1, max_size=3))}
    if step is Step.VIDEO:
        return {"duration_s": data.draw(ANY_NUMBER)}
    if step is Step.VOICEOVER:
        return {"asset": an_asset(data, "voiceover")}
    return {"video": an_asset(data, "final_video"), "thumbnail": an_asset(data, "thumbnail")}


def attempt(command: Any) -> Any:
    """Run a command; a refusal (any of our errors) stores nothing and is fine."""
    try:
        return command()
    except AytadaError:
        return None


def drive(studio: Studio, data: st.DataObject) -> None:
    account = attempt(
        lambda: studio.open_account(
            data.draw(SOME_TEXT, label="name"), credits=data.draw(ANY_INTEGER, label="credits")
        )
    )
    owner: UUID = account[0].id if account else studio.open_account(uuid4().hex, credits=500)[0].id
    attempt(lambda: studio.grant_credits(studio.account(owner).name, data.draw(ANY_INTEGER)))
    project = attempt(
        lambda: studio.create_project(
            owner,
            title=data.draw(SOME_TEXT, label="title"),
            format=data.draw(st.sampled_from(FORMATS)),
            brief=data.draw(SOME_TEXT, label="brief"),
            autopilot=data.draw(st.booleans()),
            actor="user:fuzz",
        )
    )
    if project is None:
        return
    attempt(
        lambda: studio.request_ideas(owner, project.id, count=data.draw(ANY_INTEGER), actor="u")
    )
    if data.draw(st.booleans(), label="renamed"):
        new_title = data.draw(SOME_TEXT, label="new title")
        attempt(lambda: studio.rename_project(owner, project.id, title=new_title, actor="u"))
    for _ in range(data.draw(st.integers(0, 8), label="stage replies")):
        request = studio.project(project.id).request
        if request is None:
            if not attempt(lambda: studio.retry(owner, project.id, actor="u")):
                attempt(lambda: studio.request_script(owner, project.id, actor="u"))
            continue
        step, version = Step(request["step"]), request["version"]
        generation = {
            "provider": "fuzz",
            "stage_version": "1",
            "units": data.draw(ANY_INTEGER, label="units"),
            "started_at": T0,
            "finished_at": T0,
            "attempts": data.draw(st.integers(1, 5)),
        }
        if data.draw(st.booleans(), label="fails"):
            fail = functools.partial(
                studio.fail_step,
                project.id,
                step=step,
                version=version,
                code=FailureCode.PROVIDER_UNAVAILABLE,
                error=data.draw(ANY_TEXT, label="error"),
                generation={**generation, "units": 0},
                actor="stage",
            )
            attempt(fail)
        else:
            complete = functools.partial(
                studio.complete_step,
                project.id,
                step=step,
                version=version,
                result=a_result(data, step),
                generation=generation,
                actor="stage",
            )
            attempt(complete)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_event_the_domain_accepts_applies_in_every_read_model(
    world: tuple[Studio, ReadModels], data: st.DataObject
) -> None:
    studio, models = world
    drive(studio, data)

    while models.catch_up():  # raises ProjectionFailed when a read model cannot apply one
        pass
    stored = studio.recorder.max_notification_id() or 0
    assert set(models.positions().values()) == {stored}
    for row in models.store.query("SELECT id, title FROM {aytada_videos}"):
        assert studio.project(UUID(row["id"])).title == row["title"]
