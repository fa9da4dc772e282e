"""A state machine over the pure domain: no sequence of commands breaks the ledger or the history.

One account and one to three projects take every user command from any status, and the stages'
successes, failures, clips and stale replies, driven the way the application drives them: a
command returns credit movements, the account mirrors them, and both are saved together or not at
all. A refused command is discarded, as the application discards an aggregate it did not save.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from aytada_es.domain.account import Account
from aytada_es.domain.credits import CreditMovement, Movement
from aytada_es.domain.errors import AytadaError, BadInput, IllegalTransition, InsufficientCredits
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.status import PROGRESS_FLOOR, VIDEO_PROGRESS_CEILING, Status
from aytada_es.domain.steps import SPECS, Price, Step, chain

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ADD_ON = "captions"
ADD_ON_PRICE = Price("render", 3)
PROJECT = st.integers(0, 2)  # taken modulo the number of projects
ACTORS = st.sampled_from(["alice", "stage", "support"])

# The transition table (docs/api.md §1), written out again rather than read from the domain.
ALLOWED = {
    "ideas": {Status.DRAFT, Status.IDEAS_READY},
    "script": {Status.DRAFT, Status.IDEAS_READY, Status.SCRIPT_READY},
    "scenes": {Status.SCRIPT_READY, Status.SCENES_READY},
    "render": {Status.SCENES_READY},
    "retry": {Status.FAILED},
}


def state(aggregate: Project | Account) -> dict[str, Any]:
    """What saving the aggregate would keep of it (its pending events aside)."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def rebuilt(events: list[Any]) -> Any:
    """The aggregate as a fresh load from the event store would see it."""
    return functools.reduce(lambda aggregate, event: event.mutate(aggregate), events, None)


def voiceover_estimate(project: Project) -> int:
    text = (project.script or {}).get("text", "")
    return math.ceil(len(text) / 100) if text else 6  # no script yet: the longest, 600 characters


def estimate(project: Project, step: Step, params: dict[str, Any]) -> int:
    """What a request reserves for a step, worked out from the price list, not by the domain."""
    if step is Step.IDEAS:
        return int(params["count"])
    if step is Step.SCRIPT:
        return 2
    if step is Step.SCENES:
        return 6  # the most scenes a plan can have
    if step is Step.VIDEO:
        return math.ceil(sum(scene["duration_s"] for scene in project.scenes)) or 36
    if step is Step.VOICEOVER:
        return voiceover_estimate(project)
    return 5


def chain_cost(project: Project, step: Step, params: dict[str, Any]) -> int:
    """What a request reserves for its step and every step it leads to with no stop."""
    return sum(estimate(project, s, params) for s in chain(step))


def max_units(step: Step, reserved: int) -> int:
    """The most units a step can use and still cost no more than was reserved for it."""
    spec = SPECS[step]
    return reserved // spec.credits_per_unit * spec.units_per_charge


def a_generation(units: int, attempts: int) -> dict[str, Any]:
    return {
        "provider": "offline",
        "stage_version": "1",
        "units": units,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=units),
        "attempts": attempts,
    }


IDEA_COUNTS = st.one_of(st.none(), st.integers(-1, 7), st.sampled_from([True, False, "3", 2.0]))
IDEA_INDEXES = st.one_of(st.none(), st.integers(-1, 6), st.sampled_from([True, "0"]))
SCENE_SECONDS = st.one_of(st.integers(1, 6), st.integers(10, 60).map(lambda t: t / 10))


class ProjectMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.account: Account
        self.projects: list[Project] = []
        self.initial_balance = 0
        self.history: dict[UUID, list[Any]] = {}
        self.progress_seen: dict[UUID, int] = {}
        self.assets = 0

    # ---- driving the aggregates as the application does --------------------------------

    def save(self, *aggregates: Project | Account) -> None:
        for aggregate in aggregates:
            self.history.setdefault(aggregate.id, []).extend(aggregate.collect_events())

    def asset(self, kind: str, content_type: str) -> dict[str, Any]:
        self.assets += 1
        return {
            "id": f"{kind}-{self.assets}",
            "kind": kind,
            "url": f"/api/assets/{kind}-{self.assets}",
            "content_type": content_type,
            "created_at": T0.isoformat(),
        }

    def continue_autopilot(self, project: Project) -> None:
        """As the application does after creating a project and after each completed step."""
        following = project.autopilot_next()
        if following is None:
            return
        step, params = following
        cost = project.autopilot_cost()
        assert cost == chain_cost(project, step, params)
        if cost > self.account.balance:
            project.pause_autopilot(needed=cost, balance=self.account.balance, actor="autopilot")
            assert project.autopilot_paused == {
                "step": step.value,
                "reason": f"this step needs {cost} credits; the balance is {self.account.balance}",
                "needed": cost,
                "balance": self.account.balance,
            }
            assert project.autopilot_next() is None
            return
        movements = project.continue_autopilot(actor="autopilot")
        self.account.apply_movements(project.id, movements, actor="autopilot")
        assert project.status is SPECS[step].status

    def run(
        self,
        i: int,
        command: Callable[[Project], list[CreditMovement]],
        *,
        actor: str,
        expected: type[AytadaError] | None,
        then: Callable[[Project], None] | None = None,
    ) -> bool:
        """Run a command and save it, or discard everything when it is refused; True if saved."""
        project = self.projects[i]
        project_before, account_before = copy.deepcopy(project), copy.deepcopy(self.account)
        try:
            movements = command(project)
            self.account.apply_movements(project.id, movements, actor=actor)
            if then is not None:
                then(project)
        except AytadaError as refused:
            assert type(refused) is expected, f"expected {expected}, got {refused!r}"
            if not isinstance(refused, InsufficientCredits):
                # the project refuses before it records anything
                assert project.pending_events == []
                assert state(project) == state(project_before)
            # the account refuses before it records anything
            assert self.account.pending_events == []
            assert state(self.account) == state(account_before)
            # not saved: the next command loads the aggregates as they were
            self.projects[i], self.account = project_before, account_before
            return False
        assert expected is None, f"expected {expected.__name__}, but {command} went ahead"
        self.save(project, self.account)
        return True

    def which(self, i: int) -> int:
        return i % len(self.projects)

    def funds(self, needed: int) -> type[AytadaError] | None:
        return InsufficientCredits if needed > self.account.balance else None

    # ---- set-up ------------------------------------------------------------------------

    @initialize(
        credits=st.integers(0, 60), autopilots=st.lists(st.booleans(), min_size=1, max_size=3)
    )
    def open_an_account_with_projects(self, credits: int, autopilots: list[bool]) -> None:
        self.initial_balance = credits
        self.account = Account.open(name="alice", role="user", token_hash="0" * 64, actor="cli")
        self.account.grant(credits, actor="cli")
        self.save(self.account)
        for n, autopilot in enumerate(autopilots):
            project = Project.create(
                owner_id=self.account.id,
                title=f"Ad {n}",
                format="9:16",
                brief="Coffee at dawn",
                autopilot=autopilot,
                actor="alice",
            )
            self.continue_autopilot(project)
            self.save(project, self.account)
            self.projects.append(project)
            self.progress_seen[project.id] = project.progress

    # ---- commands of the user, from any status -----------------------------------------

    @rule(i=PROJECT, count=IDEA_COUNTS, actor=ACTORS)
    def request_ideas(self, i: int, count: Any, actor: str) -> None:
        i = self.which(i)
        project = self.projects[i]
        good = count is None or (type(count) is int and 1 <= count <= 5)
        if project.status not in ALLOWED["ideas"]:
            expected: type[AytadaError] | None = IllegalTransition
        elif not good:
            expected = BadInput
        else:
            expected = self.funds(chain_cost(project, Step.IDEAS, {"count": count or 3}))
        if self.run(
            i, lambda p: p.request_ideas(count=count, actor=actor), actor=actor, expected=expected
        ):
            assert self.projects[i].status is Status.GENERATING_IDEAS

    @rule(i=PROJECT, idea=IDEA_INDEXES, actor=ACTORS)
    def request_script(self, i: int, idea: Any, actor: str) -> None:
        i = self.which(i)
        project = self.projects[i]
        good = idea is None or (type(idea) is int and 0 <= idea < len(project.ideas))
        if project.status not in ALLOWED["script"]:
            expected: type[AytadaError] | None = IllegalTransition
        elif not good:
            expected = BadInput
        else:
            expected = self.funds(chain_cost(project, Step.SCRIPT, {}))
        if self.run(
            i, lambda p: p.request_script(idea=idea, actor=actor), actor=actor, expected=expected
        ):
            project = self.projects[i]
            assert project.status is Status.GENERATING_SCRIPT
            assert project.request is not None
            chosen = project.request["params"]["idea"]
            assert chosen == (idea if idea is not None else (0 if project.ideas else None))

    @rule(i=PROJECT, actor=ACTORS)
    def request_scenes(self, i: int, actor: str) -> None:
        i = self.which(i)
        project = self.projects[i]
        if project.status not in ALLOWED["scenes"]:
            expected: type[AytadaError] | None = IllegalTransition
        else:
            expected = self.funds(chain_cost(project, Step.SCENES, {}))
        if self.run(i, lambda p: p.request_scenes(actor=actor), actor=actor, expected=expected):
            assert self.projects[i].status is Status.GENERATING_SCENES

    @rule(i=PROJECT, actor=ACTORS)
    def request_render(self, i: int, actor: str) -> None:
        i = self.which(i)
        project = self.projects[i]
        if project.status not in ALLOWED["render"]:
            expected: type[AytadaError] | None = IllegalTransition
        else:
            expected = self.funds(chain_cost(project, Step.VIDEO, {}))
        if self.run(i, lambda p: p.request_render(actor=actor), actor=actor, expected=expected):
            project = self.projects[i]
            assert project.status is Status.GENERATING_VIDEO
            steps = set(project.open_reservations) - {ADD_ON}  # an add-on may be running too
            assert steps == {"video", "voiceover", "stitching"}

    @rule(i=PROJECT, actor=ACTORS)
    def retry(self, i: int, actor: str) -> None:
        i = self.which(i)
        project = self.projects[i]
        if project.status not in ALLOWED["retry"]:
            expected: type[AytadaError] | None = IllegalTransition
            step = None
        else:
            assert project.failure is not None
            step = Step(project.failure["step"])
            expected = self.funds(chain_cost(project, step, project.failure["params"]))
        if self.run(i, lambda p: p.retry(actor=actor), actor=actor, expected=expected):
            assert step is not None
            project = self.projects[i]
            assert project.status is SPECS[step].status
            assert project.request is not None and project.request["step"] == step.value
            assert project.failure is None

    @rule(i=PROJECT, actor=ACTORS)
    def delete(self, i: int, actor: str) -> None:
        i = self.which(i)
        expected = IllegalTransition if self.projects[i].deleted else None
        ledger = self.projects[i].reconciliation()
        in_flight = self.projects[i].request

        if self.run(i, lambda p: p.delete(actor=actor), actor=actor, expected=expected):
            project = self.projects[i]
            assert project.deleted
            # Work in flight is stopped first: everything still held comes back.
            assert project.still_reserved == 0
            assert project.released == ledger.released + ledger.still_reserved
            assert project.charged == ledger.charged
            if in_flight is not None:
                assert project.status is Status.FAILED
                assert project.failure is not None and project.failure["code"] == "cancelled"

    @rule(i=PROJECT, actor=ACTORS)
    def cancel(self, i: int, actor: str) -> None:
        i = self.which(i)
        in_flight = self.projects[i].request
        expected = None if in_flight is not None else IllegalTransition
        ledger = self.projects[i].reconciliation()
        if self.run(i, lambda p: p.cancel(actor=actor), actor=actor, expected=expected):
            assert in_flight is not None
            project = self.projects[i]
            assert project.status is Status.FAILED and project.still_reserved == 0
            assert project.failure is not None
            assert (project.failure["code"], project.failure["step"]) == (
                "cancelled",
                in_flight["step"],
            )
            assert project.released == ledger.released + ledger.still_reserved
            assert project.charged == ledger.charged

    @rule(i=PROJECT)
    def restore(self, i: int) -> None:
        i = self.which(i)
        expected = None if self.projects[i].deleted else IllegalTransition
        status = self.projects[i].status

        def restore(project: Project) -> list[CreditMovement]:
            project.restore(actor="support")
            return []

        if self.run(i, restore, actor="support", expected=expected):
            assert not self.projects[i].deleted
            assert self.projects[i].status is status

    # ---- commands of the stages --------------------------------------------------------

    def result(self, step: Step, data: st.DataObject) -> dict[str, Any]:
        """A plausible result of a step."""
        if step is Step.IDEAS:
            n = data.draw(st.integers(1, 5), label="ideas")
            return {"ideas": [{"title": f"Idea {k}", "hook": "Wake up to it"} for k in range(n)]}
        if step is Step.SCRIPT:
            length = data.draw(st.integers(0, 700), label="script characters")
            return {"script": {"text": "x" * length, "idea": 0}}
        if step is Step.SCENES:
            seconds = data.draw(st.lists(SCENE_SECONDS, min_size=1, max_size=6), label="scenes")
            return {"scenes": [{"index": k, "duration_s": s} for k, s in enumerate(seconds)]}
        if step is Step.VIDEO:
            return {"duration_s": data.draw(st.floats(1, 36), label="video seconds")}
        if step is Step.VOICEOVER:
            return {"asset": self.asset("voiceover", "audio/mpeg")}
        return {
            "video": self.asset("final_video", "video/mp4"),
            "thumbnail": self.asset("thumbnail", "image/jpeg"),
        }

    @rule(i=PROJECT, data=st.data())
    def a_stage_succeeds(self, i: int, data: st.DataObject) -> None:
        i = self.which(i)
        project = self.projects[i]
        if project.request is None:
            self.a_stale_stage_reply(i, data)
            return
        step, version = Step(project.request["step"]), project.request["version"]
        reserved = project.open_reservations[step.value]
        units = data.draw(st.integers(0, max_units(step, reserved)), label="units")
        result = self.result(step, data)
        attempts = data.draw(st.integers(1, 3), label="attempts")
        charged = project.charged
        landed: list[tuple[Status, dict[str, Any] | None]] = []

        def succeed(project: Project) -> list[CreditMovement]:
            movements = project.succeed(
                step=step,
                version=version,
                result=result,
                generation=a_generation(units, attempts),
                actor="stage",
            )
            landed.append((project.status, copy.deepcopy(project.request)))
            return movements

        assert self.run(i, succeed, actor="stage", expected=None, then=self.continue_autopilot)
        project = self.projects[i]
        assert project.charged - charged == SPECS[step].cost(units)
        assert step.value not in project.open_reservations
        [(status, request)] = landed
        following = SPECS[step].next_step
        if following is not None:
            assert status is SPECS[following].status
            assert request is not None and request["step"] == following.value
        else:
            assert status is SPECS[step].done_status
            assert request is None

    @rule(i=PROJECT, data=st.data())
    def a_stage_fails(self, i: int, data: st.DataObject) -> None:
        i = self.which(i)
        project = self.projects[i]
        if project.request is None:
            self.a_stale_stage_reply(i, data)
            return
        step, version = Step(project.request["step"]), project.request["version"]
        attempts = data.draw(st.integers(1, 5), label="attempts")
        released = project.released + project.still_reserved
        params = project.request["params"]

        def fail(project: Project) -> list[CreditMovement]:
            movements = project.fail(
                step=step,
                version=version,
                code=FailureCode.PROVIDER_UNAVAILABLE,
                error="provider down",
                generation=a_generation(0, attempts),
                actor="stage",
            )
            assert all(m.kind is Movement.RELEASE for m in movements)
            return movements

        assert self.run(i, fail, actor="stage", expected=None)
        project = self.projects[i]
        assert project.status is Status.FAILED
        assert project.failure is not None
        assert project.failure["step"] == step.value
        assert project.failure["attempts"] == attempts
        assert project.failure["params"] == params
        assert project.open_reservations == {}
        assert project.released == released

    @rule(i=PROJECT, data=st.data())
    def a_deadline_passes(self, i: int, data: st.DataObject) -> None:
        """The deadline watcher times out the step in flight, an add-on, or a stale request."""
        i = self.which(i)
        project = self.projects[i]
        addon = project.addon(ADD_ON)
        choices = []
        if project.request is not None:
            choices.append((project.request["step"], project.request["version"]))
        if addon is not None and addon["state"] == "requested":
            choices.append((ADD_ON, addon["version"]))
        stale = (
            data.draw(st.sampled_from([*[s.value for s in Step], ADD_ON]), label="stale step"),
            data.draw(st.integers(0, project.version), label="stale version"),
        )
        step, version = data.draw(st.sampled_from([*choices, stale]), label="timed out")
        current = (step, version) in choices
        in_flight = project.request
        ledger = project.reconciliation()
        held = project.open_reservations.get(step, 0)

        def time_out(project: Project) -> list[CreditMovement]:
            movements = project.time_out(step=step, version=version, after_s=1.5, actor="deadline")
            assert all(m.kind is Movement.RELEASE for m in movements)
            return movements

        expected = None if current else IllegalTransition
        if self.run(i, time_out, actor="deadline", expected=expected):
            project = self.projects[i]
            assert project.charged == ledger.charged
            if step == ADD_ON:
                state = project.addon(ADD_ON)
                assert state is not None and state["state"] == "failed"
                assert state["failure"]["code"] == "timed_out"
                assert project.request == in_flight
                assert project.released == ledger.released + held
            else:
                assert project.status is Status.FAILED and project.still_reserved == 0
                assert project.failure is not None
                assert (project.failure["code"], project.failure["step"]) == ("timed_out", step)
                assert project.released == ledger.released + ledger.still_reserved

    # ---- add-ons of a plug-in stage --------------------------------------------------------

    @rule(i=PROJECT, data=st.data())
    def an_addon_is_requested(self, i: int, data: st.DataObject) -> None:
        i = self.which(i)
        project = self.projects[i]
        trigger = data.draw(st.integers(1, project.version), label="trigger version")
        estimate = data.draw(st.integers(0, 12), label="add-on estimate")
        known = project.addon(ADD_ON)
        if project.deleted:
            expected: type[AytadaError] | None = IllegalTransition
        elif known is not None and known["trigger_version"] >= trigger:
            expected = None  # acted on already: nothing happens
        elif known is not None and known["state"] == "requested":
            expected = IllegalTransition
        else:
            expected = self.funds(estimate)
        reserved = project.reserved
        command = functools.partial(
            Project.request_addon,
            step=ADD_ON,
            trigger_version=trigger,
            estimate=estimate,
            stage_version="2.1",
            actor="stage:captions",
        )
        if self.run(i, command, actor="stage:captions", expected=expected):
            project = self.projects[i]
            addon = project.addon(ADD_ON)
            assert addon is not None
            if known is not None and known["trigger_version"] >= trigger:
                assert addon == known and project.reserved == reserved
            else:
                assert addon["state"] == "requested" and addon["trigger_version"] == trigger
                assert project.reserved == reserved + estimate

    @rule(i=PROJECT, data=st.data())
    def an_addon_finishes(self, i: int, data: st.DataObject) -> None:
        i = self.which(i)
        project = self.projects[i]
        addon = project.addon(ADD_ON)
        if addon is None or addon["state"] != "requested":
            version = data.draw(st.integers(0, project.version), label="stale add-on version")
            expected: type[AytadaError] | None = IllegalTransition
        else:
            version, expected = addon["version"], None
        held = project.open_reservations.get(ADD_ON, 0)
        charged = project.charged
        succeeds = data.draw(st.booleans(), label="add-on succeeds")
        units = data.draw(st.integers(0, 20), label="add-on units")

        def finish(project: Project) -> list[CreditMovement]:
            if succeeds:
                return project.complete_addon(
                    step=ADD_ON,
                    version=version,
                    price=ADD_ON_PRICE,
                    assets=[self.asset("captioned_video", "video/mp4")],
                    generation=a_generation(units, 1),
                    actor="stage:captions",
                )
            return project.fail_addon(
                step=ADD_ON,
                version=version,
                code=FailureCode.PROVIDER_UNAVAILABLE,
                error="ffmpeg failed",
                generation=a_generation(0, 2),
                actor="stage:captions",
            )

        if self.run(i, finish, actor="stage:captions", expected=expected):
            project = self.projects[i]
            assert project.open_reservations.get(ADD_ON, 0) == 0
            expected_charge = min(ADD_ON_PRICE.cost(units), held) if succeeds else 0
            assert project.charged == charged + expected_charge
            state = project.addon(ADD_ON)
            assert state is not None and state["state"] == ("completed" if succeeds else "failed")

    @rule(i=PROJECT, data=st.data())
    def a_clip_is_rendered(self, i: int, data: st.DataObject) -> None:
        i = self.which(i)
        project = self.projects[i]
        if project.request is None or project.request["step"] != Step.VIDEO:
            self.a_stale_stage_reply(i, data)
            return
        version = project.request["version"]
        scene = data.draw(st.integers(0, len(project.scenes) - 1), label="scene")
        new = all(c["scene"] != scene for c in project.clips)
        progress = project.progress
        asset = self.asset("clip", "video/mp4")

        def record_clip(project: Project) -> list[CreditMovement]:
            project.record_clip(version=version, scene=scene, asset=asset, actor="stage")
            return []

        assert self.run(i, record_clip, actor="stage", expected=None)
        project = self.projects[i]
        assert project.status is Status.GENERATING_VIDEO
        done = len({c["scene"] for c in project.clips})
        assert done == len(project.clips) <= len(project.scenes)
        # a retried render starts its clips again but keeps the progress it had shown
        floor = PROGRESS_FLOOR[Status.GENERATING_VIDEO]
        share = floor + (VIDEO_PROGRESS_CEILING - floor) * done // len(project.scenes)
        assert project.progress == max(progress, share)
        if new and project.retries == 0:
            assert project.progress > progress

    @rule(i=PROJECT, data=st.data())
    def a_stale_stage_reply(self, i: int, data: st.DataObject) -> None:
        """A reply to a request that is no longer the project's current one changes nothing."""
        i = self.which(i)
        project = self.projects[i]
        step = data.draw(st.sampled_from(Step), label="stale step")
        version = data.draw(st.integers(0, project.version + 1), label="stale version")
        # A clip reply is checked against the render's request whatever step was drawn.
        if project.is_current(step, version) or project.is_current(Step.VIDEO, version):
            version = -1
        kind = data.draw(st.sampled_from(["succeed", "fail", "clip"]), label="stale reply")

        def reply(project: Project) -> list[CreditMovement]:
            if kind == "succeed":
                return project.succeed(
                    step=step,
                    version=version,
                    result=self.result(step, data),
                    generation=a_generation(1, 1),
                    actor="stage",
                )
            if kind == "fail":
                return project.fail(
                    step=step,
                    version=version,
                    code=FailureCode.PROVIDER_UNAVAILABLE,
                    error="late",
                    generation=a_generation(0, 1),
                    actor="stage",
                )
            asset = self.asset("clip", "video/mp4")
            project.record_clip(version=version, scene=0, asset=asset, actor="stage")
            return []

        self.run(i, reply, actor="stage", expected=IllegalTransition)

    @rule(i=PROJECT, moves=st.integers(1, 4), data=st.data())
    def the_project_moves_on(self, i: int, moves: int, data: st.DataObject) -> None:
        """The owner presses the card's button and the stages succeed: runs get far."""
        for _ in range(moves):
            status = self.projects[self.which(i)].status
            if status is Status.GENERATING_VIDEO and data.draw(st.booleans(), label="a clip"):
                self.a_clip_is_rendered(i, data)
            elif status.is_active:
                self.a_stage_succeeds(i, data)
            elif status is Status.DRAFT:
                self.request_ideas(i, None, "alice")
            elif status is Status.IDEAS_READY:
                self.request_script(i, None, "alice")
            elif status is Status.SCRIPT_READY:
                self.request_scenes(i, "alice")
            elif status is Status.SCENES_READY:
                self.request_render(i, "alice")
            elif status is Status.FAILED:
                self.retry(i, "alice")

    # ---- invariants --------------------------------------------------------------------

    @invariant()
    def every_status_is_one_of_the_twelve(self) -> None:
        for project in self.projects:
            assert isinstance(project.status, Status)
            assert project.status.is_active == (project.request is not None)
            addon = project.addon(ADD_ON)
            running = addon is not None and addon["state"] == "requested"
            held = project.open_reservations.get(ADD_ON, 0)
            assert running or held == 0
            if not project.status.is_active:
                assert project.still_reserved == held, project.open_reservations
            if project.deleted:
                assert not running  # a delete stops every add-on in flight

    @invariant()
    def every_project_ledger_reconciles(self) -> None:
        for project in self.projects:
            ledger = project.reconciliation()
            assert ledger.consistent, ledger
            assert all(amount > 0 for amount in project.open_reservations.values())

    @invariant()
    def the_account_mirrors_the_projects(self) -> None:
        account = self.account
        assert account.balance >= 0
        assert account.reserved == sum(p.still_reserved for p in self.projects)
        charged = sum(p.charged for p in self.projects)
        assert account.balance + account.reserved + charged == self.initial_balance

    @invariant()
    def progress_stays_within_bounds_and_never_goes_down(self) -> None:
        for project in self.projects:
            assert 0 <= project.progress <= 100
            assert project.progress >= self.progress_seen[project.id]
            if project.status is Status.COMPLETED:
                assert project.progress == 100
            self.progress_seen[project.id] = project.progress

    @invariant()
    def nothing_is_left_unsaved(self) -> None:
        assert self.account.pending_events == []
        assert all(p.pending_events == [] for p in self.projects)

    @invariant()
    def every_aggregate_is_what_its_events_rebuild(self) -> None:
        for aggregate in [self.account, *self.projects]:
            assert rebuilt(self.history[aggregate.id]) == aggregate


def test_no_sequence_of_commands_breaks_the_ledger_the_progress_or_the_history() -> None:
    run_state_machine_as_test(
        ProjectMachine,
        settings=settings(
            max_examples=150,
            stateful_step_count=40,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
