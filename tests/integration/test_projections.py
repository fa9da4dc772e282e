"""The read models, on SQLite and PostgreSQL: My Videos cards and their change feed, the soft-delete
view and the accounts, each event applied exactly once, position and rows in one transaction."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

import pytest

from aytada_es.adapters.sql import SQLStore, Transaction
from aytada_es.application import Studio, hash_token
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Step
from aytada_es.projections import (
    Accounts,
    CardChange,
    MyVideos,
    Projection,
    ReadModelRunner,
    ReadModels,
    project_card,
    read_models,
)
from aytada_es.projections.base import DomainEvent

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SCENES = (3, 4, 5)
CARD_KEYS = {
    "id",
    "title",
    "format",
    "created_at",
    "updated_at",
    "status",
    "progress",
    "action",
    "thumbnail_url",
    "paused",  # an addition of release 2 (the autopilot pause)
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


@pytest.fixture
def models(studio: Studio) -> ReadModels:
    return read_models(studio)


# ---- driving the domain ---------------------------------------------------------------------


def an_owner(studio: Studio, name: str = "ada") -> UUID:
    account, _ = studio.open_account(name, credits=10_000)
    return account.id


def a_project(studio: Studio, owner: UUID, title: str = "Sparkling water") -> UUID:
    project = studio.create_project(
        owner, title=title, format="9:16", brief="Real fruit, no sugar.", actor="user"
    )
    return project.id


def a_result(step: Step, project_id: UUID) -> dict[str, Any]:
    asset = {"kind": "x", "url": "/x", "content_type": "x", "created_at": T0.isoformat()}
    results: dict[Step, dict[str, Any]] = {
        Step.IDEAS: {"ideas": [{"title": f"Idea {i}"} for i in range(3)]},
        Step.SCRIPT: {"script": {"text": "Drink it cold.", "idea": 0}},
        Step.SCENES: {"scenes": [{"index": i, "duration_s": s} for i, s in enumerate(SCENES)]},
        Step.VIDEO: {"duration_s": float(sum(SCENES))},
        Step.VOICEOVER: {"asset": {**asset, "id": f"vo-{project_id}"}},
        Step.STITCHING: {
            "video": {**asset, "id": f"final-{project_id}"},
            "thumbnail": {**asset, "id": f"thumb-{project_id}"},
        },
    }
    return results[step]


def a_generation(units: int = 3) -> dict[str, Any]:
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


def finish(studio: Studio, project_id: UUID, step: Step) -> None:
    assert studio.complete_step(
        project_id,
        step=step,
        version=version_of(studio, project_id),
        result=a_result(step, project_id),
        generation=a_generation(),
        actor=f"stage:{step}",
    )


def fail(studio: Studio, project_id: UUID, step: Step) -> None:
    assert studio.fail_step(
        project_id,
        step=step,
        version=version_of(studio, project_id),
        code=FailureCode.PROVIDER_UNAVAILABLE,
        error="provider timed out",
        generation=a_generation(0),
        actor=f"stage:{step}",
    )


def to_scenes_ready(studio: Studio, owner: UUID, project_id: UUID) -> None:
    studio.request_ideas(owner, project_id, actor="user")
    finish(studio, project_id, Step.IDEAS)
    studio.request_script(owner, project_id, actor="user")
    finish(studio, project_id, Step.SCRIPT)
    studio.request_scenes(owner, project_id, actor="user")
    finish(studio, project_id, Step.SCENES)


def render_clips(studio: Studio, project_id: UUID, scenes: Sequence[int]) -> None:
    version = version_of(studio, project_id)
    for scene in scenes:
        asset = {"id": f"clip-{scene}-{project_id}", "kind": "clip"}
        assert studio.record_clip(
            project_id, version=version, scene=scene, asset=asset, actor="stage:video"
        )


def to_completed(studio: Studio, owner: UUID, project_id: UUID) -> None:
    to_scenes_ready(studio, owner, project_id)
    studio.request_render(owner, project_id, actor="user")
    render_clips(studio, project_id, range(len(SCENES)))
    for step in (Step.VIDEO, Step.VOICEOVER, Step.STITCHING):
        finish(studio, project_id, step)


# ---- reading the store -------------------------------------------------------------------------


def table(models: ReadModels, name: str, key: str) -> list[dict[str, Any]]:
    return models.store.query(f"SELECT * FROM {{{name}}} ORDER BY {key}")


def every_table(models: ReadModels) -> dict[str, list[dict[str, Any]]]:
    return {
        "videos": table(models, "aytada_videos", "id"),
        "deletions": table(models, "aytada_project_deletions", "project_id"),
        "owners": table(models, "aytada_owner_names", "account_id"),
        "accounts": table(models, "aytada_accounts", "id"),
    }


def last_position(studio: Studio) -> int:
    return studio.recorder.max_notification_id() or 0


def latest_cards(models: ReadModels) -> dict[str, Any]:
    """Each listed project's card in its latest change-feed row."""
    rows = table(models, "aytada_video_changes", "position")
    latest = {row["project_id"]: row["card"] for row in rows}
    return {project_id: card for project_id, card in latest.items() if card is not None}


# ---- My Videos ----------------------------------------------------------------------------------


def test_cards_show_each_status_with_its_progress_action_and_times(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    draft = a_project(studio, owner, "Draft")
    ideas = a_project(studio, owner, "Generating ideas")
    studio.request_ideas(owner, ideas, actor="user")
    ready = a_project(studio, owner, "Ideas ready")
    studio.request_ideas(owner, ready, actor="user")
    finish(studio, ready, Step.IDEAS)
    failed = a_project(studio, owner, "Failed")
    studio.request_ideas(owner, failed, actor="user")
    fail(studio, failed, Step.IDEAS)
    retried = a_project(studio, owner, "Retried")
    studio.request_ideas(owner, retried, actor="user")
    fail(studio, retried, Step.IDEAS)
    studio.retry(owner, retried, actor="user")
    rendering = a_project(studio, owner, "Rendering")
    to_scenes_ready(studio, owner, rendering)
    studio.request_render(owner, rendering, actor="user")
    render_clips(studio, rendering, [0, 2])
    done = a_project(studio, owner, "Completed")
    to_completed(studio, owner, done)
    cancelled = a_project(studio, owner, "Cancelled")
    to_scenes_ready(studio, owner, cancelled)
    studio.request_render(owner, cancelled, actor="user")
    render_clips(studio, cancelled, [0])
    studio.cancel(owner, cancelled, actor="user")

    models.catch_up()
    position, cards = models.videos.videos_of(owner)

    assert position == last_position(studio)
    by_id = {c["id"]: c for c in cards}
    expected = {
        draft: ("draft", 0, "continue", None),
        ideas: ("generating_ideas", 5, None, None),
        ready: ("ideas_ready", 15, "continue", None),
        failed: ("failed", 5, "retry", None),
        retried: ("generating_ideas", 5, None, None),
        rendering: ("generating_video", 50 + 30 * 2 // 3, None, None),
        done: ("completed", 100, "view", f"/api/assets/thumb-{done}"),
        cancelled: ("failed", 50 + 30 * 1 // 3, "retry", None),
    }
    assert set(by_id) == {str(i) for i in expected}
    for project_id, (status, progress, action, thumbnail_url) in expected.items():
        card = by_id[str(project_id)]
        project = studio.project(project_id)
        assert set(card) == CARD_KEYS
        assert (card["status"], card["progress"], card["action"], card["thumbnail_url"]) == (
            status,
            progress,
            action,
            thumbnail_url,
        )
        assert card["title"] == project.title
        assert card["format"] == "9:16"
        assert card["created_at"] == project.created_on.isoformat().replace("+00:00", "Z")
        assert card["updated_at"] == project.modified_on.isoformat().replace("+00:00", "Z")
        assert ISO_UTC.match(card["created_at"]) and ISO_UTC.match(card["updated_at"])
        assert card == project_card(project)


def test_cards_are_newest_first_and_only_the_owners(studio: Studio, models: ReadModels) -> None:
    ada, bob = an_owner(studio, "ada"), an_owner(studio, "bob")
    adas = [a_project(studio, ada, f"Ada {i}") for i in range(4)]
    bobs = [a_project(studio, bob, f"Bob {i}") for i in range(2)]
    studio.request_ideas(ada, adas[0], actor="user")  # a later update does not reorder

    models.catch_up()

    assert [c["id"] for c in models.videos.videos_of(ada)[1]] == [str(i) for i in adas[::-1]]
    assert [c["id"] for c in models.videos.videos_of(bob)[1]] == [str(i) for i in bobs[::-1]]
    assert models.videos.videos_of(an_owner(studio, "cy")) == (
        models.videos.position(),
        [],
    )


def test_a_card_shows_an_autopilot_pause_until_the_owner_goes_on_by_hand(
    studio: Studio, models: ReadModels
) -> None:
    account, _ = studio.open_account("short", credits=0)
    project = studio.create_project(
        account.id, title="Short", format="9:16", brief="", autopilot=True, actor="user"
    )
    models.catch_up()
    position, (card,) = models.videos.videos_of(account.id)
    needed = studio.project(project.id).estimate(Step.IDEAS)
    paused = {"step": "ideas", "needed": needed, "balance": 0}
    assert card["status"] == "draft" and card["paused"] == paused
    assert project_card(studio.project(project.id))["paused"] == paused  # the command's answer
    (change,) = models.videos.changes_after(account.id, 0)
    assert change.card is not None and change.card["paused"] == paused  # the live push's

    studio.grant_credits("short", 100, actor="test")
    studio.request_ideas(account.id, project.id, actor="user")  # by hand: the pause is history
    models.catch_up()
    (card,) = models.videos.videos_of(account.id)[1]
    assert card["status"] == "generating_ideas" and card["paused"] is None
    assert project_card(studio.project(project.id))["paused"] is None
    assert models.videos.position() > position


def test_a_deleted_project_leaves_the_list_and_returns_when_restored(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    kept, deleted = a_project(studio, owner, "Kept"), a_project(studio, owner, "Deleted")
    models.catch_up()
    studio.delete_project(owner, deleted, actor="user:ada")
    models.catch_up()

    assert [c["id"] for c in models.videos.videos_of(owner)[1]] == [str(kept)]
    project = studio.project(deleted)
    assert project.deleted_at is not None
    assert models.deleted.deleted_projects() == [
        {
            "project_id": str(deleted),
            "owner_id": str(owner),
            "owner_name": "ada",
            "title": "Deleted",
            "deleted_at": project.deleted_at.isoformat().replace("+00:00", "Z"),
            "deleted_by": "user:ada",
            "position": last_position(studio),
        }
    ]

    studio.restore_project(deleted, actor="support:sam")
    models.catch_up()

    assert [c["id"] for c in models.videos.videos_of(owner)[1]] == [str(deleted), str(kept)]
    assert models.deleted.deleted_projects() == []


def test_the_deleted_view_lists_the_latest_deletion_first(
    studio: Studio, models: ReadModels
) -> None:
    ada, bob = an_owner(studio, "ada"), an_owner(studio, "bob")
    first, second = a_project(studio, bob, "First"), a_project(studio, ada, "Second")
    studio.delete_project(bob, first, actor="user:bob")
    studio.delete_project(ada, second, actor="user:ada")
    models.catch_up()

    rows = models.deleted.deleted_projects()
    assert [(r["project_id"], r["owner_name"], r["deleted_by"]) for r in rows] == [
        (str(second), "ada", "user:ada"),
        (str(first), "bob", "user:bob"),
    ]


# ---- the change feed ----------------------------------------------------------------------------


def test_each_batch_writes_one_change_per_project_at_its_last_event(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    pushed: list[CardChange] = []
    models.listen(pushed.extend)
    first, second = a_project(studio, owner, "First"), a_project(studio, owner, "Second")
    studio.request_ideas(owner, first, actor="user")
    models.catch_up()
    finish(studio, first, Step.IDEAS)
    studio.delete_project(owner, second, actor="user")
    models.catch_up()

    changes = models.videos.changes_after(owner, 0)
    assert pushed == changes
    assert [(c.project_id, c.kind) for c in changes] == [
        (str(second), "update"),
        (str(first), "update"),
        (str(first), "update"),
        (str(second), "removed"),
    ]
    positions = [c.position for c in changes]
    assert positions == sorted(set(positions))
    assert changes[-1].position == last_position(studio)
    assert changes[-1].card is None
    assert changes[-1].message() == {
        "type": "removed",
        "position": positions[-1],
        "id": str(second),
    }
    assert changes[2].card == models.videos.videos_of(owner)[1][0]
    assert changes[2].message() == {
        "type": "update",
        "position": positions[2],
        "video": changes[2].card,
    }
    assert models.videos.changes_after(owner, positions[1]) == changes[2:]
    assert models.videos.oldest_change_position() == positions[0]


def test_a_project_deleted_and_restored_in_one_batch_is_one_update(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    project = a_project(studio, owner)
    unseen = a_project(studio, owner, "Created and deleted in one batch")
    studio.delete_project(owner, unseen, actor="user")
    models.catch_up()
    studio.delete_project(owner, project, actor="user")
    studio.restore_project(project, actor="support")
    models.catch_up()

    changes = models.videos.changes_after(owner, 0)
    assert [(c.project_id, c.kind) for c in changes] == [
        (str(project), "update"),
        (str(project), "update"),
    ]
    assert changes[-1].position == last_position(studio)


def test_small_batches_give_one_change_per_project_per_batch(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    project = a_project(studio, owner)
    to_scenes_ready(studio, owner, project)
    project_events = [
        n.id for n in studio.recorder.select_notifications(1, 1000) if n.originator_id == project
    ]

    ends = [0]
    while models.catch_up(limit=4):
        ends.append(models.videos.position())

    changes = models.videos.changes_after(owner, 0)
    expected = [
        max((p for p in project_events if a < p <= b), default=0) for a, b in pairwise(ends)
    ]
    assert ends[-1] == last_position(studio)
    assert [c.position for c in changes] == [p for p in expected if p]
    assert changes[-1].card == project_card(studio.project(project))


# ---- exactly once -------------------------------------------------------------------------------


class Journal(Projection):
    """A test read model: one row per event, so applying one twice cannot go unnoticed."""

    name = "journal"
    tables = ("test_journal",)
    ddl = ("CREATE TABLE IF NOT EXISTS {test_journal} (position BIGINT PRIMARY KEY, type TEXT)",)
    fail_at: int | None = None

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        tx.execute(
            "INSERT INTO {test_journal} (position, type) VALUES (?, ?)",
            (position, type(event).__name__),
        )
        if position == self.fail_at:
            raise RuntimeError("the projection crashed")
        return ()


class Clock:
    """A clock the test moves: back-off waits pass when it says so."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def passes(self, seconds: float) -> None:
        self.now += seconds


def test_a_crash_mid_batch_keeps_the_events_before_it_and_each_event_applies_once(
    studio: Studio,
) -> None:
    store = SQLStore.of(studio)
    videos, accounts, journal = MyVideos(store), Accounts(store), Journal(store)
    clock = Clock()
    runner = ReadModelRunner(studio, [journal, videos, accounts], store, clock=clock)
    owner = an_owner(studio)
    for i in range(3):
        studio.request_ideas(owner, a_project(studio, owner, f"Ad {i}"), actor="user")
    last = last_position(studio)
    journal.fail_at = last - 3

    assert runner.catch_up() == last  # it does not raise: the journal is stopped, alone

    # Its failing event left no row; those before it were applied one at a time.
    rows = store.query("SELECT * FROM {test_journal} ORDER BY position")
    assert [r["position"] for r in rows] == list(range(1, last - 3))
    assert journal.position() == last - 4
    (stopped,) = [s.stopped for s in runner.statuses() if s.stopped is not None]
    assert (stopped.name, stopped.position, stopped.attempts) == ("journal", last - 3, 1)
    assert stopped.error == "RuntimeError: the projection crashed"
    # The others, each in its own savepoint, went on.
    assert videos.position() == accounts.position() == last

    journal.fail_at = None
    assert runner.catch_up() == 0  # it waits out its back-off
    clock.passes(stopped.next_retry - clock.now)
    assert runner.catch_up() == 4
    assert runner.catch_up() == 0

    rows = store.query("SELECT * FROM {test_journal} ORDER BY position")
    assert [r["position"] for r in rows] == list(range(1, last + 1))
    assert [r["type"] for r in rows] == [
        type(studio.mapper.to_domain_event(n)).__name__
        for n in studio.recorder.select_notifications(1, last)
    ]
    assert runner.positions() == {"journal": last, "videos": last, "accounts": last}
    assert all(s.stopped is None for s in runner.statuses())
    account = studio.account(owner)
    view = accounts.account(owner)
    assert view is not None
    assert (view["balance"], view["reserved"]) == (account.balance, account.reserved)


def test_a_crash_rolls_back_the_cards_of_its_event_too(studio: Studio, models: ReadModels) -> None:
    clock = Clock()
    models.clock = clock
    owner = an_owner(studio)
    project = a_project(studio, owner)
    models.catch_up()
    pushed: list[CardChange] = []
    models.listen(pushed.extend)
    studio.request_ideas(owner, project, actor="user")
    original = models.videos.apply

    def crashing(tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        changes = original(tx, position, event)
        if isinstance(event, Project.CreditsReserved):
            raise RuntimeError("the projection crashed")
        return changes

    models.videos.apply = crashing  # type: ignore[method-assign]
    models.catch_up()
    stopped = next(s.stopped for s in models.statuses() if s.stopped is not None)
    assert stopped.name == "videos"
    reserved = [
        n.id
        for n in studio.recorder.select_notifications(1, last_position(studio))
        if isinstance(studio.mapper.to_domain_event(n), Project.CreditsReserved)
    ]
    assert stopped.position == reserved[0]
    assert models.videos.position() < stopped.position
    assert all(c.position < stopped.position for c in pushed)
    feed = table(models, "aytada_video_changes", "position")
    assert all(row["position"] < stopped.position for row in feed)

    del models.videos.apply
    clock.passes(60)
    models.catch_up()
    assert models.videos.videos_of(owner)[1] == [project_card(studio.project(project))]
    assert pushed[-1].card == project_card(studio.project(project))


def test_two_runners_on_one_database_apply_each_batch_once(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    project = a_project(studio, owner)
    other = read_models(studio)
    stale = other._tracked()
    studio.request_ideas(owner, project, actor="user")

    assert models.catch_up() > 0
    other._tracked = lambda: stale  # type: ignore[method-assign]
    other.catch_up()  # its view of the positions is old: it must find them moved and skip
    assert all(s.stopped is None for s in other.statuses())  # overtaken is not a failure

    account = studio.account(owner)
    view = models.accounts.account(owner)
    assert view is not None
    assert (view["balance"], view["reserved"]) == (account.balance, account.reserved)
    assert len(models.videos.changes_after(owner, 0)) == 1


def test_catch_up_with_nothing_new_changes_nothing(studio: Studio, models: ReadModels) -> None:
    owner = an_owner(studio)
    a_project(studio, owner)
    pushed: list[CardChange] = []
    models.listen(pushed.extend)
    assert models.catch_up() == last_position(studio)
    before = every_table(models), models.positions(), len(pushed)

    assert models.catch_up() == 0
    assert models.catch_up() == 0
    assert (every_table(models), models.positions(), len(pushed)) == before


# ---- rebuild ------------------------------------------------------------------------------------


def a_busy_history(studio: Studio) -> None:
    ada, bob = an_owner(studio, "ada"), an_owner(studio, "bob")
    done = a_project(studio, ada, "Done")
    to_completed(studio, ada, done)
    failed = a_project(studio, bob, "Failed")
    studio.request_ideas(bob, failed, actor="user")
    fail(studio, failed, Step.IDEAS)
    gone = a_project(studio, bob, "Gone")
    studio.delete_project(bob, gone, actor="user:bob")
    back = a_project(studio, ada, "Back")
    studio.delete_project(ada, back, actor="user:ada")
    studio.restore_project(back, actor="support")
    studio.grant_credits("bob", 25)


def test_rebuild_gives_the_same_rows_as_the_live_run(studio: Studio, models: ReadModels) -> None:
    a_busy_history(studio)
    while models.catch_up(limit=7):
        pass
    live = every_table(models), latest_cards(models)
    reports: list[tuple[int, int]] = []

    replayed = models.rebuild(lambda done, total: reports.append((done, total)))

    last = last_position(studio)
    assert replayed == last
    assert (every_table(models), latest_cards(models)) == live
    assert reports[0] == (0, last) and reports[-1] == (last, last)
    assert models.positions() == {p.name: last for p in models.projections}


# ---- accounts -----------------------------------------------------------------------------------


def test_accounts_are_found_by_token_hash_with_their_credits(
    studio: Studio, models: ReadModels
) -> None:
    account, token = studio.open_account("ada", role="support", credits=500)
    project = a_project(studio, account.id)
    studio.request_ideas(account.id, project, actor="user")
    finish(studio, project, Step.IDEAS)
    models.catch_up()

    found = models.accounts.account_by_token_hash(hash_token(token))
    now = studio.account(account.id)
    assert found == {
        "id": str(account.id),
        "name": "ada",
        "role": "support",
        "token_hash": hash_token(token),
        "token_expires_at": None,
        "disabled": False,
        "balance": now.balance,
        "reserved": now.reserved,
        "position": last_position(studio),
    }
    assert now.balance < 500
    assert models.accounts.account_by_token_hash(hash_token("not a token")) is None


def test_accounts_follow_rotated_tokens_expiries_and_disabling(
    studio: Studio, models: ReadModels
) -> None:
    account, old = studio.open_account("ada", expires_in_days=2)
    models.catch_up()
    opened = models.accounts.account(account.id)
    assert opened is not None and opened["token_expires_at"] is not None
    expected = (datetime.now(UTC) + timedelta(days=2)).timestamp()
    assert abs(opened["token_expires_at"] - expected) < 60
    seen = opened["position"]

    disabled_at = studio.disable_account("ada")
    assert disabled_at == last_position(studio)
    assert studio.disable_account("ada") is None  # disabled already: nothing stored
    models.catch_up()
    disabled = models.accounts.account(account.id)
    assert disabled is not None and disabled["disabled"]
    assert disabled["token_hash"] == hash_token(old)
    assert [a["id"] for a in models.accounts.changed_after(seen)] == [str(account.id)]

    new = studio.rotate_token("ada")
    assert new.position == last_position(studio)
    models.catch_up()
    rotated = models.accounts.account(account.id)
    assert rotated is not None
    assert (rotated["token_hash"], rotated["disabled"]) == (hash_token(new.token), False)
    assert rotated["token_expires_at"] is None  # a rotation without an expiry never expires
    assert models.accounts.account_by_token_hash(hash_token(old)) is None
    assert models.accounts.changed_after(rotated["position"]) == []


# ---- the loop -----------------------------------------------------------------------------------


async def test_the_loop_keeps_the_cards_up_to_date_until_stopped(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    stop = asyncio.Event()
    task = asyncio.create_task(models.run(stop, poll_interval_s=0.01))
    try:
        project = await asyncio.to_thread(a_project, studio, owner)
        for _ in range(500):
            if models.videos.videos_of(owner)[1]:
                break
            await asyncio.sleep(0.01)
        assert models.videos.videos_of(owner)[1] == [project_card(studio.project(project))]
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
