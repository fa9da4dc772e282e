"""The user's projects over HTTP: create, run a step, retry, delete; My Videos; the Studio."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..application import Studio
from ..domain.assets import ASSET_LABELS, label_of
from ..domain.failures import failure_message
from ..domain.project import Project
from ..notation import utc_iso
from ..projections import project_card
from .auth import WRITERS
from .endpoints import Call, Endpoint, min_position
from .models import (
    Card,
    IdeasRequest,
    NewProject,
    NoFields,
    Rename,
    ScriptRequest,
    StudioView,
    VideoList,
)

Command = Callable[[Studio, UUID, UUID, str], Project]


def utc_text(text: object) -> str | None:
    """An ISO 8601 time as cards write it (UTC, `Z`); None when it is not a time."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def studio_view(project: Project, labels: Mapping[str, str] = ASSET_LABELS) -> dict[str, Any]:
    """The Studio page's view of a project; `labels` name the asset kinds (plug-ins' too)."""
    ledger = project.reconciliation()
    failure = project.failure
    return {
        **project_card(project),
        "brief": project.brief,
        "ideas": project.ideas,
        "script": project.script,
        "scenes": project.scenes,
        "assets": [
            {
                "id": str(asset["id"]),
                "kind": str(asset["kind"]),
                "label": label_of(str(asset["kind"]), labels),
                "url": f"/api/assets/{asset['id']}",
                "content_type": asset.get("content_type"),
                "created_at": utc_text(asset.get("created_at")) or utc_iso(project.modified_on),
            }
            for asset in project.assets
        ],
        "add_ons": [
            {
                "name": addon["step"],
                "state": addon["state"],
                "message": _addon_message(addon),
            }
            for addon in project.addons.values()
        ],
        "failure": None
        if failure is None
        else {
            "step": failure["step"],
            "code": failure["code"],
            "message": failure_message(failure["code"], failure["step"]),
            "attempts": failure["attempts"],
            "failed_at": utc_text(failure.get("failed_at")),
        },
        "credits": {
            "reserved": ledger.reserved,
            "charged": ledger.charged,
            "released": ledger.released,
            "still_reserved": ledger.still_reserved,
            "consistent": ledger.consistent,
        },
        "costs": project.step_costs(),
    }


def _addon_message(addon: dict[str, Any]) -> str | None:
    """What a person reads of an add-on that did not run or failed."""
    failure = addon.get("failure")
    if failure is None:
        return None
    if addon["state"] == "skipped":
        return "Not run: the balance could not cover it."
    return failure_message(str(failure["code"]), str(addon["step"]))


async def _command(call: Call, command: Command) -> Card:
    principal, id = call.principal, call.project_id()
    project = await call.command(
        lambda studio: command(studio, principal.account_id, id, principal.actor)
    )
    return Card.model_validate(project_card(project))


async def create_project(call: Call) -> Card:
    draft = call.parsed(NewProject)
    principal = call.principal
    project = await call.command(
        lambda studio: studio.create_project(
            principal.account_id,
            title=draft.title,
            format=draft.format,
            brief=draft.brief,
            autopilot=draft.autopilot,
            actor=principal.actor,
        )
    )
    return Card.model_validate(project_card(project))


async def request_ideas(call: Call) -> Card:
    count = call.parsed(IdeasRequest).count
    return await _command(
        call,
        lambda studio, owner, id, actor: studio.request_ideas(owner, id, count=count, actor=actor),
    )


async def request_script(call: Call) -> Card:
    idea = call.parsed(ScriptRequest).idea
    return await _command(
        call,
        lambda studio, owner, id, actor: studio.request_script(owner, id, idea=idea, actor=actor),
    )


async def request_scenes(call: Call) -> Card:
    return await _command(
        call, lambda studio, owner, id, actor: studio.request_scenes(owner, id, actor=actor)
    )


async def request_render(call: Call) -> Card:
    return await _command(
        call, lambda studio, owner, id, actor: studio.request_render(owner, id, actor=actor)
    )


async def retry(call: Call) -> Card:
    return await _command(
        call, lambda studio, owner, id, actor: studio.retry(owner, id, actor=actor)
    )


async def cancel(call: Call) -> Card:
    return await _command(
        call, lambda studio, owner, id, actor: studio.cancel(owner, id, actor=actor)
    )


async def rename_project(call: Call) -> Card:
    title = call.parsed(Rename).title
    return await _command(
        call,
        lambda studio, owner, id, actor: studio.rename_project(owner, id, title=title, actor=actor),
    )


async def delete_project(call: Call) -> Response:
    await _command(
        call, lambda studio, owner, id, actor: studio.delete_project(owner, id, actor=actor)
    )
    return Response(status_code=204)


async def list_videos(call: Call) -> Response:
    # Waited for already (`Endpoint.reads`); a cached answer older than it is not reused.
    at_least = min_position(call.request) or 0
    body = await run_in_threadpool(call.web.video_lists.answer, call.principal.account_id, at_least)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


async def show_project(call: Call) -> StudioView:
    principal, id, studio = call.principal, call.project_id(), call.web.studio
    if principal.role == "auditor":
        project = await run_in_threadpool(studio.project, id)
    else:
        project = await run_in_threadpool(studio.project_of, principal.account_id, id)
    return StudioView.model_validate(studio_view(project, call.web.assets.kinds))


_STEP_ERRORS = (402, 404, 409, 422)
ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/projects",
        create_project,
        "Create a project (a draft, or with autopilot running every step)",
        status=201,
        body=NewProject,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=(402,),
    ),
    Endpoint(
        "POST",
        "/api/projects/{id}/ideas",
        request_ideas,
        "Generate ad concepts",
        status=202,
        body=IdeasRequest,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=_STEP_ERRORS,
    ),
    Endpoint(
        "POST",
        "/api/projects/{id}/script",
        request_script,
        "Write the ad script (from an idea)",
        status=202,
        body=ScriptRequest,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=_STEP_ERRORS,
    ),
    Endpoint(
        "POST",
        "/api/projects/{id}/scenes",
        request_scenes,
        "Break the script into scenes",
        status=202,
        body=NoFields,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=_STEP_ERRORS,
    ),
    Endpoint(
        "POST",
        "/api/projects/{id}/render",
        request_render,
        "Render clips, voiceover and the final video, with no stop",
        status=202,
        body=NoFields,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=_STEP_ERRORS,
    ),
    Endpoint(
        "POST",
        "/api/projects/{id}/retry",
        retry,
        "Retry the step that failed",
        status=202,
        body=NoFields,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=_STEP_ERRORS,
    ),
    Endpoint(
        "POST",
        "/api/projects/{id}/cancel",
        cancel,
        "Stop the step in flight: the project fails with `failure.code` `cancelled`, nothing"
        " more is requested or charged, what was reserved for undone work is released;"
        " `retry` resumes from the cancelled step",
        status=202,
        body=NoFields,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=(404, 409),
    ),
    Endpoint(
        "PATCH",
        "/api/projects/{id}",
        rename_project,
        "Rename a project (the title's rules are those of create; personal text, sealed and"
        " erasable like the first title); the same title records nothing",
        status=200,
        body=Rename,
        answer=Card,
        roles=WRITERS,
        stores=True,
        errors=(404,),
    ),
    Endpoint(
        "DELETE",
        "/api/projects/{id}",
        delete_project,
        "Soft-delete a project (its history and credits are kept); a project with a step in"
        " flight is cancelled first",
        status=204,
        roles=WRITERS,
        stores=True,
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/api/videos",
        list_videos,
        "My Videos: every card, newest first, with the change-feed position",
        answer=VideoList,
        tag="videos",
        reads=("videos",),
    ),
    Endpoint(
        "GET",
        "/api/projects/{id}",
        show_project,
        "The Studio view of a project (auditors: any project, deleted too)",
        answer=StudioView,
        errors=(404,),
        reads=("videos",),
    ),
)
