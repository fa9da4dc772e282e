"""Auditors and support over HTTP and the live push, on a real server, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

import httpx
import pytest
import websockets
from audits import project_audit
from histories import edit_stored_event
from starlette.routing import Route
from web_server import Site, json_of, site, site_settings, wait_for
from websockets.asyncio.client import ClientConnection

from aytada_es.domain.project import Project
from aytada_es.web.app import ENDPOINTS

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"title": "Sparkling water", "format": "9:16", "brief": "Real fruit, no sugar."}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
QUIET_S = 0.5


def connect(url: str, token: str) -> websockets.connect:
    return websockets.connect(
        f"{url}/ws/videos", additional_headers={"Authorization": f"Bearer {token}"}
    )


async def receive(ws: ClientConnection, timeout_s: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
    return message


async def until(ws: ClientConnection, check: Any) -> dict[str, Any]:
    """The first message that passes the check."""
    while not check(message := await receive(ws)):
        pass
    return message


async def nothing_about(ws: ClientConnection, project_id: str) -> None:
    """No message about the project arrives for a while."""
    try:
        while True:
            message = await receive(ws, QUIET_S)
            assert project_id not in (message.get("id"), (message.get("video") or {}).get("id"))
    except TimeoutError:
        pass


def _anchored(chain: dict[str, Any]) -> dict[str, Any]:
    return {k: chain[k] for k in ("anchors", "anchor_problems", "anchored_version")}


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = json_of(answer)["error"]
    assert error["code"] == code and error["message"]
    return error


async def completed_project(site: Site, http: httpx.AsyncClient, title: str) -> str:
    card = json_of(
        await http.post("/api/projects", json={**BRIEF, "title": title, "autopilot": True})
    )

    async def done() -> bool:
        return bool(json_of(await http.get(f"/api/projects/{card['id']}"))["status"] == "completed")

    await wait_for(done, 60, f"{title} to complete")
    project_id: str = card["id"]
    return project_id


async def lists(http: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a user's pages list."""
    videos = json_of(await http.get("/api/videos"))
    return {
        "videos": videos["videos"],
        "scripts": json_of(await http.get("/api/scripts"))["scripts"],
        "images": json_of(await http.get("/api/images"))["images"],
    }


# ---- the audit endpoint --------------------------------------------------------------------------


async def test_the_audit_endpoint_answers_the_replayed_history_at_any_version(site: Site) -> None:
    _, token = site.user()
    _, auditor_token = site.user("auditor")
    async with site.client(token) as http, site.client(auditor_token) as auditor:
        id = await completed_project(site, http, "Audited")
        assert (await http.delete(f"/api/projects/{id}")).status_code == 204
        await site.settled()
        studio = site.system.studio
        latest = studio.project(UUID(id)).version

        trail = json_of(await auditor.get(f"/api/audit/projects/{id}"))
        # The endpoint also compares the read models, which have applied every event.
        # And it checks the chain against the anchors the relay role wrote down.
        chain = trail["chain"]
        assert chain["verified"] and not chain["anchor_problems"]
        assert trail == {
            **project_audit(studio, UUID(id)),
            "read_models_compared": True,
            "chain": {**project_audit(studio, UUID(id))["chain"], **_anchored(chain)},
        }
        assert trail["deleted"] is True and trail["passed"] is True and not trail["findings"]
        assert [e["version"] for e in trail["events"]] == list(range(1, latest + 1))
        positions = [e["position"] for e in trail["events"]]
        assert positions == sorted(set(positions))
        recorded = [e["data"] for e in trail["events"] if e["type"] == "GenerationRecorded"]
        assert {g["step"] for g in recorded} == {
            "ideas",
            "script",
            "scenes",
            "video",
            "voiceover",
            "stitching",
        }
        assert all(g["provider"] and g["units"] >= 0 and g["credits"] >= 0 for g in recorded)

        then = json_of(await auditor.get(f"/api/audit/projects/{id}", params={"at_version": 3}))
        replayed = project_audit(studio, UUID(id), at_version=3)
        assert then == {**replayed, "chain": {**replayed["chain"], **_anchored(then["chain"])}}
        assert then["status"] == "generating_ideas" and len(then["events"]) == 3

        before = site.stored()
        for bad in ("0", "-1", "abc", "1.5", "", str(latest + 1), "9" * 30):
            answer = await auditor.get(f"/api/audit/projects/{id}", params={"at_version": bad})
            assert set(assert_error(answer, 422, "invalid_input")["fields"]) == {"at_version"}
        assert site.stored() == before
        assert_error(await http.get(f"/api/audit/projects/{id}"), 403, "forbidden")


async def test_an_event_edited_in_the_database_fails_the_audit_endpoint_at_that_event(
    site: Site,
) -> None:
    _, token = site.user()
    _, auditor_token = site.user("auditor")
    async with site.client(token) as http, site.client(auditor_token) as auditor:
        id = await completed_project(site, http, "Tampered")
        studio = site.system.studio
        charged = next(
            e
            for e in studio.events.get(UUID(id))
            if isinstance(e, Project.CreditsCharged) and e.step == "stitching"
        )
        edit_stored_event(
            studio, UUID(id), charged.originator_version, b'"amount":5', b'"amount":50'
        )

        trail = json_of(await auditor.get(f"/api/audit/projects/{id}"))
        assert trail["chain"]["verified"] is False
        assert trail["chain"]["first_bad_version"] == charged.originator_version
        assert trail["passed"] is False
        assert trail["events"][charged.originator_version - 1]["data"]["amount"] == 50
        assert trail["reconciliation"]["consistent"] is False  # 50 charged of 5 reserved


async def test_the_openapi_document_shows_the_audit_parameter_and_the_new_fields(
    site: Site,
) -> None:
    async with site.client() as http:
        document = json_of(await http.get("/openapi.json"))
    audit = document["paths"]["/api/audit/projects/{id}"]["get"]
    [at_version] = [p for p in audit["parameters"] if p["name"] == "at_version"]
    assert at_version["in"] == "query" and at_version["schema"] == {"type": "integer", "minimum": 1}
    assert {"403", "404", "422"} <= set(audit["responses"])
    schemas = document["components"]["schemas"]
    assert {"verified", "first_bad_version", "head"} <= set(schemas["ChainCheck"]["properties"])
    assert {"chain", "project", "passed", "at_version"} <= set(schemas["AuditTrail"]["properties"])
    assert "position" in schemas["AuditEvent"]["properties"]
    movement = schemas["CreditMovement"]["properties"]
    assert {"position", "project_title", "project_deleted"} <= set(movement)


# ---- soft delete and restore ---------------------------------------------------------------------


async def test_a_deleted_project_leaves_every_list_and_comes_back_identical_when_restored(
    site: Site,
) -> None:
    owner, token = site.user()
    _, support_token = site.user("support")
    _, auditor_token = site.user("auditor")
    async with (
        site.client(token) as http,
        site.client(support_token) as support,
        site.client(auditor_token) as auditor,
    ):
        await completed_project(site, http, "Kept")
        gone = await completed_project(site, http, "Gone")
        await site.settled()
        before = await lists(http)
        card = next(v for v in before["videos"] if v["id"] == gone)
        assert [s for s in before["scripts"] if s["project_id"] == gone]
        images = [i for i in before["images"] if i["project_id"] == gone]
        assert images
        credits = json_of(await http.get("/api/credits"))

        async with connect(site.ws_url, token) as ws:
            snapshot = await receive(ws)
            assert card in snapshot["videos"]
            assert (await http.delete(f"/api/projects/{gone}")).status_code == 204
            removed = await until(ws, lambda m: m["type"] == "removed")
            assert removed == {"type": "removed", "position": removed["position"], "id": gone}

            await site.settled()
            hidden = await lists(http)
            assert hidden == {
                "videos": [v for v in before["videos"] if v["id"] != gone],
                "scripts": [s for s in before["scripts"] if s["project_id"] != gone],
                "images": [i for i in before["images"] if i["project_id"] != gone],
            }
            assert_error(await http.get(f"/api/projects/{gone}"), 404, "not_found")
            assert_error(await http.get(images[0]["url"]), 404, "not_found")

            project = site.system.studio.project(UUID(gone))
            for staff in (support, auditor):
                deleted = json_of(await staff.get("/api/support/deleted"))["deleted"]
                assert [d for d in deleted if d["project_id"] == gone] == [
                    {
                        "project_id": gone,
                        "owner_id": str(owner),
                        "owner_name": site.system.studio.account(owner).name,
                        "title": "Gone",
                        "deleted_at": project.deleted_at.isoformat().replace("+00:00", "Z"),  # type: ignore[union-attr]
                        "deleted_by": f"user:{site.system.studio.account(owner).name}",
                        "position": removed["position"],
                    }
                ]
            kept = json_of(await http.get("/api/credits"))
            # A delete moves no credit, and the history keeps the project's movements.
            assert kept == {
                **credits,
                "history": [
                    {**m, "project_deleted": m["project_id"] == gone or m["project_deleted"]}
                    for m in credits["history"]
                ],
            }
            assert any(m["project_id"] == gone for m in kept["history"])

            restored = await support.post(f"/api/support/projects/{gone}/restore")
            assert restored.status_code == 200 and json_of(restored) == card
            update = await until(ws, lambda m: m["type"] == "update")
            assert update["video"] == card and update["position"] > removed["position"]

        await site.settled()
        assert await lists(http) == before
        assert (await http.get(images[0]["url"])).status_code == 200
        deleted = json_of(await support.get("/api/support/deleted"))["deleted"]
        assert gone not in [d["project_id"] for d in deleted]
        assert json_of(await http.get("/api/credits")) == credits


async def test_the_statement_marks_the_movements_of_a_deleted_project(site: Site) -> None:
    _, token = site.user(credits=500)
    async with site.client(token) as http:
        id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
        assert (await http.post(f"/api/projects/{id}/ideas")).status_code == 202
        await site.settled()
        assert (await http.delete(f"/api/projects/{id}")).status_code == 204
        await site.settled()
        statement = json_of(await http.get("/api/credits"))
    movements = [m for m in statement["history"] if m["project_id"] == id]
    assert {"reserve", "charge"} <= {m["kind"] for m in movements}
    assert {(m["project_title"], m["project_deleted"]) for m in movements} == {
        (BRIEF["title"], True)
    }
    assert statement["history"][0]["kind"] == "grant"
    assert statement["history"][-1]["balance"] == statement["balance"] < 500


async def test_a_project_deleted_while_running_sends_no_update_until_restored(
    site: Site,
) -> None:
    _, token = site.user()
    _, support_token = site.user("support")
    async with site.client(token) as http, site.client(support_token) as support:
        id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
        await site.settled()
        async with connect(site.ws_url, token) as ws:
            await receive(ws)  # the snapshot
            await site.system.kill("stage:ideas")  # so that ideas come after the delete
            try:
                assert (await http.post(f"/api/projects/{id}/ideas")).status_code == 202
                assert (await http.delete(f"/api/projects/{id}")).status_code == 204
            finally:
                site.system.revive("stage:ideas")
            removed = await until(ws, lambda m: m["type"] == "removed")
            assert removed["id"] == id
            await site.settled(60)
            # The delete cancelled the step in flight: the revived stage finds nothing to do.
            types = [type(e).__name__ for e in site.system.studio.events.get(UUID(id))]
            assert types[-2:] == ["CreditsReleased", "ProjectDeleted"]
            assert "StepCancelled" in types and "IdeasGenerated" not in types
            await nothing_about(ws, id)

            restored = json_of(await support.post(f"/api/support/projects/{id}/restore"))
            assert (restored["status"], restored["action"]) == ("failed", "retry")
            update = await until(ws, lambda m: m["type"] == "update")
            assert update["video"] == restored and update["position"] > removed["position"]


# ---- auditors change nothing ---------------------------------------------------------------------


async def test_every_write_route_answers_403_to_an_auditor_and_changes_nothing(
    site: Site,
) -> None:
    _, token = site.user()
    _, auditor_token = site.user("auditor")
    async with site.client(token) as http:
        id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
        deleted = json_of(await http.post("/api/projects", json=BRIEF))["id"]
        assert (await http.delete(f"/api/projects/{deleted}")).status_code == 204
    public = {e.path for e in ENDPOINTS if e.roles is None and e.method in WRITES}
    assert public == {"/login", "/logout"}  # signing in and out changes no project or account
    writes = [
        (method, route)
        for route in site.served.app.routes
        if isinstance(route, Route) and route.path not in public
        for method in sorted((route.methods or set()) & WRITES)
    ]
    assert len(writes) >= 8 and ("POST", "/api/support/projects/{id}/restore") in {
        (m, r.path) for m, r in writes
    }
    await site.settled()
    before = site.stored()
    async with site.client(auditor_token) as auditor:
        for project in (id, deleted):
            for method, route in writes:
                values = {name: project for name in route.param_convertors}
                path = route.path.format(**values)
                answer = await auditor.request(method, path, json={})
                assert_error(answer, 403, "forbidden")
    assert site.stored() == before
