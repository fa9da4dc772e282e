"""The request and response bodies of the HTTP API (docs/api.md §2), as pydantic models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..audit.reports import Reconciliation
from ..domain.account import MAX_ADJUSTMENT_TEXT
from ..domain.project import MAX_BRIEF, MAX_TITLE
from ..domain.steps import MAX_IDEAS

Format = Literal["9:16", "16:9", "1:1", "4:5"]
StatusName = Literal[
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
Action = Literal["continue", "view", "retry"]
ImageKind = Literal["product_shot", "banner", "flyer", "scene_still"]
Role = Literal["user", "auditor", "support"]
Id = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Request(BaseModel):
    """A request body: exact types, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Answer(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="forbid")


# ---- requests -----------------------------------------------------------------------------


class NewProject(Request):
    """`POST /api/projects`."""

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    format: Format
    brief: str = Field(max_length=MAX_BRIEF)
    autopilot: bool = False


class Rename(Request):
    """`PATCH /api/projects/{id}`: a new title (the rules of `NewProject.title`)."""

    title: str = Field(min_length=1, max_length=MAX_TITLE)


class IdeasRequest(Request):
    """`POST /api/projects/{id}/ideas`: how many concepts (default 3)."""

    count: int | None = Field(None, ge=1, le=MAX_IDEAS)


class ScriptRequest(Request):
    """`POST /api/projects/{id}/script`: which idea to write from (0-based; default the first)."""

    idea: int | None = Field(None, ge=0)


class NoFields(Request):
    """A command that takes nothing: no body, or `{}`."""


class Adjustment(Request):
    """`POST /api/support/accounts/{user}/adjustments`: credits back (> 0) or taken (< 0)."""

    amount: int = Field(ge=-(2**63), le=2**63 - 1)
    reason: str = Field(min_length=1, max_length=MAX_ADJUSTMENT_TEXT["reason"])
    ticket: str = Field(min_length=1, max_length=MAX_ADJUSTMENT_TEXT["ticket"])


class Login(Request):
    """`POST /login`: the token `aytada-es users add` printed; `next`, where to go after."""

    token: str = Field(min_length=1, max_length=200)
    next: str | None = Field(None, max_length=2000)


# ---- answers ------------------------------------------------------------------------------


class Paused(Answer):
    """Autopilot stopped before `step`: it needed `needed` credits and `balance` were free."""

    step: str
    needed: int | None
    balance: int | None


class Card(Answer):
    """A project as My Videos shows it."""

    id: Id
    title: str
    format: Format
    created_at: Moment
    updated_at: Moment
    status: StatusName
    progress: int = Field(ge=0, le=100)
    action: Action | None
    thumbnail_url: str | None
    paused: Paused | None = Field(
        None,
        description="set while autopilot stands paused for lack of credits; the owner can add"
        " credits or take the next step by hand",
    )


class VideoList(Answer):
    """`GET /api/videos`: `poll_interval_s` is 8 while any listed project is active."""

    position: int
    poll_interval_s: Literal[8] | None
    videos: list[Card]
    epoch: str = Field(description="the read models' generation: it changes on a live rebuild")


class Asset(Answer):
    """A file of a project: `kind` is one of the built-in kinds (`scene_still`, `product_shot`,
    `banner`, `flyer`, `clip`, `voiceover`, `final_video`, `thumbnail`) or one a plug-in stage
    declares; `label` names it for a person."""

    id: str
    kind: str
    label: str
    url: str
    content_type: str | None
    created_at: Moment


FailureCodeName = Literal[
    "cancelled",
    "timed_out",
    "provider_unavailable",
    "provider_rejected",
    "rate_limited",
    "invalid_output",
    "internal",
]


class Failure(Answer):
    """What failed and why, for a person: `message` is a plain sentence (docs/api.md §2).

    The provider's raw error is for auditors only (`GET /api/audit/projects/{id}`).
    """

    step: str
    code: FailureCodeName
    message: str
    attempts: int
    failed_at: Moment | None = None


class AddOn(Answer):
    """A billed step of a plug-in stage: `requested`, `completed`, `failed` or `skipped`."""

    name: str
    state: Literal["requested", "completed", "failed", "skipped"]
    message: str | None


class StudioView(Card):
    """`GET /api/projects/{id}`: the card and everything the Studio page shows."""

    brief: str
    ideas: list[dict[str, Any]]
    script: dict[str, Any] | None
    scenes: list[dict[str, Any]]
    assets: list[Asset]
    add_ons: list[AddOn]
    failure: Failure | None
    credits: Reconciliation
    costs: dict[str, int] = Field(
        default_factory=dict,
        description="the credits each command the owner can give now reserves, by its path"
        " (`ideas`, `script`, `scenes`, `render`, `retry`)",
    )


class StepPrice(Answer):
    """What a step costs: `credits_per_unit` credits per `units_per_charge` units of `unit`."""

    step: str
    unit: str
    credits_per_unit: int
    units_per_charge: int


class Prices(Answer):
    """`GET /api/prices`: the price list, and what autopilot reserves over a whole run."""

    steps: list[StepPrice]
    autopilot: int = Field(
        description="the credits autopilot reserves, step by step, from a new draft to the"
        " finished ad, with the longest estimates (the real charge is usually lower)"
    )


class Script(Answer):
    """One generated script."""

    id: str
    project_id: Id
    project_title: str
    format: Format
    title: str | None
    text: str
    words: int
    idea: dict[str, Any] | None
    created_at: Moment


class ScriptList(Answer):
    """`GET /api/scripts`: newest first."""

    scripts: list[Script]


class Image(Answer):
    """One generated image."""

    id: str
    project_id: Id
    kind: ImageKind
    url: str
    created_at: Moment


class ImageList(Answer):
    """`GET /api/images`: newest first."""

    images: list[Image]


class CreditMovement(Answer):
    """One line of a credit statement, with the balance and reserved credits after it.

    `project_title` and `project_deleted` (deleted now) name the project of a reservation,
    charge or release, deleted ones included; both are null for a grant or an adjustment.
    """

    position: int
    at: Moment
    kind: Literal["grant", "reserve", "charge", "release", "adjust"]
    project_id: Id | None
    project_title: str | None
    project_deleted: bool | None
    step: str | None
    amount: int
    balance: int
    reserved: int
    head: str | None = Field(
        description="the chain head the movement was recorded under: the hash its event claims,"
        " as in the account's dispute pack (`GET /api/account/pack`)"
    )


class CreditStatement(Answer):
    """`GET /api/credits`: free balance, reserved credits, every movement oldest first."""

    balance: int
    reserved: int
    history: list[CreditMovement]


class Adjusted(Answer):
    """The adjustment recorded, and the account's credits after it."""

    name: str
    amount: int
    reason: str
    ticket: str
    actor: str
    balance: int
    reserved: int


class DeletedProject(Answer):
    """One soft-deleted project."""

    project_id: Id
    owner_id: Id
    owner_name: str | None
    title: str
    deleted_at: Moment
    deleted_by: str
    position: int


class DeletedList(Answer):
    """`GET /api/support/deleted`: the latest deletion first."""

    deleted: list[DeletedProject]


class ErrorDetail(Answer):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorBody(Answer):
    """Every error: `{"error": {"code", "message"}}`; 422 adds `fields`."""

    error: ErrorDetail


class Health(Answer):
    """`GET /healthz`: every part and whether it is up."""

    status: Literal["ok", "unavailable"]
    parts: dict[str, bool]
    down: list[str] = []
    error: ErrorDetail | None = None


class Message(Answer):
    """A live-push message of `/ws/videos` (docs/api.md §3)."""

    type: Literal["snapshot", "update", "removed", "resync"]
    position: int | None = None
    epoch: str | None = None
    videos: list[Card] | None = None
    video: Card | None = None
    id: Id | None = None
