"""Auditors and support over HTTP: a project's whole history, the soft-delete view, restoring."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from starlette.concurrency import run_in_threadpool

from ..application import Studio
from ..kafka.envelope import jsonable
from ..kafka.relay import event_id
from ..projections import project_card
from ..projections.videos import utc_iso
from .endpoints import Call, Endpoint
from .models import AuditTrail, Card, DeletedList

AUDITORS = ("auditor",)
SUPPORT = ("support",)


def audit_trail(studio: Studio, project_id: UUID) -> dict[str, Any]:
    """Every stored event of a project, deleted or not, in order, and its credit reconciliation."""
    project = studio.project(project_id)
    events = []
    for event in studio.events.get(project_id):
        assert isinstance(event, Aggregate.Event)
        data = jsonable(studio.event_state(event))
        events.append(
            {
                "event_id": str(event_id(project_id, event.originator_version)),
                "version": event.originator_version,
                "type": type(event).__name__,
                "occurred_at": utc_iso(event.timestamp),
                "actor": data.get("actor"),
                "data": data,
            }
        )
    ledger = project.reconciliation()
    return {
        "project_id": str(project.id),
        "owner_id": str(project.owner_id),
        "title": project.title,
        "status": str(project.status),
        "deleted": project.deleted,
        "events": events,
        "reconciliation": {
            "reserved": ledger.reserved,
            "charged": ledger.charged,
            "released": ledger.released,
            "still_reserved": ledger.still_reserved,
            "consistent": ledger.consistent,
        },
    }


async def audit_project(call: Call) -> AuditTrail:
    trail = await run_in_threadpool(audit_trail, call.web.studio, call.project_id())
    return AuditTrail.model_validate(trail)


async def deleted_projects(call: Call) -> DeletedList:
    deleted = await run_in_threadpool(call.web.read_models.deleted.deleted_projects)
    return DeletedList.model_validate({"deleted": deleted})


async def restore_project(call: Call) -> Card:
    id, actor = call.project_id(), call.principal.actor
    project = await run_in_threadpool(lambda: call.web.studio.restore_project(id, actor=actor))
    return Card.model_validate(project_card(project))


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/audit/projects/{id}",
        audit_project,
        "A project's whole event history, in order, and its credit reconciliation",
        answer=AuditTrail,
        roles=AUDITORS,
        errors=(404,),
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
        tag="support",
    ),
)
