"""Auditors and support over HTTP: audits, the soft-delete view, restoring, adjusting credits."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from ..adapters.anchors import AnchorLog
from ..application import Studio
from ..audit.account import account_audit
from ..audit.project import project_audit
from ..audit.reports import AccountAudit, AuditTrail
from ..domain.errors import BadInput
from ..parsing import whole_number
from ..projections import project_card
from ..projections.audited import ReadSideOf
from .endpoints import Call, Endpoint, Parameter
from .models import Adjusted, Adjustment, Card, DeletedList

AUDITORS = ("auditor",)
SUPPORT = ("support",)


def _at_version(call: Call) -> int | None:
    """`?at_version=N`: a whole number, 1 or more (the audit checks it against the history)."""
    raw = call.request.query_params.get("at_version")
    if raw is None:
        return None
    version = whole_number(raw)
    if version is None or version < 1:
        raise BadInput("bad at_version", {"at_version": "a version of the project, 1 or more"})
    return version


async def audit_project(call: Call) -> AuditTrail:
    id, at_version = call.project_id(), _at_version(call)
    read_side = ReadSideOf(call.web.read_models)
    anchors = AnchorLog(call.web.service.settings.anchors_dir)
    return await run_in_threadpool(
        project_audit, call.web.studio, id, at_version, read_side, anchors
    )


def _at(call: Call) -> datetime | None:
    """`?at=TIME`: an ISO 8601 time; one without a zone is UTC."""
    raw = call.request.query_params.get("at")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadInput("bad at", {"at": "an ISO 8601 time, e.g. 2026-01-31T12:00:00Z"}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def audit_account(call: Call) -> AccountAudit:
    user, at = call.request.path_params["user"], _at(call)
    read_side = ReadSideOf(call.web.read_models)
    anchors = AnchorLog(call.web.service.settings.anchors_dir)
    return await run_in_threadpool(account_audit, call.web.studio, user, at, read_side, anchors)


async def adjust_credits(call: Call) -> Adjusted:
    user, body, actor = (
        call.request.path_params["user"],
        call.parsed(Adjustment),
        call.principal.actor,
    )

    def adjust(studio: Studio) -> Adjusted:
        studio.adjust_credits(
            user, body.amount, reason=body.reason, ticket=body.ticket, actor=actor
        )
        account = studio.account_named(user)
        return Adjusted(
            name=account.name,
            amount=body.amount,
            reason=body.reason,
            ticket=body.ticket,
            actor=actor,
            balance=account.balance,
            reserved=account.reserved,
        )

    return await call.command(adjust)


async def deleted_projects(call: Call) -> DeletedList:
    deleted = await run_in_threadpool(call.web.read_models.deleted.deleted_projects)
    return DeletedList.model_validate({"deleted": deleted})


async def restore_project(call: Call) -> Card:
    id, actor = call.project_id(), call.principal.actor
    project = await call.command(lambda studio: studio.restore_project(id, actor=actor))
    return Card.model_validate(project_card(project))


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/audit/projects/{id}",
        audit_project,
        "A project's whole event history, in order, its hash chain checked, its credit"
        " reconciliation; `?at_version=N`: the project as it was after version N",
        answer=AuditTrail,
        roles=AUDITORS,
        errors=(404, 422),
        query={
            "at_version": Parameter(
                "show the history up to this version and the project as it was after it",
                {"type": "integer", "minimum": 1},
            )
        },
        tag="audit",
    ),
    Endpoint(
        "GET",
        "/api/audit/accounts/{user}",
        audit_account,
        "An account's audit: every credit movement with its project and the running balance,"
        " each project's ledger, chain and findings; `?at=TIME`: the account as it stood then",
        answer=AccountAudit,
        roles=AUDITORS,
        errors=(404, 422),
        query={
            "at": Parameter(
                "the movements up to this time and the balance they leave",
                {"type": "string", "format": "date-time"},
            )
        },
        tag="audit",
    ),
    Endpoint(
        "POST",
        "/api/support/accounts/{user}/adjustments",
        adjust_credits,
        "Settle a dispute: give credits back (`amount` > 0) or take them (< 0, at most the free"
        " balance), with a reason and a ticket; an audited movement of the account",
        status=201,
        body=Adjustment,
        answer=Adjusted,
        roles=SUPPORT,
        errors=(404, 422),
        stores=True,
        tag="support",
    ),
    Endpoint(
        "GET",
        "/api/support/deleted",
        deleted_projects,
        "The soft-delete view: every deleted project, the latest deletion first",
        answer=DeletedList,
        roles=(*SUPPORT, *AUDITORS),
        tag="support",
    ),
    Endpoint(
        "POST",
        "/api/support/projects/{id}/restore",
        restore_project,
        "Restore a soft-deleted project to its owner's lists, as it was",
        answer=Card,
        roles=SUPPORT,
        errors=(404, 409),
        stores=True,
        tag="support",
    ),
)
