"""The Project and Account aggregates, example by example: docs/api.md §1, status by status."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from aytada_es.domain.account import Account
from aytada_es.domain.credits import CreditMovement, Movement
from aytada_es.domain.errors import BadInput, IllegalTransition, InsufficientCredits
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.status import (
    ACTIVE,
    PROGRESS_FLOOR,
    READY,
    TERMINAL,
    VIDEO_PROGRESS_CEILING,
    Status,
)
from aytada_es.domain.steps import SPECS, Step, chain

ACTOR = "alice"
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SCRIPT_TEXT = "Fresh coffee at your door before you wake up. Order tonight, sip tomorrow."
SCENE_SECONDS = (3, 4, 5)


def an_asset(kind: str, content_type: str) -> dict[str, Any]:
    return {
        "id": f"{kind}-{uuid4().hex[:8]}",
        "kind": kind,
        "url": f"/api/assets/{kind}",
        "content_type": content_type,
        "created_at": T0.isoformat(),
    }


def a_result(step: Step) -> dict[str, Any]:
    """What a stage plausibly produces for each step."""
    if step is Step.IDEAS:
        return {"ideas": [{"title": f"Idea {i}", "hook": "Wake up to it"} for i in range(3)]}
    if step is Step.SCRIPT:
        return {"script": {"text": SCRIPT_TEXT, "idea": 0}}
    if step is Step.SCENES:
        scenes = [{"index": i, "duration_s": s} for i, s in enumerate(SCENE_SECONDS)]
        return {"scenes": scenes}
    if step is Step.VIDEO:
        return {"duration_s": float(sum(SCENE_SECONDS))}
    if step is Step.VOICEOVER:
        return {"asset": an_asset("voiceover", "audio/mpeg")}
    return {
        "video": an_asset("final_video", "video/mp4"),
        "thumbnail": an_asset("thumbnail", "image/jpeg"),
    }


# What each step really uses with the results above.
UNITS = {
    Step.IDEAS: 3,
    Step.SCRIPT: 1,
    Step.SCENES: len(SCENE_SECONDS),
    Step.VIDEO: sum(SCENE_SECONDS),
    Step.VOICEOVER: len(SCRIPT_TEXT),
    Step.STITCHING: 1,
}


def a_generation(units: int, attempts: int = 1) -> dict[str, Any]:
    return {
        "provider": "offline",
        "stage_version": "1",
        "units": units,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2),
        "attempts": attempts,
    }


def state(aggregate: Project | Account) -> dict[str, Any]:
    """An aggregate's state as saving would see it, without its pending events."""
    return copy.deepcopy({k: v for k, v in vars(aggregate).items() if k != "_pending_events"})


class Owner:
    """One account and one of its projects, driven the way the application drives them."""

    def __init__(self, credits: int = 1000, *, autopilot: bool = False) -> None:
        self.account = Account.open(name=ACTOR, role="user", token_hash="0" * 64, actor="cli")
        self.account.grant(credits, actor="cli")
        self.project = Project.create(
            owner_id=self.account.id,
            title="Morning Brew",
            format="9:16",
            brief="Coffee delivered at dawn",
            autopilot=autopilot,
            actor=ACTOR,
        )
        self.save()

    def save(self) -> None:
        self.project.collect_events()
        self.account.collect_events()

    def command(self, command: Callable[[Project], list[CreditMovement]]) -> list[CreditMovement]:
        movements = command(self.project)
        self.account.apply_movements(self.project.id, movements, actor=ACTOR)
        self.save()
        return movements

    @property
    def request(self) -> dict[str, Any]:
        assert self.project.request is not None, self.project.status
        return self.project.request

    def finish(self, units: int | None = None) -> list[CreditMovement]:
        step = Step(self.request["step"])
        version = self.request["version"]
        return self.command(
            lambda p: p.succeed(
                step=step,
                version=version,
                result=a_result(step),
                generation=a_generation(UNITS[step] if units is None else units),
                actor="stage",
            )
        )

    def fail(self, error: str = "provider timed out", attempts: int = 3) -> list[CreditMovement]:
        step = Step(self.request["step"])
        version = self.request["version"]
        return self.command(
            lambda p: p.fail(
                step=step,
                version=version,
                code=FailureCode.PROVIDER_UNAVAILABLE,
                error=error,
                generation=a_generation(0, attempts),
                actor="stage",
            )
        )


def request_ideas(owner: Owner) -> None:
    owner.command(lambda p: p.request_ideas(count=3, actor=ACTOR))


def request_script(owner: Owner) -> None:
    owner.command(lambda p: p.request_script(idea=0, actor=ACTOR))


def request_scenes(owner: Owner) -> None:
    owner.command(lambda p: p.request_scenes(actor=ACTOR))


def request_render(owner: Owner) -> None:
    owner.command(lambda p: p.request_render(actor=ACTOR))


def finish(owner: Owner) -> None:
    owner.finish()


# The happy path, one status at a time: how to get there from the status before.
HAPPY_PATH: list[tuple[Status, Callable[[Owner], None] | None]] = [
    (Status.DRAFT, None),
    (Status.GENERATING_IDEAS, request_ideas),
    (Status.IDEAS_READY, finish),
    (Status.GENERATING_SCRIPT, request_script),
    (Status.SCRIPT_READY, finish),
    (Status.GENERATING_SCENES, request_scenes),
    (Status.SCENES_READY, finish),
    (Status.GENERATING_VIDEO, request_render),
    (Status.GENERATING_VOICEOVER, finish),
    (Status.STITCHING, finish),
    (Status.COMPLETED, finish),
]


def continue_to(owner: Owner, status: Status) -> None:
    """Drive the project along the happy path from where it is to `status`."""
    statuses = [reached for reached, _ in HAPPY_PATH]
    start = statuses.index(owner.project.status)
    for reached, step in HAPPY_PATH[start + 1 : statuses.index(status) + 1]:
        assert step is not None
        step(owner)
        assert owner.project.status is reached


def owner_at(status: Status, credits: int = 1000) -> Owner:
    """An owner whose project is in `status` (a failed one failed at ideas)."""
    owner = Owner(credits)
    if status is Status.FAILED:
        request_ideas(owner)
        owner.fail()
    else:
        continue_to(owner, status)
    assert owner.project.status is status
    return owner


def owner_running(step: Step, credits: int = 1000) -> Owner:
    """An owner whose project is running `step`."""
    owner = owner_at(SPECS[step].status, credits)
    assert owner.request["step"] == step
    return owner


# ---- the transition table -------------------------------------------------------------

USER_COMMANDS: dict[str, Callable[[Project], list[CreditMovement]]] = {
    "ideas": lambda p: p.request_ideas(count=None, actor=ACTOR),
    "script": lambda p: p.request_script(idea=None, actor=ACTOR),
    "scenes": lambda p: p.request_scenes(actor=ACTOR),
    "render": lambda p: p.request_render(actor=ACTOR),
    "retry": lambda p: p.retry(actor=ACTOR),
}
ALLOWED: dict[str, dict[Status, Status]] = {
    "ideas": {
        Status.DRAFT: Status.GENERATING_IDEAS,
        Status.IDEAS_READY: Status.GENERATING_IDEAS,
    },
    "script": {
        Status.DRAFT: Status.GENERATING_SCRIPT,
        Status.IDEAS_READY: Status.GENERATING_SCRIPT,
        Status.SCRIPT_READY: Status.GENERATING_SCRIPT,
    },
    "scenes": {
        Status.SCRIPT_READY: Status.GENERATING_SCENES,
        Status.SCENES_READY: Status.GENERATING_SCENES,
    },
    "render": {Status.SCENES_READY: Status.GENERATING_VIDEO},
    # owner_at(FAILED) failed at the ideas step
    "retry": {Status.FAILED: Status.GENERATING_IDEAS},
}
PAIRS = list(itertools.product(USER_COMMANDS, Status))
ALLOWED_PAIRS = [(c, s) for c, s in PAIRS if s in ALLOWED[c]]
REFUSED_PAIRS = [(c, s) for c, s in PAIRS if s not in ALLOWED[c]]


def test_the_transition_table_covers_every_command_from_every_status() -> None:
    assert len(ALLOWED_PAIRS) == 9
    assert len(ALLOWED_PAIRS) + len(REFUSED_PAIRS) == 5 * 12
    assert len(Status) == 12


@pytest.mark.parametrize(("command", "status"), ALLOWED_PAIRS, ids=lambda v: str(v))
def test_an_allowed_command_moves_the_project_to_the_active_status_of_its_step(
    command: str, status: Status
) -> None:
    owner = owner_at(status)
    movements = USER_COMMANDS[command](owner.project)

    assert owner.project.status is ALLOWED[command][status]
    assert owner.project.status.is_active
    assert movements and all(m.kind is Movement.RESERVE for m in movements)
    assert owner.project.still_reserved == sum(m.amount for m in movements)
    owner.account.apply_movements(owner.project.id, movements, actor=ACTOR)
    assert owner.account.reserved == owner.project.still_reserved


@pytest.mark.parametrize(("command", "status"), REFUSED_PAIRS, ids=lambda v: str(v))
def test_a_command_the_table_does_not_allow_is_refused_and_records_nothing(
    command: str, status: Status
) -> None:
    owner = owner_at(status)
    before = state(owner.project)

    with pytest.raises(IllegalTransition) as refused:
        USER_COMMANDS[command](owner.project)

    assert refused.value.code == "illegal_transition"
    assert refused.value.status == status
    assert owner.project.pending_events == []
    assert state(owner.project) == before


@pytest.mark.parametrize("status", sorted(READY | TERMINAL))
def test_a_stage_cannot_complete_or_fail_a_project_that_is_not_running_a_step(
    status: Status,
) -> None:
    owner = owner_at(status)
    before = state(owner.project)

    for step, version in itertools.product(Step, range(owner.project.version + 2)):
        with pytest.raises(IllegalTransition):
            owner.project.succeed(
                step=step,
                version=version,
                result=a_result(step),
                generation=a_generation(1),
                actor="stage",
            )
        with pytest.raises(IllegalTransition):
            owner.project.fail(
                step=step,
                version=version,
                code=FailureCode.INTERNAL,
                error="x",
                generation=a_generation(0),
                actor="stage",
            )
    with pytest.raises(IllegalTransition):
        owner.project.record_clip(
            version=owner.project.version,
            scene=0,
            asset=an_asset("clip", "video/mp4"),
            actor="stage",
        )

    assert owner.project.pending_events == []
    assert state(owner.project) == before


@pytest.mark.parametrize("step", list(Step))
def test_a_stale_or_foreign_request_version_is_refused_and_records_nothing(step: Step) -> None:
    owner = owner_running(step)
    current = owner.request["version"]
    before = state(owner.project)

    for other_step, version in itertools.product(Step, range(1, owner.project.version + 2)):
        if (other_step, version) == (step, current):
            continue
        with pytest.raises(IllegalTransition):
            owner.project.succeed(
                step=other_step,
                version=version,
                result=a_result(other_step),
                generation=a_generation(1),
                actor="stage",
            )
        with pytest.raises(IllegalTransition):
            owner.project.fail(
                step=other_step,
                version=version,
                code=FailureCode.PROVIDER_UNAVAILABLE,
                error="x",
                generation=a_generation(0),
                actor="stage",
            )

    assert owner.project.pending_events == []
    assert state(owner.project) == before


def test_a_new_project_is_a_draft_with_nothing_reserved() -> None:
    project = Owner().project

    assert project.status is Status.DRAFT
    assert project.progress == 0
    assert project.action == "continue"
    assert not project.deleted
    assert project.reconciliation().reserved == 0
    assert project.reconciliation().consistent


def test_render_runs_video_voiceover_and_stitching_to_completed_with_no_stop() -> None:
    owner = owner_at(Status.SCENES_READY)
    request_render(owner)

    seen = [owner.project.status]
    while owner.project.status is not Status.COMPLETED:
        assert owner.project.status.is_active, "render stopped before completed"
        owner.finish()
        seen.append(owner.project.status)

    assert seen == [
        Status.GENERATING_VIDEO,
        Status.GENERATING_VOICEOVER,
        Status.STITCHING,
        Status.COMPLETED,
    ]
    project = owner.project
    assert project.progress == 100
    assert project.action == "view"
    assert project.request is None
    assert project.final_video is not None and project.thumbnail is not None
    assert project.voiceover is not None
    kinds = {a["kind"] for a in project.assets}
    assert {"voiceover", "final_video", "thumbnail"} <= kinds


def test_render_reserves_the_whole_chain_at_once() -> None:
    owner = owner_at(Status.SCENES_READY)

    movements = owner.command(lambda p: p.request_render(actor=ACTOR))

    assert [(m.kind, m.step) for m in movements] == [
        (Movement.RESERVE, "video"),
        (Movement.RESERVE, "voiceover"),
        (Movement.RESERVE, "stitching"),
    ]
    video, voiceover, stitching = (m.amount for m in movements)
    assert video == sum(SCENE_SECONDS)  # one credit per clip second
    assert voiceover == -(-len(SCRIPT_TEXT) // 100)  # one credit per 100 characters
    assert stitching == 5


def test_a_full_run_charges_what_each_step_really_cost_and_releases_the_rest() -> None:
    owner = owner_at(Status.COMPLETED, credits=100)

    costs = {step: SPECS[step].cost(UNITS[step]) for step in Step}
    assert costs == {
        Step.IDEAS: 3,
        Step.SCRIPT: 2,
        Step.SCENES: 3,
        Step.VIDEO: 12,
        Step.VOICEOVER: 1,
        Step.STITCHING: 5,
    }
    ledger = owner.project.reconciliation()
    assert ledger.charged == sum(costs.values())
    assert ledger.still_reserved == 0
    assert ledger.consistent
    # scenes reserved the most a plan can take (6) and released what 3 scenes did not use
    assert ledger.released == 3
    assert owner.account.reserved == 0
    assert owner.account.balance == 100 - ledger.charged


def test_a_step_is_never_charged_more_than_it_reserved() -> None:
    owner = owner_running(Step.IDEAS)
    reserved = owner.project.still_reserved

    movements = owner.finish(units=1000)

    assert movements == [CreditMovement(Movement.CHARGE, "ideas", reserved)]
    assert owner.project.reconciliation().consistent


# ---- failure and retry ----------------------------------------------------------------


@pytest.mark.parametrize("step", list(Step))
def test_a_failure_records_the_step_error_and_attempts_and_releases_every_reservation(
    step: Step,
) -> None:
    owner = owner_running(step, credits=200)
    open_before = dict(owner.project.open_reservations)
    progress = owner.project.progress
    assert open_before

    movements = owner.fail(error="provider timed out", attempts=3)

    project = owner.project
    assert project.status is Status.FAILED
    assert project.action == "retry"
    assert project.failure is not None
    assert project.failure["step"] == step.value
    assert project.failure["error"] == "provider timed out"
    assert project.failure["attempts"] == 3
    assert project.request is None
    assert sorted(movements, key=lambda m: m.step) == sorted(
        (CreditMovement(Movement.RELEASE, s, a) for s, a in open_before.items()),
        key=lambda m: m.step,
    )
    assert project.still_reserved == 0
    assert project.reconciliation().consistent
    assert owner.account.reserved == 0
    assert owner.account.balance + project.charged == 200
    assert project.progress == progress, "a failure does not take progress away"


@pytest.mark.parametrize("step", list(Step))
def test_a_failed_step_can_be_retried_and_charges_once(step: Step) -> None:
    owner = owner_running(step, credits=200)
    owner.fail()
    balance = owner.account.balance

    movements = owner.command(lambda p: p.retry(actor=ACTOR))

    project = owner.project
    assert project.status is SPECS[step].status
    assert project.request is not None and project.request["step"] == step.value
    assert project.failure is None
    assert project.retries == 1
    assert [m.step for m in movements] == [s.value for s in chain(step)]
    assert all(m.kind is Movement.RESERVE for m in movements)
    assert owner.account.balance == balance - sum(m.amount for m in movements)
    assert project.still_reserved == sum(m.amount for m in movements)

    owner.finish()
    continue_to(owner, Status.COMPLETED)
    assert project.charged == sum(SPECS[s].cost(UNITS[s]) for s in Step)
    assert project.still_reserved == 0
    assert project.reconciliation().consistent
    assert owner.account.reserved == 0
    assert owner.account.balance == 200 - project.charged


def test_retry_asks_for_the_same_ideas_count_as_the_failed_request() -> None:
    owner = Owner()
    owner.command(lambda p: p.request_ideas(count=5, actor=ACTOR))
    owner.fail()

    movements = owner.command(lambda p: p.retry(actor=ACTOR))

    assert owner.request["params"] == {"count": 5}
    assert movements == [CreditMovement(Movement.RESERVE, "ideas", 5)]


def test_retry_is_refused_when_the_balance_no_longer_covers_the_step() -> None:
    owner = Owner(credits=3)
    request_ideas(owner)
    owner.fail()
    other = Project.create(
        owner_id=owner.account.id,
        title="Evening Brew",
        format="1:1",
        brief="",
        autopilot=False,
        actor=ACTOR,
    )
    owner.account.apply_movements(other.id, other.request_ideas(count=2, actor=ACTOR), actor=ACTOR)
    owner.save()

    movements = owner.project.retry(actor=ACTOR)
    with pytest.raises(InsufficientCredits) as refused:
        owner.account.apply_movements(owner.project.id, movements, actor=ACTOR)

    assert (refused.value.needed, refused.value.balance) == (3, 1)
    assert owner.account.pending_events == []


# ---- delete and restore ---------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(set(Status) - ACTIVE))
def test_a_project_can_be_deleted_from_any_status_and_keeps_its_credit_history(
    status: Status,
) -> None:
    owner = owner_at(status)
    ledger = owner.project.reconciliation()

    assert owner.project.delete(actor=ACTOR) == []

    project = owner.project
    assert project.deleted
    assert project.deleted_by == ACTOR
    assert project.deleted_at is not None
    assert project.status is status
    assert project.reconciliation() == ledger
    assert [type(e).__name__ for e in project.collect_events()] == ["ProjectDeleted"]


@pytest.mark.parametrize("status", sorted(ACTIVE))
def test_deleting_a_project_with_a_step_in_flight_cancels_it_first(status: Status) -> None:
    owner = owner_at(status)
    step = owner.project.request["step"]
    held = dict(owner.project.open_reservations)
    assert held

    movements = owner.project.delete(actor=ACTOR)

    project = owner.project
    assert project.deleted and project.status is Status.FAILED
    assert project.failure["code"] == "cancelled" and project.failure["step"] == step
    assert project.request is None and project.still_reserved == 0
    assert movements == [CreditMovement(Movement.RELEASE, s, a) for s, a in held.items()]
    names = [type(e).__name__ for e in project.collect_events()]
    assert names == ["StepCancelled", *["CreditsReleased"] * len(held), "ProjectDeleted"]
    assert project.reconciliation().consistent


@pytest.mark.parametrize("status", sorted(ACTIVE))
def test_a_cancelled_step_releases_its_credits_and_retry_resumes_it(status: Status) -> None:
    owner = owner_at(status, credits=500)
    request = dict(owner.project.request)
    free = owner.account.balance + owner.project.still_reserved

    owner.command(lambda p: p.cancel(actor=ACTOR))

    assert owner.project.status is Status.FAILED
    assert owner.project.failure["code"] == "cancelled"
    assert owner.account.balance == free and owner.account.reserved == 0
    assert not owner.project.is_current(Step(request["step"]), request["version"])

    owner.command(lambda p: p.retry(actor=ACTOR))

    assert owner.project.status is status
    assert owner.project.request["step"] == request["step"]
    assert owner.project.request["params"] == request["params"]
    assert owner.project.reconciliation().consistent


@pytest.mark.parametrize("status", sorted(set(Status) - ACTIVE))
def test_only_a_step_in_flight_can_be_cancelled(status: Status) -> None:
    project = owner_at(status).project

    with pytest.raises(IllegalTransition):
        project.cancel(actor=ACTOR)
    assert project.pending_events == []


def test_a_deleted_project_cannot_be_deleted_again() -> None:
    project = Owner().project
    project.delete(actor=ACTOR)
    project.collect_events()

    with pytest.raises(IllegalTransition):
        project.delete(actor=ACTOR)
    assert project.pending_events == []


def test_restore_brings_a_deleted_project_back_as_it_was() -> None:
    owner = owner_at(Status.SCRIPT_READY)
    before = state(owner.project)
    owner.project.delete(actor=ACTOR)
    owner.project.restore(actor="support")

    after = state(owner.project)
    assert not owner.project.deleted
    assert owner.project.deleted_at is None and owner.project.deleted_by is None
    assert owner.project.updated_on == before["_modified_on"]  # what it shows did not change
    for volatile in ("_version", "_modified_on", "_shown_updated_on", "_shown_through"):
        before.pop(volatile)
        after.pop(volatile)
    assert after == before


def test_a_project_shows_the_time_of_its_last_change_that_was_not_a_delete_or_restore() -> None:
    owner = owner_at(Status.SCRIPT_READY)
    project = owner.project
    shown = project.updated_on
    assert shown == project.modified_on
    project.delete(actor=ACTOR)
    project.restore(actor="support")
    project.delete(actor=ACTOR)
    assert project.modified_on == project.deleted_at
    assert project.updated_on == shown
    project.restore(actor="support")
    assert project.updated_on == shown
    project.request_scenes(actor=ACTOR)
    assert project.updated_on == project.modified_on == project.pending_events[-1].timestamp


def test_a_project_that_is_not_deleted_cannot_be_restored() -> None:
    project = Owner().project

    with pytest.raises(IllegalTransition):
        project.restore(actor="support")
    assert project.pending_events == []


# ---- bad input ------------------------------------------------------------------------

GOOD = {"title": "Morning Brew", "format": "9:16", "brief": "Coffee at dawn"}


def create(**fields: Any) -> Project:
    return Project.create(owner_id=uuid4(), actor=ACTOR, **{"autopilot": False, **GOOD, **fields})


@pytest.mark.parametrize(
    ("fields", "at_fault"),
    [
        ({"title": ""}, {"title"}),
        ({"title": "   "}, {"title"}),
        ({"title": "x" * 201}, {"title"}),
        ({"title": None}, {"title"}),
        ({"format": "3:2"}, {"format"}),
        ({"format": None}, {"format"}),
        ({"brief": "x" * 5001}, {"brief"}),
        ({"brief": None}, {"brief"}),
        ({"autopilot": "false"}, {"autopilot"}),
        ({"autopilot": 1}, {"autopilot"}),
        ({"title": "", "format": "4:3", "brief": "x" * 5001}, {"title", "format", "brief"}),
    ],
    ids=lambda v: repr(sorted(v) if isinstance(v, set) else v)[:40],
)
def test_a_project_with_bad_fields_is_refused_naming_every_field_at_fault(
    fields: dict[str, Any], at_fault: set[str]
) -> None:
    with pytest.raises(BadInput) as refused:
        create(**fields)

    assert set(refused.value.fields) == at_fault
    assert refused.value.code == "invalid_input"


@pytest.mark.parametrize("format", ["9:16", "16:9", "1:1", "4:5"])
def test_every_contract_format_is_accepted(format: str) -> None:
    assert create(format=format).format == format


def test_the_longest_title_and_brief_are_accepted() -> None:
    project = create(title="x" * 200, brief="y" * 5000, autopilot=True)

    assert len(project.title) == 200
    assert len(project.brief) == 5000
    assert project.autopilot is True


@pytest.mark.parametrize("count", [0, 6, -1, True, False, 3.0, "3"], ids=repr)
def test_an_ideas_count_outside_one_to_five_is_bad_input(count: Any) -> None:
    project = Owner().project

    with pytest.raises(BadInput) as refused:
        project.request_ideas(count=count, actor=ACTOR)

    assert set(refused.value.fields) == {"count"}
    assert project.pending_events == []
    assert project.status is Status.DRAFT


@pytest.mark.parametrize("count", [1, 5, None])
def test_an_ideas_count_of_one_to_five_or_none_is_accepted(count: int | None) -> None:
    project = Owner().project

    movements = project.request_ideas(count=count, actor=ACTOR)

    assert movements == [CreditMovement(Movement.RESERVE, "ideas", count or 3)]


@pytest.mark.parametrize("idea", [3, -1, 99, True, "0", 0.0], ids=repr)
def test_an_idea_index_outside_the_ideas_is_bad_input(idea: Any) -> None:
    owner = owner_at(Status.IDEAS_READY)  # three ideas: 0, 1, 2

    with pytest.raises(BadInput) as refused:
        owner.project.request_script(idea=idea, actor=ACTOR)

    assert set(refused.value.fields) == {"idea"}
    assert owner.project.pending_events == []
    assert owner.project.status is Status.IDEAS_READY


def test_a_script_from_a_draft_has_no_idea_and_any_index_is_bad_input() -> None:
    project = Owner().project

    with pytest.raises(BadInput):
        project.request_script(idea=0, actor=ACTOR)
    project.request_script(idea=None, actor=ACTOR)

    assert project.request is not None
    assert project.request["params"] == {"idea": None}


def test_a_script_without_an_idea_index_uses_the_first_idea() -> None:
    owner = owner_at(Status.IDEAS_READY)

    owner.project.request_script(idea=None, actor=ACTOR)

    assert owner.request["params"] == {"idea": 0}


def test_an_illegal_transition_is_reported_before_bad_input() -> None:
    project = owner_at(Status.COMPLETED).project

    with pytest.raises(IllegalTransition):
        project.request_ideas(count=99, actor=ACTOR)


# ---- credits --------------------------------------------------------------------------


def test_a_short_balance_raises_insufficient_credits_and_the_account_records_nothing() -> None:
    owner = Owner(credits=2)
    movements = owner.project.request_ideas(count=3, actor=ACTOR)
    before = state(owner.account)

    with pytest.raises(InsufficientCredits) as refused:
        owner.account.apply_movements(owner.project.id, movements, actor=ACTOR)

    assert refused.value.needed == 3
    assert refused.value.balance == 2
    assert refused.value.code == "insufficient_credits"
    assert owner.account.pending_events == []
    assert state(owner.account) == before


def test_a_balance_that_exactly_covers_the_reservation_is_enough() -> None:
    owner = Owner(credits=3)

    owner.command(lambda p: p.request_ideas(count=3, actor=ACTOR))

    assert owner.account.balance == 0
    assert owner.account.reserved == 3


def test_charges_and_releases_never_need_a_balance() -> None:
    owner = owner_running(Step.SCENES, credits=11)  # 3 ideas + 2 script + 6 scenes
    assert owner.account.balance == 0

    owner.finish()

    assert owner.account.balance == 3  # 3 of the 6 reserved for scenes came back
    assert owner.account.reserved == 0


@pytest.mark.parametrize("amount", [-1, True, 1.5, "10"], ids=repr)
def test_a_grant_must_be_a_whole_number(amount: Any) -> None:
    account = Owner().account

    with pytest.raises(BadInput) as refused:
        account.grant(amount, actor="cli")

    assert set(refused.value.fields) == {"credits"}
    assert account.pending_events == []


# ---- progress -------------------------------------------------------------------------


def test_each_status_reached_for_the_first_time_shows_its_progress_floor() -> None:
    owner = Owner()
    shown = {Status.DRAFT: owner.project.progress}
    for reached, step in HAPPY_PATH[1:]:
        assert step is not None
        step(owner)
        assert owner.project.status is reached
        shown[reached] = owner.project.progress

    assert shown == {s: PROGRESS_FLOOR[s] for s in shown}
    assert shown[Status.COMPLETED] == 100
    assert list(shown.values()) == sorted(shown.values())


def test_progress_does_not_go_down_when_a_step_is_asked_for_again() -> None:
    owner = owner_at(Status.SCRIPT_READY)
    owner.command(lambda p: p.request_script(idea=1, actor=ACTOR))
    assert owner.project.status is Status.GENERATING_SCRIPT
    assert owner.project.progress == PROGRESS_FLOOR[Status.SCRIPT_READY]

    continue_to(owner, Status.SCENES_READY)
    owner.command(lambda p: p.request_scenes(actor=ACTOR))

    assert owner.project.status is Status.GENERATING_SCENES
    assert owner.project.progress == PROGRESS_FLOOR[Status.SCENES_READY]


def test_generating_video_progress_rises_as_clips_are_recorded() -> None:
    owner = owner_running(Step.VIDEO)
    version = owner.request["version"]
    shown = [owner.project.progress]

    for scene in range(len(SCENE_SECONDS)):
        owner.project.record_clip(
            version=version, scene=scene, asset=an_asset("clip", "video/mp4"), actor="stage"
        )
        shown.append(owner.project.progress)

    assert shown[0] == PROGRESS_FLOOR[Status.GENERATING_VIDEO]
    assert all(a < b for a, b in itertools.pairwise(shown)), shown
    assert shown[-1] == VIDEO_PROGRESS_CEILING
    assert len(owner.project.clips) == len(SCENE_SECONDS)
    assert sum(a["kind"] == "clip" for a in owner.project.assets) == len(SCENE_SECONDS)
    assert owner.project.status is Status.GENERATING_VIDEO


def test_a_clip_recorded_twice_is_recorded_once() -> None:
    owner = owner_running(Step.VIDEO)
    version = owner.request["version"]
    clip = an_asset("clip", "video/mp4")
    owner.project.record_clip(version=version, scene=0, asset=clip, actor="stage")
    owner.save()
    before = state(owner.project)

    owner.project.record_clip(version=version, scene=0, asset=clip, actor="stage")

    assert owner.project.pending_events == []
    assert state(owner.project) == before


def test_a_retried_render_starts_its_clips_again_without_losing_progress() -> None:
    owner = owner_running(Step.VIDEO)
    version = owner.request["version"]
    owner.project.record_clip(
        version=version, scene=0, asset=an_asset("clip", "video/mp4"), actor="stage"
    )
    progress = owner.project.progress
    owner.fail()

    owner.command(lambda p: p.retry(actor=ACTOR))

    assert owner.project.clips == []
    assert owner.project.progress == progress


# ---- cards ----------------------------------------------------------------------------

ACTIONS = {
    Status.DRAFT: "continue",
    Status.GENERATING_IDEAS: None,
    Status.IDEAS_READY: "continue",
    Status.GENERATING_SCRIPT: None,
    Status.SCRIPT_READY: "continue",
    Status.GENERATING_SCENES: None,
    Status.SCENES_READY: "continue",
    Status.GENERATING_VIDEO: None,
    Status.GENERATING_VOICEOVER: None,
    Status.STITCHING: None,
    Status.COMPLETED: "view",
    Status.FAILED: "retry",
}


@pytest.mark.parametrize("status", list(Status))
def test_each_status_shows_the_action_button_of_the_contract(status: Status) -> None:
    assert status.action == ACTIONS[status]
    assert status.is_active == (ACTIONS[status] is None)
    assert (status in ACTIVE) == status.is_active
    assert owner_at(status).project.action == ACTIONS[status]


def test_the_status_strings_are_those_of_the_contract() -> None:
    assert [s.value for s in Status] == [
        "draft",
        "generating_ideas",
        "ideas_ready",
        "generating_script",
        "script_ready",
        "generating_scenes",
        "scenes_ready",
        "generating_video",
        "generating_voiceover",
        "stitching",
        "completed",
        "failed",
    ]


# ---- copies for commands ---------------------------------------------------------------


def record_clip(owner: Owner) -> None:
    version = owner.request["version"]
    owner.project.record_clip(
        version=version, scene=0, asset=an_asset("clip", "video/mp4"), actor="stage"
    )
    owner.save()


def fail(owner: Owner) -> None:
    owner.fail()


def retry(owner: Owner) -> None:
    owner.command(lambda p: p.retry(actor=ACTOR))


def delete(owner: Owner) -> None:
    owner.command(lambda p: p.delete(actor=ACTOR))


def restore(owner: Owner) -> None:
    owner.project.restore(actor="support")
    owner.save()


LIFETIME: list[Callable[[Owner], None]] = [
    request_ideas,
    fail,
    retry,
    finish,
    request_script,
    finish,
    request_scenes,
    finish,
    request_render,
    record_clip,
    finish,
    finish,
    delete,
    restore,
    retry,
    finish,
]


def test_a_copy_of_an_aggregate_changes_without_touching_the_original() -> None:
    """Commands work on copies of cached aggregates: what they change stays in the copy."""
    owner = Owner()
    for command in LIFETIME:
        project, account = owner.project, owner.account
        before = state(project), state(account)
        owner.project, owner.account = copy.deepcopy(project), copy.deepcopy(account)
        assert (state(owner.project), state(owner.account)) == before
        command(owner)
        assert (state(project), state(account)) == before, command.__name__
        assert state(owner.project) != before[0], command.__name__
    assert owner.project.status is Status.COMPLETED


# ---- rename ---------------------------------------------------------------------------------


def test_a_rename_records_the_new_title_and_keeps_status_progress_and_credits() -> None:
    owner = Owner()
    request_ideas(owner)
    owner.finish()
    before = state(owner.project)
    assert owner.command(lambda p: p.rename(title="  Dawn Brew  ", actor=ACTOR)) == []
    assert owner.project.title == "Dawn Brew"
    after = state(owner.project)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"title", "_version", "_modified_on"}, changed
    assert owner.project.status == Status.IDEAS_READY


def test_renaming_to_the_same_title_records_nothing() -> None:
    owner = Owner()
    version = owner.project.version
    owner.project.rename(title=" Morning Brew ", actor=ACTOR)
    assert owner.project.collect_events() == [] and owner.project.version == version


@pytest.mark.parametrize(
    "title", ["", "   ", "x" * 201, "a\x00b", "a\nb", "a\u202eb", "a\ud800b", 7, None]
)
def test_a_bad_title_is_refused_naming_the_field_and_records_nothing(title: Any) -> None:
    owner = Owner()
    before = state(owner.project)
    with pytest.raises(BadInput) as refused:
        owner.project.rename(title=title, actor=ACTOR)
    assert set(refused.value.fields) == {"title"}
    assert owner.project.collect_events() == [] and state(owner.project) == before


def test_a_renamed_title_replays_from_the_events() -> None:
    project = Project.create(
        owner_id=uuid4(), title="One", format="1:1", brief="", autopilot=False, actor=ACTOR
    )
    project.rename(title="Two", actor=ACTOR)
    project.rename(title="Three", actor=ACTOR)
    events = project.collect_events()
    assert [type(e).__name__ for e in events][-2:] == ["ProjectRenamed", "ProjectRenamed"]
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Project) and replayed.title == "Three"
