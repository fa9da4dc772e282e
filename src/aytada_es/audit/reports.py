"""The audit's reports as pydantic models: the one shape the CLI's `--json` and the API answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
MovementKind = Literal["grant", "reserve", "charge", "release", "adjust"]
FindingKind = Literal[
    "charged_after_delete",
    "charged_after_cancel",
    "held_after_failure",
    "held_after_delete",
    "charged_for_failed_step",
    "read_model_disagrees",
]


class Report(BaseModel):
    """A part of an audit report: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


class Reconciliation(Report):
    """A project's credit ledger: `charged + released + still_reserved == reserved`."""

    reserved: int
    charged: int
    released: int
    still_reserved: int
    consistent: bool


class ChainCheck(Report):
    """The aggregate's hash chain: whether every stored event still matches its hash."""

    verified: bool
    first_bad_version: int | None = Field(
        description="the first stored event that does not match (edited, removed, reordered)"
    )
    events: int
    head: str | None = Field(description="the hash the latest event claims")
    anchors: int = Field(0, description="the heads written down outside the store, checked")
    anchor_problems: list[str] = Field(
        default_factory=list, description="where the stored chain differs from its anchors"
    )
    anchored_version: int | None = Field(
        None, description="the newest anchored version: later events are covered by no anchor yet"
    )


class AuditEvent(Report):
    """One stored event of a project, as the Kafka envelope carries it, with its position.

    An event that no longer decodes has null `occurred_at` and `actor` and empty `data`.
    """

    event_id: Id
    version: int
    position: int
    type: str
    occurred_at: Moment | None
    actor: str | None
    data: dict[str, Any]


class Finding(Report):
    """Something unfair the history shows though it is consistent, with the events that show it."""

    kind: FindingKind
    message: str
    step: str | None = None
    amount: int = 0
    versions: list[int] = Field(
        default=[], description="the versions of the aggregate's events that show it"
    )
    event_ids: list[Id] = []


class AuditTrail(Report):
    """`GET /api/audit/projects/{id}`: the whole history, in order, and the reconciliation.

    With `?at_version=N`: the events up to N and the project as it was after N. Project
    fields are null only when not even its first event can be replayed. `passed`: the chain
    is verified, every event replays, the credits reconcile and there is no finding.
    """

    project_id: Id
    owner_id: Id | None
    owner_name: str | None
    title: str | None
    status: str | None
    deleted: bool | None
    latest_version: int
    at_version: int | None
    project: dict[str, Any] | None
    events: list[AuditEvent]
    reconciliation: Reconciliation
    chain: ChainCheck
    replay_error: str | None
    findings: list[Finding] = []
    read_models_compared: bool = Field(
        default=False,
        description="whether the credits read model's ledger was compared with the replay",
    )
    passed: bool


class StatementLine(Report):
    """One credit movement of an account with the balance and reserved credits after it.

    An adjustment (`kind` `adjust`) carries its signed amount, its `reason` and its `ticket`.
    """

    position: int
    version: int
    at: Moment
    kind: MovementKind
    actor: str | None = None
    project_id: Id | None
    project_title: str | None
    project_deleted: bool | None
    project_deleted_at: Moment | None = None
    step: str | None
    amount: int
    balance: int
    reserved: int
    reason: str | None = None
    ticket: str | None = None
    head: str | None = Field(
        None, description="the chain head the movement was recorded under (its event's hash)"
    )


class ProjectCheck(Report):
    """A project an account's movements name: its own ledger and whether the two agree."""

    project_id: Id
    title: str | None
    deleted: bool | None
    deleted_at: Moment | None = None
    deleted_by: str | None = None
    reconciliation: Reconciliation | None
    consistent: bool
    matches_account: bool
    chain: ChainCheck
    findings: list[Finding] = []


class AccountAudit(Report):
    """`GET /api/audit/accounts/{user}`: every credit movement, each project checked.

    With `--at TIME`: the movements up to TIME and the balance then (`at`).
    """

    account_id: Id
    name: str
    role: str
    at: Moment | None = None
    balance: int
    reserved: int
    history: list[StatementLine]
    projects: list[ProjectCheck]
    consistent: bool
    chain: ChainCheck
    unreadable_versions: list[int]
    findings: list[Finding] = []
    read_models_compared: bool = Field(
        default=False,
        description="whether the read models' balances were compared with the replay",
    )
    passed: bool


class FieldChange(Report):
    """One field of the project that differs between the two versions."""

    field: str
    before: Any
    after: Any


class VersionDiff(Report):
    """`audit PROJECT_ID --diff A B`: what changed from version A to version B."""

    project_id: Id
    from_version: int
    to_version: int
    changes: list[FieldChange]
    events: list[AuditEvent] = Field(description="the events after A up to B")
