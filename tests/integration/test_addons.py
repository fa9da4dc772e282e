"""Billed steps of plug-in stages over a real event store: reserved once per trigger, charged
at their declared price, skipped when unaffordable, stopped by a delete (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from aytada_es.application import Studio
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Price

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PRICE = Price("video", 3)
VIDEO = {"id": "f" * 64, "kind": "captioned_video", "content_type": "video/mp4",
         "created_at": T0.isoformat()}  # fmt: skip


def generation(units: int, attempts: int = 1) -> dict[str, object]:
    return {"provider": "p", "stage_version": "2.1", "units": units, "started_at": T0,
            "finished_at": T0, "attempts": attempts}  # fmt: skip


def a_project(studio: Studio, credits: int = 20) -> tuple[UUID, UUID, int]:
    """An owner and a project; the version a trigger event of it could have."""
    owner = studio.open_account(f"u{credits}", credits=credits)[0].id
    project = studio.create_project(owner, title="Fizz", format="1:1", brief="", actor="u")
    return owner, project.id, project.version


def request(studio: Studio, project_id: UUID, trigger: int, estimate: int = 6) -> int | None:
    return studio.request_addon(
        project_id,
        step="captions",
        trigger_version=trigger,
        estimate=estimate,
        stage_version="2.1",
        actor="stage:captions",
    )


def events_of(studio: Studio, project_id: UUID) -> list[str]:
    return [type(e).__name__ for e in studio.events.get(project_id)]


def test_an_add_on_is_reserved_once_per_trigger_and_charged_what_it_used(studio: Studio) -> None:
    owner, project_id, trigger = a_project(studio)

    version = request(studio, project_id, trigger)
    again = request(studio, project_id, trigger)  # the trigger redelivered

    assert version is not None and again == version
    assert studio.account(owner).reserved == 6
    assert studio.complete_addon(
        project_id,
        step="captions",
        version=version,
        price=PRICE,
        assets=[VIDEO],
        generation=generation(1),
        actor="stage:captions",
    )
    assert request(studio, project_id, trigger) is None  # done: nothing more to do
    project = studio.project(project_id)
    assert project.addon("captions")["state"] == "completed"  # type: ignore[index]
    assert any(a["kind"] == "captioned_video" for a in project.assets)
    assert (project.reserved, project.charged, project.released) == (6, 3, 3)
    account = studio.account(owner)
    assert (account.balance, account.reserved) == (17, 0)
    records = [
        e for e in studio.events.get(project_id) if isinstance(e, Project.GenerationRecorded)
    ]
    assert [(r.step, r.stage_version, r.credits) for r in records] == [("captions", "2.1", 3)]
    assert not studio.complete_addon(  # a late repeat changes nothing
        project_id,
        step="captions",
        version=version,
        price=PRICE,
        assets=[VIDEO],
        generation=generation(1),
        actor="stage:captions",
    )


def test_an_add_on_the_balance_cannot_cover_is_skipped_and_says_so(studio: Studio) -> None:
    owner, project_id, trigger = a_project(studio, credits=2)

    assert request(studio, project_id, trigger, estimate=6) is None

    project = studio.project(project_id)
    assert project.addon("captions")["state"] == "skipped"  # type: ignore[index]
    assert "AddOnSkipped" in events_of(studio, project_id)
    assert studio.account(owner).balance == 2 and project.reserved == 0


def test_a_failed_add_on_releases_its_credits(studio: Studio) -> None:
    owner, project_id, trigger = a_project(studio)
    version = request(studio, project_id, trigger)
    assert version is not None

    assert studio.fail_addon(
        project_id,
        step="captions",
        version=version,
        code=FailureCode.PROVIDER_UNAVAILABLE,
        error="ffmpeg failed",
        generation=generation(0, attempts=3),
        actor="stage:captions",
    )

    project = studio.project(project_id)
    assert project.addon("captions")["state"] == "failed"  # type: ignore[index]
    assert project.released == 6 and project.still_reserved == 0
    assert studio.account(owner).balance == 20


def test_deleting_a_project_stops_its_add_on_and_releases_the_reservation(
    studio: Studio,
) -> None:
    owner, project_id, trigger = a_project(studio)
    version = request(studio, project_id, trigger)
    assert version is not None

    studio.delete_project(owner, project_id, actor="u")

    project = studio.project(project_id)
    assert project.addon("captions")["state"] == "failed"  # type: ignore[index]
    assert project.still_reserved == 0 and studio.account(owner).reserved == 0
    assert events_of(studio, project_id)[-3:] == [
        "AddOnFailed",
        "CreditsReleased",
        "ProjectDeleted",
    ]
    assert not studio.complete_addon(
        project_id,
        step="captions",
        version=version,
        price=PRICE,
        assets=[VIDEO],
        generation=generation(1),
        actor="stage:captions",
    )
    assert request(studio, project_id, project.version) is None  # no new add-on when deleted
