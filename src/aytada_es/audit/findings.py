"""What a history shows that is unfair though every sum adds up: the audit's findings.

A finding names the events that show it. Any finding fails the audit (exit 1): the books
may reconcile, but the customer was charged or held for something they did not get.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from ..domain.project import Project
from ..domain.status import Status
from .reports import AuditEvent, Finding, Reconciliation

LEDGER_FIELDS = ("reserved", "charged", "released", "still_reserved")


class ReadSide(Protocol):
    """What the read models say, given by a caller that holds them: the audit reads none."""

    def applied(self) -> int:
        """The position of the log every read model compared here has applied."""

    def ledger(self, project_id: UUID) -> Mapping[str, int] | None:
        """A project's reserved, charged, released and still reserved credits."""

    def balances(self, account_id: UUID) -> Mapping[str, tuple[int, int] | None]:
        """An account's free balance and reserved credits, as each read model holds them."""


def project_findings(
    timeline: Sequence[AuditEvent],
    events: Sequence[Aggregate.Event | None],
    project: Project | None,
    *,
    to_the_end: bool = True,
) -> list[Finding]:
    """Charges after a delete, a cancel or a failure of their step; credits held at the end.

    Credits held are a finding only at the end of the history (`to_the_end`): a command that
    fails a step writes its release just after the failure.
    """
    findings: list[Finding] = []
    deleted_at: AuditEvent | None = None
    cancelled: dict[str, AuditEvent] = {}  # step -> its StepCancelled, until a step is requested
    failed: dict[str, AuditEvent] = {}  # step -> its StepFailed, until it is requested again
    reserved: dict[str, list[AuditEvent]] = {}  # step -> the reservations it still holds
    open_: dict[str, int] = {}  # step -> the credits it still holds
    for shown, event in zip(timeline, events, strict=True):
        if isinstance(event, Project.ProjectDeleted):
            deleted_at = shown
        elif isinstance(event, Project.ProjectRestored):
            deleted_at = None
        elif isinstance(event, Project.StepCancelled):
            cancelled[event.step] = shown
        elif isinstance(event, Project.StepFailed | Project.AddOnFailed):
            failed[event.step] = shown
        elif isinstance(event, Project.StepRequested | Project.AddOnRequested):
            step = event.step if isinstance(event, Project.AddOnRequested) else event.STEP.value
            if isinstance(event, Project.StepRequested):
                cancelled.clear()  # the owner set the pipeline going again
            failed.pop(step, None)
        elif isinstance(event, Project.CreditsReserved):
            reserved.setdefault(event.step, []).append(shown)
            open_[event.step] = open_.get(event.step, 0) + event.amount
        elif isinstance(event, Project.CreditsReleased | Project.CreditsCharged):
            open_[event.step] = open_.get(event.step, 0) - event.amount
            if open_[event.step] <= 0:  # what the step held is settled
                reserved.pop(event.step, None)
        if isinstance(event, Project.CreditsCharged):
            finding = _unfair_charge(event, shown, deleted_at, cancelled, failed)
            if finding is not None:
                findings.append(finding)
    if to_the_end and project is not None and project.open_reservations:
        kind = "held_after_delete" if project.deleted else "held_after_failure"
        if project.deleted or project.status is Status.FAILED:
            why = "deleted" if project.deleted else "failed"
            for step, amount in project.open_reservations.items():
                shown_by = reserved.get(step, [])
                findings.append(
                    Finding(
                        kind=kind,
                        message=f"{_credits(amount)} still held for {step} on a {why} project",
                        step=step,
                        amount=amount,
                        versions=[e.version for e in shown_by],
                        event_ids=[e.event_id for e in shown_by],
                    )
                )
    return findings


def _credits(amount: int) -> str:
    return f"{amount} credit" if amount == 1 else f"{amount} credits"


def _unfair_charge(
    charge: Project.CreditsCharged,
    shown: AuditEvent,
    deleted_at: AuditEvent | None,
    cancelled: dict[str, AuditEvent],
    failed: dict[str, AuditEvent],
) -> Finding | None:
    cause = None
    if deleted_at is not None:
        kind, cause, what = "charged_after_delete", deleted_at, "after the project was deleted"
    elif cancelled:
        cause = min(cancelled.values(), key=lambda e: e.version)
        kind, what = "charged_after_cancel", "after its work was cancelled"
    elif charge.step in failed:
        cause = failed[charge.step]
        kind, what = "charged_for_failed_step", "for a step that failed"
    if cause is None:
        return None
    return Finding(
        kind=kind,
        message=f"{_credits(charge.amount)} charged for {charge.step} {what} (v{cause.version})",
        step=charge.step,
        amount=charge.amount,
        versions=[cause.version, shown.version],
        event_ids=[cause.event_id, shown.event_id],
    )


def ledger_disagreement(
    read: ReadSide, project_id: UUID, replayed: Reconciliation, last_position: int
) -> list[Finding] | None:
    """The credits read model's ledger of the project, when it differs from the replay.

    None when the read models have not applied the project's last event: a lag is no finding.
    """
    if read.applied() < last_position:
        return None
    held = read.ledger(project_id) or {}  # none: the project never moved a credit
    shown = {k: held.get(k, 0) for k in LEDGER_FIELDS}
    truth = {k: getattr(replayed, k) for k in LEDGER_FIELDS}
    if shown == truth:
        return []
    return [
        Finding(
            kind="read_model_disagrees",
            message=f"the credits read model holds {shown}; the events say {truth}",
        )
    ]


def balance_disagreement(
    read: ReadSide, account_id: UUID, replayed: tuple[int, int], last_position: int
) -> list[Finding] | None:
    """The read models' balance and reserved credits of the account, when they differ.

    None when the read models have not applied the account's last event.
    """
    if read.applied() < last_position:
        return None
    return [
        Finding(
            kind="read_model_disagrees",
            message=f"the {name} read model holds balance and reserved {shown};"
            f" the events say {replayed}",
        )
        for name, shown in read.balances(account_id).items()
        if shown != replayed
    ]
