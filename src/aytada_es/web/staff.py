"""Auditors and support over HTTP: a project's whole history, the soft-delete view, restoring."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from ..adapters.anchors import AnchorLog
from ..audit import project_audit
from ..domain.errors import BadInput
from ..parsing import whole_number
from ..projections import project_card
from .endpoints import Call, Endpoint, Parameter
from .models import AuditTrail, Card, DeletedList

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
    anchors = AnchorLog(call.web.service.settings.anchors_dir)
    report = await run_in_threadpool(project_audit, call.web.studio, id, at_version, anchors)
    return AuditTrail.model_validate(report)


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
