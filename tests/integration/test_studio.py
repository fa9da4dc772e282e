"""The Studio application over a real event store: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from aytada_es.application import Studio, hash_token
from aytada_es.config import Settings
from aytada_es.domain.errors import (
    AccountExists,
    AccountNotFound,
    BadInput,
    IllegalTransition,
    InsufficientCredits,
    ProjectNotFound,
)
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.status import Status
from aytada_es.domain.steps import SPECS, Step

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SCRIPT_TEXT = "Fresh coffee at your door before you wake up."
SCENE_SECONDS = (3, 4, 5)


def stored(studio: Studio) -> int:
    """How many events the store holds."""
    return studio.recorder.max_notification_id() or 0


def event_types(studio: Studio, project_id: UUID) -> list[str]:
    return [type(e).__name__ for e in studio.repository.event_store.get(project_id)]


def an_asset(kind: str, content_type: str) -> dict[str, Any]:
    return {
        "id": f"{kind}-{uuid4().hex[:8]}",
        "kind": kind,
        "url": f"/api/assets/{kind}",
        "content_type": content_type,
        "created_at": T0.isoformat(),
    }


def a_result(step: Step) -> dict[str, Any]:
    if step is Step.IDEAS:
        return {"ideas": [{"title": f"Idea {i}", "hook": "Wake up to it"} for i in range(3)]}
    if step is Step.SCRIPT:
        return {"script": {"text": SCRIPT_TEXT, "idea": 0}}
    if step is Step.SCENES:
        return {"scenes": [{"index": i, "duration_s": s} for i, s in enumerate(SCENE_SECONDS)]}
    if step is Step.VIDEO:
        return {"duration_s": float(sum(SCENE_SECONDS))}
    if step is Step.VOICEOVER:
        return {"asset": an_asset("voiceover", "audio/mpeg")}
    return {
        "video": an_asset("final_video", "video/mp4"),
        "thumbnail": an_asset("thumbnail", "image/jpeg"),
    }


UNITS = {
    Step.IDEAS: 3,
    Step.SCRIPT: 1,
    Step.SCENES: len(SCENE_SECONDS),
    Step.VIDEO: sum(SCENE_SECONDS),
    Step.VOICEOVER: len(SCRIPT_TEXT),
    Step.STITCHING: 1,
}


def a_generation(step: Step, attempts: int = 1) -> dict[str, Any]:
    return {
        "provider": "offline",
        "stage_version": "1",
        "units": UNITS[step],
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2),
        "attempts": attempts,
    }


def current(studio: Studio, project_id: UUID) -> tuple[Step, int]:
    """The step a project's stage is waiting on, and the version of its request."""
    request = studio.project(project_id).request
    assert request is not None
    return Step(request["step"]), request["version"]


def complete(studio: Studio, project_id: UUID) -> bool:
    """What a stage does when the current step succeeds."""
    step, version = current(studio, project_id)
    return studio.complete_step(
        project_id,
        step=step,
        version=version,
        result=a_result(step),
        generation=a_generation(step),
        actor="stage",
    )


def complete_at(studio: Studio, project_id: UUID, step: Step, version: int) -> bool:
    """What a stage does when the step it was working on succeeds, however late."""
    return studio.complete_step(
        project_id,
        step=step,
        version=version,
        result=a_result(step),
        generation=a_generation(step),
        actor="stage",
    )


def fail(studio: Studio, project_id: UUID) -> bool:
    step, version = current(studio, project_id)
    return studio.fail_step(
        project_id,
        step=step,
        version=version,
        code=FailureCode.PROVIDER_UNAVAILABLE,
        error="provider timed out",
        generation={**a_generation(step, attempts=3), "units": 0},
        actor="stage",
    )


def new_project(studio: Studio, owner_id: UUID, *, autopilot: bool = False) -> Project:
    return studio.create_project(
        owner_id,
        title="Morning Brew",
        format="9:16",
        brief="Coffee delivered at dawn",
        autopilot=autopilot,
        actor="alice",
    )


@pytest.fixture
def alice(studio: Studio) -> UUID:
    account, _ = studio.open_account("alice", credits=100)
    return account.id


# ---- accounts -------------------------------------------------------------------------


def test_an_account_is_opened_with_its_credits_and_only_a_hash_of_its_token(
    studio: Studio,
) -> None:
    opened, token = studio.open_account("bob", credits=25)

    account = studio.account_named("bob")
    assert account.id == opened.id
    assert (account.balance, account.reserved, account.role) == (25, 0, "user")
    assert account.token_hash == hash_token(token) != token


def test_opening_the_same_account_name_twice_raises_account_exists(studio: Studio) -> None:
    studio.open_account("bob", credits=10)
    before = stored(studio)

    with pytest.raises(AccountExists):
        studio.open_account("bob", credits=1000, role="support")

    assert stored(studio) == before
    assert studio.account_named("bob").balance == 10
    assert studio.account_named("bob").role == "user"


def test_an_unknown_account_is_not_found(studio: Studio) -> None:
    with pytest.raises(AccountNotFound):
        studio.account_named("nobody")
    with pytest.raises(AccountNotFound):
        new_project(studio, uuid4())
    assert stored(studio) == 0


# ---- projects -------------------------------------------------------------------------


def test_a_created_project_is_a_draft_that_its_owner_can_load(studio: Studio, alice: UUID) -> None:
    project = new_project(studio, alice)

    loaded = studio.project_of(alice, project.id)
    assert loaded.status is Status.DRAFT
    assert loaded.owner_id == alice
    assert loaded.title == "Morning Brew"
    assert event_types(studio, project.id) == ["ProjectCreated"]


@pytest.mark.parametrize(
    ("fields", "at_fault"),
    [
        ({"title": ""}, {"title"}),
        ({"title": "x" * 201}, {"title"}),
        ({"format": "3:2"}, {"format"}),
        ({"brief": "x" * 5001}, {"brief"}),
        ({"autopilot": "yes"}, {"autopilot"}),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_a_project_with_bad_fields_raises_bad_input_and_stores_nothing(
    studio: Studio, alice: UUID, fields: dict[str, Any], at_fault: set[str]
) -> None:
    before = stored(studio)
    good = {"title": "Morning Brew", "format": "9:16", "brief": "", "autopilot": False}

    with pytest.raises(BadInput) as refused:
        studio.create_project(alice, actor="alice", **{**good, **fields})

    assert set(refused.value.fields) == at_fault
    assert stored(studio) == before


def test_an_illegal_transition_raises_and_stores_nothing(studio: Studio, alice: UUID) -> None:
    project = new_project(studio, alice)
    before = stored(studio)

    for command in (studio.request_scenes, studio.request_render, studio.retry):
        with pytest.raises(IllegalTransition):
            command(alice, project.id, actor="alice")

    assert stored(studio) == before
    assert studio.project(project.id).status is Status.DRAFT
    assert studio.account(alice).balance == 100


def test_a_command_while_a_step_runs_raises_and_stores_nothing(studio: Studio, alice: UUID) -> None:
    project = new_project(studio, alice)
    studio.request_ideas(alice, project.id, count=2, actor="alice")
    before = stored(studio)

    with pytest.raises(IllegalTransition):
        studio.request_ideas(alice, project.id, count=2, actor="alice")
    with pytest.raises(IllegalTransition):
        studio.request_script(alice, project.id, actor="alice")

    assert stored(studio) == before
    assert studio.account(alice).reserved == 2


def test_an_unknown_project_is_not_found(studio: Studio, alice: UUID) -> None:
    missing = uuid4()

    with pytest.raises(ProjectNotFound):
        studio.project(missing)
    with pytest.raises(ProjectNotFound):
        studio.project_of(alice, missing)
    with pytest.raises(ProjectNotFound):
        studio.request_ideas(alice, missing, actor="alice")
    with pytest.raises(ProjectNotFound):
        studio.delete_project(alice, missing, actor="alice")


def test_an_account_id_is_not_a_project(studio: Studio, alice: UUID) -> None:
    with pytest.raises(ProjectNotFound):
        studio.project(alice)


def test_another_users_project_is_not_found_exactly_like_a_missing_one(
    studio: Studio, alice: UUID
) -> None:
    mallory, _ = studio.open_account("mallory", credits=100)
    project = new_project(studio, alice)
    before = stored(studio)

    with pytest.raises(ProjectNotFound) as foreign:
        studio.project_of(mallory.id, project.id)
    with pytest.raises(ProjectNotFound):
        studio.request_ideas(mallory.id, project.id, actor="mallory")
    with pytest.raises(ProjectNotFound):
        studio.delete_project(mallory.id, project.id, actor="mallory")
    with pytest.raises(ProjectNotFound) as missing:
        studio.project_of(mallory.id, uuid4())

    assert type(foreign.value) is type(missing.value)
    assert foreign.value.code == missing.value.code
    assert stored(studio) == before
    assert studio.account(mallory.id).balance == 100


# ---- credits --------------------------------------------------------------------------


def test_a_short_balance_raises_insufficient_credits_and_stores_nothing(studio: Studio) -> None:
    account, _ = studio.open_account("bob", credits=2)
    project = new_project(studio, account.id)
    before = stored(studio)

    with pytest.raises(InsufficientCredits) as refused:
        studio.request_ideas(account.id, project.id, count=3, actor="bob")

    assert (refused.value.needed, refused.value.balance) == (3, 2)
    assert stored(studio) == before
    assert studio.project(project.id).status is Status.DRAFT
    assert studio.project(project.id).reserved == 0
    assert (studio.account(account.id).balance, studio.account(account.id).reserved) == (2, 0)
    # what the balance does cover still goes ahead
    studio.request_ideas(account.id, project.id, count=2, actor="bob")
    assert studio.project(project.id).status is Status.GENERATING_IDEAS


def test_completing_a_step_twice_with_the_same_version_records_it_once_and_charges_once(
    studio: Studio, alice: UUID
) -> None:
    project = new_project(studio, alice)
    studio.request_ideas(alice, project.id, count=5, actor="alice")
    step, version = current(studio, project.id)

    def done() -> bool:
        return studio.complete_step(
            project.id,
            step=step,
            version=version,
            result=a_result(step),
            generation=a_generation(step),
            actor="stage",
        )

    assert done() is True
    after_first = stored(studio)
    assert done() is False
    assert stored(studio) == after_first
    assert (
        studio.fail_step(
            project.id,
            step=step,
            version=version,
            code=FailureCode.PROVIDER_UNAVAILABLE,
            error="late",
            generation=a_generation(step),
            actor="stage",
        )
        is False
    )
    assert stored(studio) == after_first

    loaded = studio.project(project.id)
    assert loaded.status is Status.IDEAS_READY
    assert event_types(studio, project.id).count("CreditsCharged") == 1
    assert event_types(studio, project.id).count("IdeasGenerated") == 1
    assert (loaded.reserved, loaded.charged, loaded.released) == (5, 3, 2)
    account = studio.account(alice)
    assert (account.balance, account.reserved) == (97, 0)


def test_a_clip_reported_for_a_finished_render_is_not_recorded(studio: Studio, alice: UUID) -> None:
    project = new_project(studio, alice)
    studio.request_script(alice, project.id, actor="alice")
    complete(studio, project.id)
    studio.request_scenes(alice, project.id, actor="alice")
    complete(studio, project.id)
    studio.request_render(alice, project.id, actor="alice")
    step, version = current(studio, project.id)
    assert step is Step.VIDEO

    clip = an_asset("clip", "video/mp4")
    assert studio.record_clip(project.id, version=version, scene=0, asset=clip, actor="stage")
    assert studio.project(project.id).progress > 50
    complete(studio, project.id)
    before = stored(studio)

    assert not studio.record_clip(project.id, version=version, scene=1, asset=clip, actor="stage")
    assert stored(studio) == before


def test_a_failed_step_is_retried_and_charged_once(studio: Studio, alice: UUID) -> None:
    project = new_project(studio, alice)
    studio.request_ideas(alice, project.id, actor="alice")
    assert fail(studio, project.id)

    failed = studio.project(project.id)
    assert failed.status is Status.FAILED
    assert failed.failure is not None
    assert (failed.failure["step"], failed.failure["attempts"]) == ("ideas", 3)
    assert studio.account(alice).balance == 100
    assert studio.account(alice).reserved == 0

    studio.retry(alice, project.id, actor="alice")
    assert studio.project(project.id).status is Status.GENERATING_IDEAS
    assert complete(studio, project.id)

    loaded = studio.project(project.id)
    assert loaded.status is Status.IDEAS_READY
    assert loaded.charged == 3
    assert loaded.reconciliation().consistent
    assert studio.account(alice).balance == 97


# ---- autopilot ------------------------------------------------------------------------


def test_an_autopilot_project_runs_to_completed_with_no_stop(studio: Studio, alice: UUID) -> None:
    project = new_project(studio, alice, autopilot=True)
    steps = []
    while (loaded := studio.project(project.id)).status is not Status.COMPLETED:
        assert loaded.status.is_active, f"autopilot stopped at {loaded.status}"
        steps.append(current(studio, project.id)[0])
        assert complete(studio, project.id)

    assert steps == list(Step)
    assert loaded.progress == 100
    assert loaded.reconciliation().consistent
    assert loaded.still_reserved == 0
    charged = sum(SPECS[s].cost(UNITS[s]) for s in Step)
    assert loaded.charged == charged
    assert studio.account(alice).balance == 100 - charged


def test_autopilot_pauses_with_an_event_when_the_balance_cannot_cover_the_next_step(
    studio: Studio,
) -> None:
    account, _ = studio.open_account("bob", credits=3)
    project = new_project(studio, account.id, autopilot=True)
    assert studio.project(project.id).status is Status.GENERATING_IDEAS  # 3 ideas, 3 credits

    assert complete(studio, project.id)

    paused = studio.project(project.id)
    assert paused.status is Status.IDEAS_READY
    assert paused.autopilot_paused is not None
    assert paused.autopilot_paused["step"] == "script"
    assert event_types(studio, project.id)[-1] == "AutopilotPaused"
    assert studio.account(account.id).balance == 0
    assert paused.reconciliation().consistent


def test_an_autopilot_project_without_credits_pauses_as_a_draft(studio: Studio) -> None:
    account, _ = studio.open_account("bob", credits=0)

    project = new_project(studio, account.id, autopilot=True)

    loaded = studio.project(project.id)
    assert loaded.status is Status.DRAFT
    assert loaded.autopilot_paused is not None and loaded.autopilot_paused["step"] == "ideas"
    assert event_types(studio, project.id) == ["ProjectCreated", "AutopilotPaused"]


# ---- delete and restore ---------------------------------------------------------------


def test_a_deleted_project_is_hidden_from_its_owner_kept_in_the_store_and_restorable(
    studio: Studio, alice: UUID
) -> None:
    project = new_project(studio, alice)
    studio.request_ideas(alice, project.id, actor="alice")
    assert complete(studio, project.id)
    studio.request_script(alice, project.id, actor="alice")
    assert complete(studio, project.id)
    ledger = studio.project(project.id).reconciliation()
    assert ledger.charged > 0

    studio.delete_project(alice, project.id, actor="alice")

    with pytest.raises(ProjectNotFound):
        studio.project_of(alice, project.id)
    with pytest.raises(ProjectNotFound):
        studio.delete_project(alice, project.id, actor="alice")
    with pytest.raises(ProjectNotFound):
        studio.request_scenes(alice, project.id, actor="alice")
    deleted = studio.project(project.id)
    assert deleted.deleted and deleted.deleted_by == "alice"
    assert deleted.status is Status.SCRIPT_READY
    assert deleted.reconciliation() == ledger

    studio.restore_project(project.id, actor="support")

    restored = studio.project_of(alice, project.id)
    assert not restored.deleted
    assert restored.status is Status.SCRIPT_READY
    assert restored.reconciliation() == ledger
    assert event_types(studio, project.id)[-2:] == ["ProjectDeleted", "ProjectRestored"]
    with pytest.raises(IllegalTransition):
        studio.restore_project(project.id, actor="support")


# ---- stopping work --------------------------------------------------------------------


def test_cancel_fails_the_step_in_flight_releases_its_credits_and_retry_resumes_it(
    studio: Studio, alice: UUID
) -> None:
    project = new_project(studio, alice)
    studio.request_ideas(alice, project.id, actor="alice")
    assert complete(studio, project.id)
    studio.request_script(alice, project.id, actor="alice")
    assert complete(studio, project.id)
    studio.request_scenes(alice, project.id, actor="alice")
    assert complete(studio, project.id)
    studio.request_render(alice, project.id, actor="alice")
    assert complete(studio, project.id)  # the clips: voiceover is requested with no stop
    step, version = current(studio, project.id)
    assert step is Step.VOICEOVER
    charged = studio.project(project.id).charged

    studio.cancel(alice, project.id, actor="alice")

    cancelled = studio.project(project.id)
    assert cancelled.status is Status.FAILED
    assert cancelled.failure is not None
    assert (cancelled.failure["step"], cancelled.failure["code"]) == ("voiceover", "cancelled")
    assert cancelled.still_reserved == 0 and cancelled.charged == charged
    assert studio.account(alice).reserved == 0
    assert studio.account(alice).balance == 100 - charged
    # The stage that was working on it finds its request gone: nothing recorded or charged.
    assert not complete_at(studio, project.id, step, version)
    assert studio.project(project.id).charged == charged
    with pytest.raises(IllegalTransition):
        studio.cancel(alice, project.id, actor="alice")

    studio.retry(alice, project.id, actor="alice")

    assert current(studio, project.id)[0] is Step.VOICEOVER
    assert complete(studio, project.id) and complete(studio, project.id)
    done = studio.project(project.id)
    assert done.status is Status.COMPLETED and done.reconciliation().consistent
    assert studio.account(alice).reserved == 0


def test_deleting_a_project_mid_render_stops_its_spending(studio: Studio, alice: UUID) -> None:
    project = new_project(studio, alice, autopilot=True)
    for _ in range(3):  # ideas, script, scenes: autopilot then requests the render
        assert complete(studio, project.id)
    step, version = current(studio, project.id)
    assert step is Step.VIDEO
    charged = studio.project(project.id).charged

    studio.delete_project(alice, project.id, actor="alice")

    # The video stage finishes afterwards: it is not recorded, voiceover is never requested.
    assert not complete_at(studio, project.id, step, version)
    deleted = studio.project(project.id)
    assert deleted.deleted and deleted.status is Status.FAILED
    assert deleted.charged == charged and deleted.still_reserved == 0
    assert studio.account(alice).reserved == 0 and studio.account(alice).balance == 100 - charged
    after_delete = event_types(studio, project.id)
    assert after_delete[-1] == "ProjectDeleted"
    assert "VoiceoverRequested" not in after_delete


# ---- the store ------------------------------------------------------------------------


def test_a_project_read_back_from_the_store_equals_the_one_that_was_saved(
    studio: Studio, settings: Settings, alice: UUID
) -> None:
    project = new_project(studio, alice)
    studio.request_ideas(alice, project.id, count=4, actor="alice")
    assert fail(studio, project.id)
    studio.retry(alice, project.id, actor="alice")
    complete(studio, project.id)
    studio.request_script(alice, project.id, idea=2, actor="alice")
    complete(studio, project.id)
    studio.request_scenes(alice, project.id, actor="alice")
    complete(studio, project.id)
    studio.request_render(alice, project.id, actor="alice")
    _, version = current(studio, project.id)
    studio.record_clip(
        project.id, version=version, scene=1, asset=an_asset("clip", "video/mp4"), actor="stage"
    )
    while studio.project(project.id).status is not Status.COMPLETED:
        complete(studio, project.id)
    studio.delete_project(alice, project.id, actor="alice")
    studio.restore_project(project.id, actor="support")

    fresh = Studio(settings.database().eventsourcing_env())
    try:
        assert fresh.project(project.id) == studio.project(project.id)
        assert fresh.account(alice) == studio.account(alice)
        assert fresh.project(project.id).status is Status.COMPLETED
    finally:
        fresh.close()


# ---- several writers on one store ----------------------------------------------------


@pytest.fixture
def trusting(settings: Settings) -> Iterator[Studio]:
    """Another writer on the same store that trusts its cache, as `serve` does."""
    app = Studio(settings.database().eventsourcing_env(), sole_writer=True)
    try:
        yield app
    finally:
        app.close()


def test_a_sole_writer_whose_cache_went_stale_catches_up_and_runs_the_command(
    trusting: Studio, studio: Studio, alice: UUID
) -> None:
    project = new_project(trusting, alice)
    studio.request_ideas(alice, project.id, actor="alice")  # behind the sole writer's back
    complete(studio, project.id)
    # The cached project (draft) and account are stale: the save conflicts, the cache
    # catches up with the store and the command runs again on the current state.
    trusting.request_script(alice, project.id, idea=0, actor="alice")
    assert studio.project(project.id).status is Status.GENERATING_SCRIPT
    assert event_types(studio, project.id).count("ScriptRequested") == 1


def test_a_stage_working_on_a_request_saved_elsewhere_loads_that_request(
    settings: Settings, studio: Studio, alice: UUID
) -> None:
    stages = Studio(settings.database().eventsourcing_env())
    try:
        project = new_project(studio, alice)
        assert stages.project(project.id).status is Status.DRAFT  # now cached by the stages
        studio.request_ideas(alice, project.id, actor="alice")
        step, version = current(studio, project.id)
        seen = stages.project(project.id, at_least=version)
        assert seen.status is Status.GENERATING_IDEAS
        assert stages.complete_step(
            project.id,
            step=step,
            version=version,
            result=a_result(Step.IDEAS),
            generation=a_generation(Step.IDEAS),
            actor="stage",
        )
    finally:
        stages.close()
    assert studio.project(project.id).status is Status.IDEAS_READY


def test_a_sole_writer_whose_save_conflicts_catches_up_and_keeps_both_changes(
    trusting: Studio, studio: Studio, alice: UUID
) -> None:
    assert trusting.account(alice).balance == 100  # now cached
    studio.grant_credits("alice", 50, actor="support")  # behind the sole writer's back
    project = new_project(trusting, alice, autopilot=True)  # saves the stale account
    reserved = studio.project(project.id).reserved
    assert reserved > 0
    assert studio.account(alice).balance == 150 - reserved


class LateCache:
    """Holds one other thread's cache puts for `key` until `go` is set: its save is committed
    and not yet cached meanwhile (`saved` is set)."""

    def __init__(self, studio: Studio, key: UUID) -> None:
        cache = studio.repository.cache
        assert cache is not None
        self.put, self.key, self.main = cache.put, key, threading.current_thread()
        self.saved, self.go = threading.Event(), threading.Event()
        cache.put = self.slow_put  # type: ignore[method-assign]

    def slow_put(self, key: Any, value: Any) -> Any:
        if threading.current_thread() is not self.main and key == self.key:
            self.saved.set()
            self.go.wait(10)
        return self.put(key, value)

    def saving(self, command: Any, *args: Any) -> threading.Thread:
        """Run the command in another thread until it has saved, and not cached, `key`."""
        thread = threading.Thread(target=command, args=args)
        thread.start()
        assert self.saved.wait(10)
        return thread


def test_a_save_that_reaches_the_cache_late_never_hides_a_newer_one(
    trusting: Studio, alice: UUID
) -> None:
    assert trusting.account(alice).balance == 100  # now cached
    late = LateCache(trusting, alice)
    first = late.saving(trusting.grant_credits, "alice", 10)
    trusting.grant_credits("alice", 5)  # conflicts, catches up, saves the newer version
    late.go.set()
    first.join(10)
    # The first save's older account reached the cache last: it must not replace the newer.
    assert trusting.account(alice).balance == 115
    trusting.grant_credits("alice", 1)
    assert trusting.account(alice).balance == 116


def test_a_stage_finds_its_request_saved_by_a_thread_that_has_not_cached_it(
    trusting: Studio, studio: Studio, alice: UUID
) -> None:
    project = new_project(trusting, alice)
    late = LateCache(trusting, project.id)
    saving = late.saving(lambda: trusting.request_ideas(alice, project.id, actor="alice"))
    try:
        step, version = current(studio, project.id)  # as the relay read it from the store
        seen = trusting.project(project.id, at_least=version)
        assert seen.status is Status.GENERATING_IDEAS
        assert seen.is_current(step, version)
    finally:
        late.go.set()
        saving.join(10)
