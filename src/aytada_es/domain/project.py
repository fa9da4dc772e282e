"""The Project aggregate: one ad project, from draft to completed (or failed)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from .copying import copy_aggregate
from .credits import CreditMovement, Movement, Reconciliation, amounts_of_old_reason
from .errors import BadInput, IllegalTransition, InsufficientCredits
from .failures import FailureCode, code_of_old_error, redacted
from .status import PROGRESS_FLOOR, VIDEO_PROGRESS_CEILING, Status
from .steps import (
    DEFAULT_IDEAS,
    MAX_IDEAS,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MAX_SCRIPT_CHARACTERS,
    SPECS,
    STEP_OF_STATUS,
    Price,
    Step,
    chain,
)
from .storable import output_problem, text_problem

FORMATS = ("9:16", "16:9", "1:1", "4:5")
MAX_TITLE = 200
MAX_BRIEF = 5000

JSON = dict[str, Any]


def title_problem(title: object) -> str | None:
    """What is wrong with a project's title, or None (the same rule on create and rename)."""
    if not isinstance(title, str) or not title.strip():
        return "a title of 1 to 200 characters is required"
    if len(title.strip()) > MAX_TITLE:
        return f"at most {MAX_TITLE} characters"
    return text_problem(title)


def validate_brief(
    title: object, format: object, brief: object, autopilot: object = False
) -> tuple[str, str, str]:
    """Check a new project's fields; raise BadInput naming every field at fault."""
    fields: dict[str, str] = {}
    if (problem := title_problem(title)) is not None:
        fields["title"] = problem
    if format not in FORMATS:
        fields["format"] = f"one of {', '.join(FORMATS)}"
    if not isinstance(brief, str):
        fields["brief"] = "text is required"
    else:
        brief = brief.replace("\r\n", "\n")  # a form's line breaks
        if len(brief) > MAX_BRIEF:
            fields["brief"] = f"at most {MAX_BRIEF} characters"
        elif (problem := text_problem(brief, multiline=True)) is not None:
            fields["brief"] = problem
    if not isinstance(autopilot, bool):
        fields["autopilot"] = "true or false"
    if fields:
        raise BadInput("the project is not valid", fields)
    assert isinstance(title, str) and isinstance(format, str) and isinstance(brief, str)
    return title.strip(), format, brief


# The step autopilot takes from each ready status.
AUTOPILOT_STEP: dict[Status, Step] = {
    Status.DRAFT: Step.IDEAS,
    Status.IDEAS_READY: Step.SCRIPT,
    Status.SCRIPT_READY: Step.SCENES,
    Status.SCENES_READY: Step.VIDEO,
}


def estimate(
    step: Step, params: JSON | None = None, *, scenes: list[JSON], script: JSON | None
) -> int:
    """The most a step can cost, given the scenes and script so far (none: the longest)."""
    spec = SPECS[step]
    params = params or {}
    if step is Step.IDEAS:
        return spec.cost(int(params.get("count", DEFAULT_IDEAS)))
    if step is Step.SCENES:
        return spec.cost(MAX_SCENES)
    if step is Step.VIDEO:
        seconds = sum(float(s.get("duration_s", MAX_SCENE_SECONDS)) for s in scenes)
        return spec.cost(math.ceil(seconds or MAX_SCENES * MAX_SCENE_SECONDS))
    if step is Step.VOICEOVER:
        text = (script or {}).get("text", "")
        return spec.cost(max(len(text), 1) if text else MAX_SCRIPT_CHARACTERS)
    return spec.cost(1)


def autopilot_estimate() -> int:
    """What autopilot reserves over a whole run from a new draft, with the longest estimates."""
    return sum(estimate(step, scenes=[], script=None) for step in Step)


def paused_at(status: str, paused: JSON | None) -> JSON | None:
    """An autopilot pause while the project still stands before the step it paused at.

    Autopilot stays off after a pause; once the owner takes a step by hand the pause is history.
    """
    if paused is None or AUTOPILOT_STEP.get(Status(status)) != paused.get("step"):
        return None
    return {
        "step": paused["step"],
        "needed": paused.get("needed"),
        "balance": paused.get("balance"),
    }


class Project(Aggregate):
    """An ad project. Commands validate first and record nothing when they refuse."""

    if TYPE_CHECKING:  # set by the created event; annotations here would become __init__ args
        owner_id: UUID
        title: str
        format: str
        brief: str
        autopilot: bool
        status: Status
        progress: int
        deleted: bool

    class Event(Aggregate.Event):
        class_version = 1
        actor: str

    class ProjectCreated(Event, Aggregate.Created):
        class_version = 1
        owner_id: UUID
        title: str
        format: str
        brief: str
        autopilot: bool

        def apply(self, project: Project) -> None:
            project._init(self)

    class StepRequested(Event):
        """Base of the request events: a stage consumer acts on each exactly once."""

        class_version = 1
        STEP: ClassVar[Step]

        def apply(self, project: Project) -> None:
            spec = SPECS[self.STEP]
            project.request = {
                "step": spec.step.value,
                "version": self.originator_version,
                "params": self.params(),
            }
            project.failure = None
            project._advance(spec.status)

        def params(self) -> JSON:
            return {}

    class IdeasRequested(StepRequested):
        class_version = 1
        STEP = Step.IDEAS
        count: int

        def params(self) -> JSON:
            return {"count": self.count}

    class ScriptRequested(StepRequested):
        class_version = 1
        STEP = Step.SCRIPT
        idea: int | None

        def params(self) -> JSON:
            return {"idea": self.idea}

    class ScenesRequested(StepRequested):
        class_version = 1
        STEP = Step.SCENES

    class VideoRequested(StepRequested):
        class_version = 1
        STEP = Step.VIDEO

        def apply(self, project: Project) -> None:
            super().apply(project)
            project.clips = []

    class VoiceoverRequested(StepRequested):
        class_version = 1
        STEP = Step.VOICEOVER

    class StitchingRequested(StepRequested):
        class_version = 1
        STEP = Step.STITCHING

    class CreditsReserved(Event):
        class_version = 1
        step: str
        amount: int

        def apply(self, project: Project) -> None:
            project.reserved += self.amount
            project.open_reservations[self.step] = (
                project.open_reservations.get(self.step, 0) + self.amount
            )

    class CreditsCharged(Event):
        class_version = 1
        step: str
        amount: int

        def apply(self, project: Project) -> None:
            project.charged += self.amount
            project._close(self.step, self.amount)

    class CreditsReleased(Event):
        class_version = 1
        step: str
        amount: int

        def apply(self, project: Project) -> None:
            project.released += self.amount
            project._close(self.step, self.amount)

    class GenerationRecorded(Event):
        """What a stage did for a request: by which provider and stage version, at what cost."""

        class_version = 2
        step: str
        stage_version: str
        provider: str
        units: int
        credits: int
        started_at: datetime
        finished_at: datetime
        outcome: str
        attempts: int
        error: str

        def apply(self, project: Project) -> None:
            project.generations += 1

        @staticmethod
        def upcast_v1_v2(state: JSON) -> None:
            """Release 1 did not record which version of the stage made it."""
            state["stage_version"] = ""

    class AddOnRequested(Event):
        """A plug-in stage's billed step, asked for once per version of its trigger."""

        class_version = 1
        step: str
        trigger_version: int
        stage_version: str

        def apply(self, project: Project) -> None:
            project.addons[self.step] = {
                "step": self.step,
                "version": self.originator_version,
                "trigger_version": self.trigger_version,
                "stage_version": self.stage_version,
                "state": "requested",
                "failure": None,
            }

    class AddOnCompleted(Event):
        class_version = 1
        step: str
        assets: list[JSON]

        def apply(self, project: Project) -> None:
            project.addons[self.step] = {**project.addons[self.step], "state": "completed"}
            for asset in self.assets:
                project._add_asset(asset)

    class AddOnFailed(Event):
        class_version = 1
        step: str
        code: str
        error: str
        attempts: int

        def apply(self, project: Project) -> None:
            failure = {"code": self.code, "attempts": self.attempts, "error": self.error}
            project.addons[self.step] = {
                **project.addons[self.step],
                "state": "failed",
                "failure": {**failure, "failed_at": self.timestamp.isoformat()},
            }

    class AddOnSkipped(Event):
        """An add-on was not run: the balance could not cover its estimate."""

        class_version = 1
        step: str
        trigger_version: int
        reason: str

        def apply(self, project: Project) -> None:
            project.addons[self.step] = {
                "step": self.step,
                "version": self.originator_version,
                "trigger_version": self.trigger_version,
                "stage_version": "",
                "state": "skipped",
                "failure": {"code": "skipped", "reason": self.reason},
            }

    class IdeasGenerated(Event):
        class_version = 1
        ideas: list[JSON]

        def apply(self, project: Project) -> None:
            project.ideas = list(self.ideas)
            project._finish(Step.IDEAS)

    class ScriptGenerated(Event):
        class_version = 1
        script: JSON

        def apply(self, project: Project) -> None:
            project.script = dict(self.script)
            project._finish(Step.SCRIPT)

    class ScenesGenerated(Event):
        class_version = 1
        scenes: list[JSON]

        def apply(self, project: Project) -> None:
            project.scenes = list(self.scenes)
            project._finish(Step.SCENES)

    class ClipRendered(Event):
        class_version = 1
        scene: int
        asset: JSON

        def apply(self, project: Project) -> None:
            project.clips.append({"scene": self.scene, **self.asset})
            project._add_asset(self.asset)
            done = len({c["scene"] for c in project.clips})
            total = max(len(project.scenes), 1)
            floor = PROGRESS_FLOOR[Status.GENERATING_VIDEO]
            span = VIDEO_PROGRESS_CEILING - floor
            project.progress = max(project.progress, floor + span * min(done, total) // total)

    class VideoGenerated(Event):
        class_version = 1
        duration_s: float

        def apply(self, project: Project) -> None:
            project.video_duration_s = self.duration_s
            project._finish(Step.VIDEO)

    class VoiceoverGenerated(Event):
        class_version = 1
        asset: JSON

        def apply(self, project: Project) -> None:
            project.voiceover = dict(self.asset)
            project._add_asset(self.asset)
            project._finish(Step.VOICEOVER)

    class VideoStitched(Event):
        class_version = 1
        video: JSON
        thumbnail: JSON

        def apply(self, project: Project) -> None:
            project.final_video = dict(self.video)
            project.thumbnail = dict(self.thumbnail)
            project._add_asset(self.video)
            project._add_asset(self.thumbnail)
            project._finish(Step.STITCHING)

    class AssetsAdded(Event):
        class_version = 1
        assets: list[JSON]

        def apply(self, project: Project) -> None:
            for asset in self.assets:
                project._add_asset(asset)

    class StepFailed(Event):
        """A step failed after its attempts: `code` says why to a person, `error` to an auditor."""

        class_version = 2
        step: str
        code: str
        error: str
        attempts: int

        def apply(self, project: Project) -> None:
            project._stop_request(self.step, self.code, self.error, self.attempts, self.timestamp)

        @staticmethod
        def upcast_v1_v2(state: JSON) -> None:
            """Release 1 recorded only the raw error; its code follows from that text."""
            state["code"] = code_of_old_error(str(state.get("error", ""))).value

    class StepCancelled(Event):
        """The step in flight was stopped by its owner (or by a delete); nothing more is done."""

        class_version = 1
        step: str

        def apply(self, project: Project) -> None:
            project._stop_request(self.step, FailureCode.CANCELLED.value, "", 0, self.timestamp)

    class StepRetried(Event):
        class_version = 1
        step: str

        def apply(self, project: Project) -> None:
            project.retries += 1

    class AutopilotPaused(Event):
        """Autopilot stopped before a step the balance could not cover, by how much in numbers."""

        class_version = 2
        step: str
        reason: str
        needed: int | None  # None only in a release-1 event whose reason states no amounts
        balance: int | None

        def apply(self, project: Project) -> None:
            project.autopilot_paused = {
                "step": self.step,
                "reason": self.reason,
                "needed": self.needed,
                "balance": self.balance,
            }

        @staticmethod
        def upcast_v1_v2(state: JSON) -> None:
            """Release 1 kept the amounts only in the words of its reason."""
            state["needed"], state["balance"] = amounts_of_old_reason(str(state.get("reason", "")))

    class ProjectRenamed(Event):
        class_version = 1
        title: str

        def apply(self, project: Project) -> None:
            project.title = self.title

    class ProjectDeleted(Event):
        class_version = 1

        def apply(self, project: Project) -> None:
            project.deleted = True
            project.deleted_at = self.timestamp
            project.deleted_by = self.actor
            project._keep_updated_on(self.originator_version)

    class ProjectRestored(Event):
        class_version = 1

        def apply(self, project: Project) -> None:
            project.deleted = False
            project.deleted_at = None
            project.deleted_by = None
            project._keep_updated_on(self.originator_version)

    # ---- state -------------------------------------------------------------------------

    def _init(self, created: ProjectCreated) -> None:
        self.owner_id = created.owner_id
        self.title = created.title
        self.format = created.format
        self.brief = created.brief
        self.autopilot = created.autopilot
        self.status = Status.DRAFT
        self.progress = 0
        self.deleted = False
        self.deleted_at: datetime | None = None
        self.deleted_by: str | None = None
        self.ideas: list[JSON] = []
        self.script: JSON | None = None
        self.scenes: list[JSON] = []
        self.clips: list[JSON] = []
        self.video_duration_s = 0.0
        self.voiceover: JSON | None = None
        self.final_video: JSON | None = None
        self.thumbnail: JSON | None = None
        self.assets: list[JSON] = []
        self.request: JSON | None = None
        self.failure: JSON | None = None
        self.autopilot_paused: JSON | None = None
        self.reserved = 0
        self.charged = 0
        self.released = 0
        self.open_reservations: dict[str, int] = {}
        self.generations = 0
        self.retries = 0
        self.addons: dict[str, JSON] = {}
        # Deleting and restoring change nothing the project shows: its time from before them,
        # and the version up to which only they followed it.
        self._shown_updated_on: datetime | None = None
        self._shown_through = 0

    def _stop_request(self, step: str, code: str, error: str, attempts: int, at: datetime) -> None:
        assert self.request is not None
        self.failure = {
            "step": step,
            "code": code,
            "error": error,
            "attempts": attempts,
            "params": self.request["params"],
            "failed_at": at.isoformat(),
        }
        self.request = None
        self.status = Status.FAILED

    def _advance(self, status: Status) -> None:
        self.status = status
        self.progress = max(self.progress, PROGRESS_FLOOR[status])

    def _finish(self, step: Step) -> None:
        self.request = None
        done = SPECS[step].done_status
        if done is not None:
            self._advance(done)

    def _close(self, step: str, amount: int) -> None:
        left = self.open_reservations.get(step, 0) - amount
        if left:
            self.open_reservations[step] = left
        else:
            self.open_reservations.pop(step, None)

    def _keep_updated_on(self, version: int) -> None:
        # Called before the event moves `modified_on`: it still is the previous event's time.
        if self._shown_through != self.version:
            self._shown_updated_on = self.modified_on
        self._shown_through = version

    def _add_asset(self, asset: JSON) -> None:
        if all(a["id"] != asset["id"] for a in self.assets):
            self.assets.append(dict(asset))

    # ---- creation ----------------------------------------------------------------------

    def __deepcopy__(self, memo: dict[int, Any]) -> Project:
        return copy_aggregate(self)

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @classmethod
    def create(
        cls,
        *,
        owner_id: UUID,
        title: object,
        format: object,
        brief: object,
        autopilot: object,
        actor: str,
    ) -> Project:
        title, format, brief = validate_brief(title, format, brief, autopilot)
        return cls._create(
            cls.ProjectCreated,
            owner_id=owner_id,
            title=title,
            format=format,
            brief=brief,
            autopilot=bool(autopilot),
            actor=actor,
        )

    # ---- queries -----------------------------------------------------------------------

    @property
    def action(self) -> str | None:
        return self.status.action

    @property
    def updated_on(self) -> datetime:
        """When the project last changed what it shows; a soft delete or a restore does not."""
        if self._shown_through == self.version and self._shown_updated_on is not None:
            return self._shown_updated_on
        return self.modified_on

    @property
    def still_reserved(self) -> int:
        return sum(self.open_reservations.values())

    def reconciliation(self) -> Reconciliation:
        return Reconciliation(self.reserved, self.charged, self.released, self.still_reserved)

    def is_current(self, step: Step | str, version: int) -> bool:
        """Whether the request made at this version is the one still waiting for its stage."""
        return (
            self.request is not None
            and self.request["step"] == step
            and self.request["version"] == version
        )

    def estimate(self, step: Step, params: JSON | None = None) -> int:
        """The most a step can cost from here; never lower than what it will charge."""
        return estimate(step, params, scenes=self.scenes, script=self.script)

    def step_costs(self) -> dict[str, int]:
        """What each command the owner can give now reserves (`render`: its three steps)."""
        commands: dict[str, tuple[Step, JSON]] = {}
        if self.status in (Status.DRAFT, Status.IDEAS_READY):
            commands["ideas"] = (Step.IDEAS, {"count": DEFAULT_IDEAS})
        if self.status in (Status.DRAFT, Status.IDEAS_READY, Status.SCRIPT_READY):
            commands["script"] = (Step.SCRIPT, {"idea": None})
        if self.status in (Status.SCRIPT_READY, Status.SCENES_READY):
            commands["scenes"] = (Step.SCENES, {})
        if self.status is Status.SCENES_READY:
            commands["render"] = (Step.VIDEO, {})
        if self.status is Status.FAILED and self.failure is not None:
            commands["retry"] = (Step(self.failure["step"]), self.failure["params"])
        return {
            command: sum(r.amount for r in self._reservations(step, params))
            for command, (step, params) in commands.items()
        }

    @property
    def waiting_for_credits(self) -> JSON | None:
        """The autopilot pause the project still stands at, if any (see `paused_at`)."""
        return paused_at(self.status, self.autopilot_paused)

    # ---- commands of the user ----------------------------------------------------------

    def _require(self, command: str, *allowed: Status) -> None:
        if self.status not in allowed:
            raise IllegalTransition(command, self.status)

    def request_ideas(self, *, count: int | None, actor: str) -> list[CreditMovement]:
        self._require("generate ideas for", Status.DRAFT, Status.IDEAS_READY)
        count = DEFAULT_IDEAS if count is None else count
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_IDEAS:
            raise BadInput("bad idea count", {"count": f"an integer from 1 to {MAX_IDEAS}"})
        return self._request(Step.IDEAS, {"count": count}, actor)

    def request_script(self, *, idea: int | None, actor: str) -> list[CreditMovement]:
        self._require("write a script for", Status.DRAFT, Status.IDEAS_READY, Status.SCRIPT_READY)
        if idea is None:
            idea = 0 if self.ideas else None
        elif isinstance(idea, bool) or not isinstance(idea, int):
            raise BadInput("bad idea", {"idea": "an integer index into the project's ideas"})
        elif not 0 <= idea < len(self.ideas):
            raise BadInput(
                "no such idea",
                {"idea": f"the project has {len(self.ideas)} ideas (0-based index)"},
            )
        return self._request(Step.SCRIPT, {"idea": idea}, actor)

    def request_scenes(self, *, actor: str) -> list[CreditMovement]:
        self._require("plan scenes for", Status.SCRIPT_READY, Status.SCENES_READY)
        return self._request(Step.SCENES, {}, actor)

    def request_render(self, *, actor: str) -> list[CreditMovement]:
        self._require("render", Status.SCENES_READY)
        return self._request(Step.VIDEO, {}, actor)

    def retry(self, *, actor: str) -> list[CreditMovement]:
        self._require("retry", Status.FAILED)
        assert self.failure is not None
        step = Step(self.failure["step"])
        reservations = self._reservations(step, self.failure["params"])
        self.trigger_event(self.StepRetried, step=step.value, actor=actor)
        return self._trigger_request(step, self.failure["params"], actor, reservations)

    def cancel(self, *, actor: str) -> list[CreditMovement]:
        """Stop the step in flight: nothing more is requested or charged, its credits come back."""
        if self.request is None:
            raise IllegalTransition("cancel", self.status)
        self.trigger_event(self.StepCancelled, step=self.request["step"], actor=actor)
        return self._release_all(actor)

    def rename(self, *, title: object, actor: str) -> list[CreditMovement]:
        """Give the project a new title (checked as on create); the same title records nothing."""
        if (problem := title_problem(title)) is not None:
            raise BadInput("the title is not valid", {"title": problem})
        assert isinstance(title, str)
        if title.strip() != self.title:
            self.trigger_event(self.ProjectRenamed, title=title.strip(), actor=actor)
        return []

    def delete(self, *, actor: str) -> list[CreditMovement]:
        """Soft-delete; a project with a step in flight is cancelled first."""
        if self.deleted:
            raise IllegalTransition("delete", "deleted")
        movements = self.cancel(actor=actor) if self.request is not None else []
        for step, addon in list(self.addons.items()):
            if addon["state"] == "requested":
                movements += self._stop_addon(step, FailureCode.CANCELLED, "", 0, actor)
        self.trigger_event(self.ProjectDeleted, actor=actor)
        return movements

    def restore(self, *, actor: str) -> None:
        if not self.deleted:
            raise IllegalTransition("restore", "not deleted")
        self.trigger_event(self.ProjectRestored, actor=actor)

    def _reservations(self, step: Step, params: JSON) -> list[CreditMovement]:
        return [
            CreditMovement(Movement.RESERVE, s.value, self.estimate(s, params if s is step else {}))
            for s in chain(step)
        ]

    def _request(self, step: Step, params: JSON, actor: str) -> list[CreditMovement]:
        return self._trigger_request(step, params, actor, self._reservations(step, params))

    def _trigger_request(
        self, step: Step, params: JSON, actor: str, reservations: list[CreditMovement]
    ) -> list[CreditMovement]:
        request_class: type[Project.StepRequested] = _REQUEST_CLASSES[step]
        self.trigger_event(request_class, actor=actor, **params)
        for r in reservations:
            self.trigger_event(self.CreditsReserved, step=r.step, amount=r.amount, actor=actor)
        return reservations

    # ---- autopilot ---------------------------------------------------------------------

    def autopilot_next(self) -> tuple[Step, JSON] | None:
        """The step autopilot takes next from a ready status, if any."""
        if not self.autopilot or self.deleted or self.autopilot_paused is not None:
            return None
        step = AUTOPILOT_STEP.get(self.status)
        if step is None:
            return None
        params: dict[Step, JSON] = {
            Step.IDEAS: {"count": DEFAULT_IDEAS},
            Step.SCRIPT: {"idea": 0 if self.ideas else None},
        }
        return step, params.get(step, {})

    def continue_autopilot(self, *, actor: str) -> list[CreditMovement]:
        following = self.autopilot_next()
        if following is None:
            return []
        step, params = following
        return self._request(step, params, actor)

    def autopilot_cost(self) -> int:
        following = self.autopilot_next()
        if following is None:
            return 0
        step, params = following
        return sum(r.amount for r in self._reservations(step, params))

    def pause_autopilot(self, *, needed: int, balance: int, actor: str) -> None:
        """Stop autopilot before its next step: it needs `needed` credits, `balance` are free."""
        following = self.autopilot_next()
        if following is not None:
            self.trigger_event(
                self.AutopilotPaused,
                step=following[0].value,
                reason=InsufficientCredits(needed, balance).message,
                needed=needed,
                balance=balance,
                actor=actor,
            )

    # ---- commands of the stages --------------------------------------------------------

    def _require_current(self, step: Step, version: int) -> None:
        if not self.is_current(step, version):
            raise IllegalTransition(f"complete {step} request v{version} of", self.status)

    def record_clip(self, *, version: int, scene: int, asset: JSON, actor: str) -> None:
        self._require_current(Step.VIDEO, version)
        if any(c["scene"] == scene for c in self.clips):
            return
        _require_storable("asset", asset)
        self.trigger_event(self.ClipRendered, scene=scene, asset=asset, actor=actor)

    def succeed(
        self,
        *,
        step: Step,
        version: int,
        result: JSON,
        generation: JSON,
        actor: str,
    ) -> list[CreditMovement]:
        """Record a step's result and generation, charge its real cost, release the rest."""
        self._require_current(step, version)
        _require_storable("result", result)
        _require_storable("generation", generation)
        spec = SPECS[step]
        open_amount = self.open_reservations.get(step.value, 0)
        charge = min(spec.cost(int(generation["units"])), open_amount)
        self.trigger_event(
            self.GenerationRecorded,
            **{**generation, "step": step.value, "credits": charge},
            outcome="succeeded",
            error="",
            actor=actor,
        )
        result_class, field_names = _RESULTS[step]
        self.trigger_event(result_class, actor=actor, **{k: result[k] for k in field_names})
        movements = self._settle(step.value, charge, open_amount, actor)
        if spec.next_step is not None:
            next_class = _REQUEST_CLASSES[spec.next_step]
            self.trigger_event(next_class, actor=actor)
        return movements

    def fail(
        self,
        *,
        step: Step,
        version: int,
        code: FailureCode,
        error: str,
        generation: JSON,
        actor: str,
    ) -> list[CreditMovement]:
        """Record that a step failed after its attempts; release everything reserved.

        The raw error is kept for auditors without credentials or query strings.
        """
        self._require_current(step, version)
        _require_storable("generation", generation)
        error = redacted(error)
        self.trigger_event(
            self.GenerationRecorded,
            **{**generation, "step": step.value, "credits": 0},
            outcome="failed",
            error=error,
            actor=actor,
        )
        self.trigger_event(
            self.StepFailed,
            step=step.value,
            code=FailureCode(code).value,
            error=error,
            attempts=int(generation["attempts"]),
            actor=actor,
        )
        return self._release_all(actor)

    def time_out(
        self, *, step: str, version: int, after_s: float, actor: str
    ) -> list[CreditMovement]:
        """Fail a step still active past its deadline (`timed_out`); release what it reserved.

        A pipeline step fails the project, as any failure does; an add-on fails alone.
        """
        error = f"no result {after_s:g} s after the request"
        if step in SPECS:
            self._require_current(Step(step), version)
            self.trigger_event(
                self.StepFailed,
                step=step,
                code=FailureCode.TIMED_OUT.value,
                error=error,
                attempts=0,
                actor=actor,
            )
            return self._release_all(actor)
        if not self.is_current_addon(step, version):
            raise IllegalTransition(f"time out {step} add-on v{version} of", self.status)
        return self._stop_addon(step, FailureCode.TIMED_OUT, error, 0, actor)

    def _release_all(self, actor: str) -> list[CreditMovement]:
        movements: list[CreditMovement] = []
        for s, amount in list(self.open_reservations.items()):
            movements += self._settle(s, 0, amount, actor)
        return movements

    # ---- add-ons: billed steps of plug-in stages -----------------------------------------

    def addon(self, step: str) -> JSON | None:
        """The latest add-on of this name, whatever its state."""
        return self.addons.get(step)

    def is_current_addon(self, step: str, version: int) -> bool:
        """Whether the add-on requested at this version still waits for its stage."""
        addon = self.addons.get(step)
        return addon is not None and addon["state"] == "requested" and addon["version"] == version

    def request_addon(
        self, *, step: str, trigger_version: int, estimate: int, stage_version: str, actor: str
    ) -> list[CreditMovement]:
        """Reserve an add-on's estimate, once per version of its trigger; [] when asked before."""
        if step in SPECS or not step or text_problem(step) is not None or len(step) > 64:
            raise BadInput("bad add-on", {"step": "the name of a plug-in stage"})
        if isinstance(estimate, bool) or not isinstance(estimate, int) or estimate < 0:
            raise BadInput("bad add-on estimate", {"estimate": "credits, 0 or more"})
        if self.deleted:
            raise IllegalTransition(f"add {step} to", "deleted")
        if not 1 <= trigger_version <= self.version:
            raise BadInput("bad trigger", {"trigger_version": "a version of the project"})
        known = self.addons.get(step)
        if known is not None and known["trigger_version"] >= trigger_version:
            return []  # this trigger (or a later one) was acted on already
        if known is not None and known["state"] == "requested":
            raise IllegalTransition(f"request {step} again for", "waiting for its stage")
        self.trigger_event(
            self.AddOnRequested,
            step=step,
            trigger_version=trigger_version,
            stage_version=_short(stage_version),
            actor=actor,
        )
        reservation = CreditMovement(Movement.RESERVE, step, estimate)
        if estimate:
            self.trigger_event(self.CreditsReserved, step=step, amount=estimate, actor=actor)
        return [reservation] if estimate else []

    def skip_addon(self, *, step: str, trigger_version: int, reason: str, actor: str) -> None:
        """Record that an add-on was not run (its estimate was not affordable)."""
        known = self.addons.get(step)
        if known is not None and known["trigger_version"] >= trigger_version:
            return
        self.trigger_event(
            self.AddOnSkipped,
            step=step,
            trigger_version=trigger_version,
            reason=redacted(reason),
            actor=actor,
        )

    def complete_addon(
        self,
        *,
        step: str,
        version: int,
        price: Price,
        assets: list[JSON],
        generation: JSON,
        actor: str,
    ) -> list[CreditMovement]:
        """Record an add-on's assets and generation, charge its real cost, release the rest."""
        if not self.is_current_addon(step, version):
            raise IllegalTransition(f"complete {step} add-on v{version} of", self.status)
        _require_storable("assets", assets)
        _require_storable("generation", generation)
        open_amount = self.open_reservations.get(step, 0)
        charge = min(price.cost(int(generation["units"])), open_amount)
        self.trigger_event(
            self.GenerationRecorded,
            **{**generation, "step": step, "credits": charge},
            outcome="succeeded",
            error="",
            actor=actor,
        )
        self.trigger_event(self.AddOnCompleted, step=step, assets=assets, actor=actor)
        return self._settle(step, charge, open_amount, actor)

    def fail_addon(
        self,
        *,
        step: str,
        version: int,
        code: FailureCode,
        error: str,
        generation: JSON,
        actor: str,
    ) -> list[CreditMovement]:
        """Record that an add-on failed after its attempts; release what it reserved."""
        if not self.is_current_addon(step, version):
            raise IllegalTransition(f"fail {step} add-on v{version} of", self.status)
        _require_storable("generation", generation)
        error = redacted(error)
        self.trigger_event(
            self.GenerationRecorded,
            **{**generation, "step": step, "credits": 0},
            outcome="failed",
            error=error,
            actor=actor,
        )
        return self._stop_addon(step, FailureCode(code), error, int(generation["attempts"]), actor)

    def _stop_addon(
        self, step: str, code: FailureCode, error: str, attempts: int, actor: str
    ) -> list[CreditMovement]:
        self.trigger_event(
            self.AddOnFailed,
            step=step,
            code=code.value,
            error=error,
            attempts=attempts,
            actor=actor,
        )
        held = self.open_reservations.get(step, 0)
        return self._settle(step, 0, held, actor) if held else []

    def add_assets(self, *, assets: list[JSON], actor: str) -> None:
        _require_storable("assets", assets)
        new = [a for a in assets if all(a["id"] != b["id"] for b in self.assets)]
        if new:
            self.trigger_event(self.AssetsAdded, assets=new, actor=actor)

    def _settle(self, step: str, charge: int, open_amount: int, actor: str) -> list[CreditMovement]:
        movements = []
        if charge:
            self.trigger_event(self.CreditsCharged, step=step, amount=charge, actor=actor)
            movements.append(CreditMovement(Movement.CHARGE, step, charge))
        if open_amount - charge:
            self.trigger_event(
                self.CreditsReleased, step=step, amount=open_amount - charge, actor=actor
            )
            movements.append(CreditMovement(Movement.RELEASE, step, open_amount - charge))
        return movements


def _short(text: str, limit: int = 64) -> str:
    """A short label from code (a version), fit to be stored."""
    return redacted(str(text))[:limit]


def _require_storable(what: str, value: object) -> None:
    """BadInput unless a stage's output can be stored, and published, as it is."""
    problem = output_problem(value, path=what)
    if problem is not None:
        raise BadInput(f"the {what} cannot be stored", {what: problem})


_REQUEST_CLASSES: dict[Step, type[Project.StepRequested]] = {
    Step.IDEAS: Project.IdeasRequested,
    Step.SCRIPT: Project.ScriptRequested,
    Step.SCENES: Project.ScenesRequested,
    Step.VIDEO: Project.VideoRequested,
    Step.VOICEOVER: Project.VoiceoverRequested,
    Step.STITCHING: Project.StitchingRequested,
}
_RESULTS: dict[Step, tuple[type[Project.Event], tuple[str, ...]]] = {
    Step.IDEAS: (Project.IdeasGenerated, ("ideas",)),
    Step.SCRIPT: (Project.ScriptGenerated, ("script",)),
    Step.SCENES: (Project.ScenesGenerated, ("scenes",)),
    Step.VIDEO: (Project.VideoGenerated, ("duration_s",)),
    Step.VOICEOVER: (Project.VoiceoverGenerated, ("asset",)),
    Step.STITCHING: (Project.VideoStitched, ("video", "thumbnail")),
}
assert set(STEP_OF_STATUS.values()) == set(_REQUEST_CLASSES)
assert all(SPECS[s].request_event == c.__name__ for s, c in _REQUEST_CLASSES.items())
