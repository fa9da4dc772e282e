"""My Scripts, My Images (and whose each asset is) and the credit statements, on SQLite and
PostgreSQL: built from the Studio's events, hidden while a project is deleted, rebuilt the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from aytada_es.adapters.chain import stored_history, unseal
from aytada_es.application import Studio
from aytada_es.domain.account import Account
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Step
from aytada_es.projections import ReadModels, read_models
from aytada_es.projections.videos import utc_iso

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SCENES = (3, 4)
IMAGE_KEYS = {"id", "project_id", "kind", "url", "created_at"}
SCRIPT_KEYS = {
    "id",
    "project_id",
    "project_title",
    "format",
    "title",
    "text",
    "words",
    "idea",
    "created_at",
}


@pytest.fixture
def models(studio: Studio) -> ReadModels:
    return read_models(studio)


# ---- driving the domain ---------------------------------------------------------------------


def an_owner(studio: Studio, name: str, credits: int = 10_000) -> UUID:
    account, _ = studio.open_account(name, credits=credits)
    return account.id


def a_project(studio: Studio, owner: UUID, title: str, format: str = "9:16") -> UUID:
    project = studio.create_project(
        owner, title=title, format=format, brief="Real fruit, no sugar.", actor="user"
    )
    return project.id


def an_asset(kind: str, content_type: str, at: datetime = T0) -> dict[str, Any]:
    return {
        "id": f"{kind}-{uuid4().hex}",
        "kind": kind,
        "content_type": content_type,
        "size": 1234,
        "created_at": at.isoformat(),
    }


def a_generation(units: int = 1) -> dict[str, Any]:
    return {
        "provider": "instant",
        "stage_version": "1",
        "units": units,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
        "attempts": 1,
    }


def version_of(studio: Studio, project_id: UUID) -> int:
    request = studio.project(project_id).request
    assert request is not None
    return int(request["version"])


def finish(
    studio: Studio, project_id: UUID, step: Step, result: dict[str, Any], units: int = 3
) -> None:
    assert studio.complete_step(
        project_id,
        step=step,
        version=version_of(studio, project_id),
        result=result,
        generation=a_generation(units),
        actor=f"stage:{step}",
    )


def a_script(title: str, idea: dict[str, Any] | None, idea_index: int | None) -> dict[str, Any]:
    text = f"{title}. Drink it cold, every day."
    return {
        "title": title,
        "text": text,
        "words": len(text.split()),
        "idea": idea,
        "idea_index": idea_index,
    }


def write_script(
    studio: Studio, owner: UUID, project_id: UUID, script: dict[str, Any], idea: int | None = None
) -> None:
    studio.request_script(owner, project_id, idea=idea, actor="user")
    finish(studio, project_id, Step.SCRIPT, {"script": script})


IDEAS = [{"angle": "question", "title": f"Idea {i}", "pitch": "Why not?"} for i in range(3)]


def with_ideas(studio: Studio, owner: UUID, project_id: UUID, units: int = 3) -> None:
    studio.request_ideas(owner, project_id, actor="user")
    finish(studio, project_id, Step.IDEAS, {"ideas": IDEAS}, units)


def to_completed(studio: Studio, owner: UUID, project_id: UUID) -> list[dict[str, Any]]:
    """Run the whole pipeline; the clip, voiceover, final video and thumbnail records."""
    write_script(studio, owner, project_id, a_script("Go", None, None))
    studio.request_scenes(owner, project_id, actor="user")
    scenes = [{"index": i, "duration_s": s} for i, s in enumerate(SCENES)]
    finish(studio, project_id, Step.SCENES, {"scenes": scenes})
    studio.request_render(owner, project_id, actor="user")
    version = version_of(studio, project_id)
    clips = [an_asset("clip", "video/mp4") for _ in SCENES]
    for scene, clip in enumerate(clips):
        studio.record_clip(project_id, version=version, scene=scene, asset=clip, actor="stage")
    finish(studio, project_id, Step.VIDEO, {"duration_s": float(sum(SCENES))})
    voiceover = an_asset("voiceover", "audio/wav")
    finish(studio, project_id, Step.VOICEOVER, {"asset": voiceover})
    video, thumbnail = an_asset("final_video", "video/mp4"), an_asset("thumbnail", "image/jpeg")
    finish(studio, project_id, Step.STITCHING, {"video": video, "thumbnail": thumbnail})
    return [*clips, voiceover, video, thumbnail]


def caught_up(models: ReadModels, limit: int = 500) -> ReadModels:
    while models.catch_up(limit):
        pass
    return models


def events_of(studio: Studio, aggregate_id: UUID, kind: type[Any]) -> list[Any]:
    return [e for e in studio.repository.event_store.get(aggregate_id) if isinstance(e, kind)]


# ---- My Scripts -------------------------------------------------------------------------------


def test_my_scripts_lists_every_script_newest_first_regenerations_included(
    studio: Studio, models: ReadModels
) -> None:
    ada, bob = an_owner(studio, "ada"), an_owner(studio, "bob")
    water = a_project(studio, ada, "Sparkling water")
    with_ideas(studio, ada, water)
    write_script(studio, ada, water, a_script("First take", IDEAS[1], 1), idea=1)
    write_script(studio, ada, water, a_script("Second take", IDEAS[2], 2), idea=2)
    tea = a_project(studio, ada, "Iced tea", format="16:9")
    write_script(studio, ada, tea, a_script("Tea time", None, None))
    bobs = a_project(studio, bob, "Bob's bikes")
    write_script(studio, bob, bobs, a_script("Ride on", None, None))

    caught_up(models)

    def expected(project_id: UUID, title: str, format: str) -> list[dict[str, Any]]:
        return [
            {
                "id": f"{project_id}:{e.originator_version}",
                "project_id": str(project_id),
                "project_title": title,
                "format": format,
                "title": e.script["title"],
                "text": e.script["text"],
                "words": e.script["words"],
                "idea": e.script["idea"],
                "created_at": utc_iso(e.timestamp),
            }
            for e in reversed(events_of(studio, project_id, Project.ScriptGenerated))
        ]

    scripts = models.scripts.scripts_of(ada)
    assert scripts == [
        *expected(tea, "Iced tea", "16:9"),
        *expected(water, "Sparkling water", "9:16"),
    ]
    assert [s["title"] for s in scripts] == ["Tea time", "Second take", "First take"]
    assert scripts[1]["idea"] == IDEAS[2] and scripts[0]["idea"] is None
    assert all(set(s) == SCRIPT_KEYS for s in scripts)
    assert len({s["id"] for s in scripts}) == 3
    assert [s["title"] for s in models.scripts.scripts_of(bob)] == ["Ride on"]
    assert models.scripts.scripts_of(uuid4()) == []


def test_a_script_without_a_word_count_or_an_idea_dict_is_still_listed(
    studio: Studio, models: ReadModels
) -> None:
    ada = an_owner(studio, "ada")
    project = a_project(studio, ada, "Bare")
    write_script(studio, ada, project, {"text": "Just buy it now.", "idea": 0})

    [script] = caught_up(models).scripts.scripts_of(ada)

    assert (script["title"], script["words"], script["idea"]) == (None, 4, None)


# ---- My Images and assets -----------------------------------------------------------------------


def test_my_images_lists_the_owners_generated_images_newest_first(
    studio: Studio, models: ReadModels
) -> None:
    ada, bob = an_owner(studio, "ada"), an_owner(studio, "bob")
    water = a_project(studio, ada, "Sparkling water")
    shot = an_asset("product_shot", "image/png", T0)
    banner = an_asset("banner", "image/png", T0 + timedelta(minutes=2))
    studio.add_assets(water, assets=[shot, banner], actor="stage:images")
    media = to_completed(studio, ada, water)
    tea = a_project(studio, ada, "Iced tea")
    flyer = an_asset("flyer", "image/jpeg", T0 + timedelta(minutes=1))
    # A time in another zone is shown in UTC.
    still = {**an_asset("scene_still", "image/png"), "created_at": "2025-01-01T14:03:00+02:00"}
    studio.add_assets(tea, assets=[flyer, still], actor="stage:images")
    bikes = a_project(studio, bob, "Bob's bikes")
    studio.add_assets(bikes, assets=[an_asset("flyer", "image/png")], actor="stage:images")

    caught_up(models)

    images = models.images.images_of(ada)
    assert images == [
        {
            "id": asset["id"],
            "project_id": str(project),
            "kind": asset["kind"],
            "url": f"/api/assets/{asset['id']}",
            "created_at": shown,
        }
        for asset, project, shown in (
            (still, tea, "2025-01-01T12:03:00Z"),
            (banner, water, "2025-01-01T12:02:00Z"),
            (flyer, tea, "2025-01-01T12:01:00Z"),
            (shot, water, "2025-01-01T12:00:00Z"),
        )
    ]
    assert all(set(image) == IMAGE_KEYS for image in images)
    assert not {m["id"] for m in media} & {i["id"] for i in images}
    assert [i["project_id"] for i in models.images.images_of(bob)] == [str(bikes)]
    assert models.images.images_of(uuid4()) == []


def test_every_asset_kind_is_served_to_its_owner_only(studio: Studio, models: ReadModels) -> None:
    ada, bob = an_owner(studio, "ada"), an_owner(studio, "bob")
    water = a_project(studio, ada, "Sparkling water")
    shot = an_asset("product_shot", "image/png")
    studio.add_assets(water, assets=[shot], actor="stage:images")
    assets = [shot, *to_completed(studio, ada, water)]
    caught_up(models)

    for asset in assets:
        expected = {
            "id": asset["id"],
            "project_id": str(water),
            "owner_id": str(ada),
            "kind": asset["kind"],
            "content_type": asset["content_type"],
            "url": f"/api/assets/{asset['id']}",
            "created_at": "2025-01-01T12:00:00Z",
            "deleted": False,
        }
        assert models.images.asset_for(ada, asset["id"]) == expected
        assert models.images.asset_for(str(ada), asset["id"]) == expected
        assert models.images.asset(asset["id"]) == expected
        assert models.images.asset_for(bob, asset["id"]) is None
        assert models.images.asset_owners(asset["id"]) == {(str(ada), str(water), False)}
    kinds = {"product_shot", "clip", "voiceover", "final_video", "thumbnail"}
    assert {a["kind"] for a in assets} == kinds
    assert models.images.asset_for(ada, "no-such-asset") is None
    assert models.images.asset("no-such-asset") is None
    assert models.images.asset_owners("no-such-asset") == set()


def test_an_asset_two_projects_hold_belongs_to_both_owners(
    studio: Studio, models: ReadModels
) -> None:
    ada, bob = an_owner(studio, "ada"), an_owner(studio, "bob")
    water, bikes = a_project(studio, ada, "Water"), a_project(studio, bob, "Bikes")
    # Assets are named by content hash: the same bytes make the same asset.
    shared = an_asset("banner", "image/png")
    studio.add_assets(water, assets=[shared], actor="stage:images")
    studio.add_assets(bikes, assets=[shared], actor="stage:images")
    studio.delete_project(ada, water, actor="user:ada")

    caught_up(models)

    assert models.images.asset_owners(shared["id"]) == {
        (str(ada), str(water), True),
        (str(bob), str(bikes), False),
    }
    assert models.images.asset_for(ada, shared["id"]) is None
    found = models.images.asset_for(bob, shared["id"])
    assert found is not None and found["project_id"] == str(bikes)
    assert [i["project_id"] for i in models.images.images_of(bob)] == [str(bikes)]
    assert models.images.images_of(ada) == []


def test_a_deleted_project_hides_its_scripts_images_and_assets_until_restored(
    studio: Studio, models: ReadModels
) -> None:
    ada = an_owner(studio, "ada")
    gone = a_project(studio, ada, "Gone")
    studio.add_assets(gone, assets=[an_asset("flyer", "image/png")], actor="stage:images")
    media = to_completed(studio, ada, gone)
    kept = a_project(studio, ada, "Kept")
    write_script(studio, ada, kept, a_script("Stay", None, None))
    studio.add_assets(kept, assets=[an_asset("scene_still", "image/png")], actor="stage:images")
    caught_up(models)
    scripts, images = models.scripts.scripts_of(ada), models.images.images_of(ada)
    assert {s["project_id"] for s in scripts} == {i["project_id"] for i in images}
    assert {s["project_id"] for s in scripts} == {str(gone), str(kept)}

    studio.delete_project(ada, gone, actor="user:ada")
    caught_up(models)

    assert {s["project_id"] for s in models.scripts.scripts_of(ada)} == {str(kept)}
    assert {i["project_id"] for i in models.images.images_of(ada)} == {str(kept)}
    for asset in media:
        assert models.images.asset_for(ada, asset["id"]) is None
        audited = models.images.asset(asset["id"])
        assert audited is not None and audited["deleted"] and audited["owner_id"] == str(ada)
        assert models.images.asset_owners(asset["id"]) == {(str(ada), str(gone), True)}

    studio.restore_project(gone, actor="support")
    caught_up(models)

    assert models.scripts.scripts_of(ada) == scripts
    assert models.images.images_of(ada) == images
    assert all(models.images.asset_for(ada, asset["id"]) is not None for asset in media)


def test_a_project_deleted_in_the_batch_that_created_it_lists_nothing(
    studio: Studio, models: ReadModels
) -> None:
    ada = an_owner(studio, "ada")
    project = a_project(studio, ada, "Brief life")
    write_script(studio, ada, project, a_script("Gone soon", None, None))
    studio.add_assets(project, assets=[an_asset("banner", "image/png")], actor="stage:images")
    studio.delete_project(ada, project, actor="user:ada")

    assert models.catch_up() > 0 and models.catch_up() == 0

    assert models.scripts.scripts_of(ada) == []
    assert models.images.images_of(ada) == []


# ---- credits -----------------------------------------------------------------------------------

DELTAS = {"grant": (1, 0), "reserve": (-1, 1), "charge": (0, -1), "release": (1, -1)}


def a_credit_history(studio: Studio) -> dict[str, UUID]:
    """Ada: a completed project, a failed one, and one deleted while its script was being written
    (cancelled: its reservation released). Bob: one writing its script (a reservation held)."""
    ada, bob = an_owner(studio, "ada", credits=1_000), an_owner(studio, "bob", credits=50)
    done = a_project(studio, ada, "Done")
    to_completed(studio, ada, done)
    failed = a_project(studio, ada, "Failed")
    studio.request_ideas(ada, failed, actor="user")
    assert studio.fail_step(
        failed,
        step=Step.IDEAS,
        version=version_of(studio, failed),
        code=FailureCode.PROVIDER_UNAVAILABLE,
        error="provider timed out",
        generation=a_generation(0),
        actor="stage:ideas",
    )
    gone = a_project(studio, ada, "Gone")
    with_ideas(studio, ada, gone, units=2)  # charged 2 of the 3 reserved, 1 released
    studio.request_script(ada, gone, actor="user")
    studio.delete_project(ada, gone, actor="user:ada")
    studio.grant_credits("ada", 25)
    bobs = a_project(studio, bob, "Bob's")
    with_ideas(studio, bob, bobs)
    studio.request_script(bob, bobs, actor="user")
    return {"ada": ada, "bob": bob, "done": done, "failed": failed, "gone": gone, "bobs": bobs}


def test_the_credit_statement_runs_to_the_accounts_balance_deleted_projects_included(
    studio: Studio, models: ReadModels
) -> None:
    ids = a_credit_history(studio)
    caught_up(models)

    for name in ("ada", "bob"):
        account = studio.account(ids[name])
        statement = models.credits.statement(account.id)
        history = statement["history"]
        movements: list[Any] = [
            e
            for e in studio.repository.event_store.get(account.id)
            if not isinstance(e, Account.AccountOpened)
        ]
        assert len(history) == len(movements)
        assert [m["at"] for m in history] == [utc_iso(e.timestamp) for e in movements]
        assert [m["amount"] for m in history] == [e.amount for e in movements]
        balance = reserved = 0
        for movement in history:
            to_balance, to_reserved = DELTAS[movement["kind"]]
            balance += to_balance * movement["amount"]
            reserved += to_reserved * movement["amount"]
            assert (movement["balance"], movement["reserved"]) == (balance, reserved)
            granted = movement["kind"] == "grant"
            assert (movement["project_id"] is None) == granted == (movement["step"] is None)
        assert (statement["balance"], statement["reserved"]) == (account.balance, account.reserved)
        assert (balance, reserved) == (account.balance, account.reserved)

    ada = models.credits.statement(ids["ada"])
    first, *_, last = ada["history"]
    # Each line carries the chain head of the event it came from.
    heads = {s.id: unseal(s.state)[0] for s in stored_history(studio, ids["ada"])}  # type: ignore[index]
    assert [m["head"] for m in ada["history"]] == [heads[m["position"]] for m in ada["history"]]
    assert first == {
        "position": first["position"],
        "at": first["at"],
        "kind": "grant",
        "project_id": None,
        "project_title": None,
        "project_deleted": None,
        "step": None,
        "amount": 1_000,
        "balance": 1_000,
        "reserved": 0,
        "head": heads[first["position"]],
    }
    positions = [m["position"] for m in ada["history"]]
    assert positions == sorted(set(positions))
    assert (last["kind"], last["amount"]) == ("grant", 25)
    gone = [m for m in ada["history"] if m["project_id"] == str(ids["gone"])]
    assert {m["kind"] for m in gone} == {"reserve", "charge", "release"}
    assert {(m["project_title"], m["project_deleted"]) for m in gone} == {("Gone", True)}
    done = [m for m in ada["history"] if m["project_id"] == str(ids["done"])]
    assert {(m["project_title"], m["project_deleted"]) for m in done} == {("Done", False)}
    assert ada["reserved"] == 0  # the delete cancelled the script and released its credits
    assert models.credits.statement(ids["bob"])["reserved"] > 0  # Bob's script is being written
    assert {m["kind"] for m in ada["history"]} == set(DELTAS)
    assert models.credits.statement(uuid4()) == {"balance": 0, "reserved": 0, "history": []}


def test_each_projects_ledger_matches_the_aggregates_and_is_consistent(
    studio: Studio, models: ReadModels
) -> None:
    ids = a_credit_history(studio)
    caught_up(models)

    for name in ("done", "failed", "gone", "bobs"):
        project = studio.project(ids[name])
        expected = project.reconciliation()
        assert models.credits.project_ledger(project.id) == {
            "reserved": expected.reserved,
            "charged": expected.charged,
            "released": expected.released,
            "still_reserved": expected.still_reserved,
            "consistent": True,
        }
    gone = models.credits.project_ledger(ids["gone"])
    assert gone is not None and gone["still_reserved"] == 0  # cancelled by its delete
    bobs = models.credits.project_ledger(ids["bobs"])
    assert bobs is not None and bobs["still_reserved"] > 0
    fresh = a_project(studio, ids["ada"], "Fresh")
    caught_up(models)
    assert models.credits.project_ledger(fresh) == {
        "reserved": 0,
        "charged": 0,
        "released": 0,
        "still_reserved": 0,
        "consistent": True,
    }
    assert models.credits.project_ledger(uuid4()) is None


# ---- rebuild ------------------------------------------------------------------------------------

TABLES = {
    "aytada_scripts": "id",
    "aytada_script_projects": "project_id",
    "aytada_assets": "id, project_id",
    "aytada_asset_projects": "project_id",
    "aytada_credit_movements": "position",
    "aytada_credit_balances": "account_id",
    "aytada_credit_ledgers": "project_id",
}


def every_row(models: ReadModels) -> dict[str, list[dict[str, Any]]]:
    return {
        name: models.store.query(f"SELECT * FROM {{{name}}} ORDER BY {key}")
        for name, key in TABLES.items()
    }


def answers(models: ReadModels, ids: dict[str, UUID]) -> list[Any]:
    return [
        *(models.scripts.scripts_of(ids[n]) for n in ("ada", "bob")),
        *(models.images.images_of(ids[n]) for n in ("ada", "bob")),
        *(models.credits.statement(ids[n]) for n in ("ada", "bob")),
        *(models.credits.project_ledger(ids[n]) for n in ("done", "failed", "gone", "bobs")),
    ]


def test_rebuild_gives_the_same_rows_as_small_live_batches(
    studio: Studio, models: ReadModels
) -> None:
    ids = a_credit_history(studio)
    studio.add_assets(ids["bobs"], assets=[an_asset("banner", "image/png")], actor="stage")
    studio.restore_project(ids["gone"], actor="support")
    caught_up(models, limit=7)
    live = every_row(models), answers(models, ids)
    assert all(live[0].values())

    models.rebuild()

    assert (every_row(models), answers(models, ids)) == live
    last = studio.recorder.max_notification_id()
    positions = models.positions()
    assert (positions["scripts"], positions["images"], positions["credits"]) == (last,) * 3


def test_a_rename_reaches_every_read_model_in_any_batch_and_rebuilds_the_same(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio, "rena")
    first = a_project(studio, owner, "First title")
    with_ideas(studio, owner, first)
    write_script(studio, owner, first, a_script("One", None, None))
    caught_up(models)  # a script listed under the old title, in an earlier batch
    studio.rename_project(owner, first, title="Second title", actor="user")
    write_script(studio, owner, first, a_script("Two", None, None))
    born = a_project(studio, owner, "Born")  # created, renamed and deleted in one batch
    studio.rename_project(owner, born, title="Born renamed", actor="user")
    studio.delete_project(owner, born, actor="user")
    caught_up(models)

    scripts = models.scripts.scripts_of(owner)
    assert [s["title"] for s in scripts] == ["Two", "One"]
    assert {s["project_title"] for s in scripts} == {"Second title"}
    assert [c["title"] for c in models.videos.videos_of(owner)[1]] == ["Second title"]
    assert models.videos.title_of(born) == "Born renamed"  # deleted, still named (downloads)
    deleted = [d for d in models.deleted.deleted_projects() if d["project_id"] == str(born)]
    assert [d["title"] for d in deleted] == ["Born renamed"]
    titles = {
        m["project_id"]: m["project_title"]
        for m in models.credits.statement(owner)["history"]
        if m["project_id"]
    }
    assert titles == {str(first): "Second title"}
    tables = {
        **TABLES,
        "aytada_credit_projects": "project_id",
        "aytada_videos": "id",
        "aytada_project_deletions": "project_id",
    }

    def rows() -> dict[str, list[dict[str, Any]]]:
        return {
            name: models.store.query(f"SELECT * FROM {{{name}}} ORDER BY {key}")
            for name, key in tables.items()
        }

    live = rows()
    models.rebuild()
    assert rows() == live
