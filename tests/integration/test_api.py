"""The HTTP API (docs/api.md §2) on a real server on loopback, over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from web_server import Site, json_of, site, site_settings, wait_for

from aytada_es.adapters.keys import session_key
from aytada_es.application import hash_token
from aytada_es.domain.errors import ConfigError
from aytada_es.domain.status import Status
from aytada_es.web.app import ENDPOINTS
from aytada_es.web.models import Card, CreditStatement, StudioView, VideoList

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

CARD_KEYS = set(Card.model_fields)
BRIEF = {"title": "Sparkling water", "format": "9:16", "brief": "Real fruit, no sugar."}


async def status_of(site: Site, token: str, project_id: str) -> str:
    async with site.client(token) as http:
        answer = await http.get(f"/api/projects/{project_id}")
    status: str = json_of(answer)["status"]
    return status


async def until_status(site: Site, token: str, project_id: str, *statuses: str) -> None:
    async def reached() -> bool:
        return await status_of(site, token, project_id) in statuses

    await wait_for(reached, 30, f"project {project_id} to be {statuses}")


def versions(site: Site, project_id: str, owner: UUID) -> tuple[int, int]:
    studio = site.system.studio
    project = studio.project(UUID(project_id))
    return project.version, studio.account(owner).version


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = json_of(answer)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
async def alice(site: Site) -> AsyncIterator[tuple[UUID, str, httpx.AsyncClient]]:
    owner, token = site.user()
    async with site.client(token) as http:
        yield owner, token, http


# ---- the document and health ----------------------------------------------------------------


async def test_openapi_lists_every_path_with_its_schemas(site: Site) -> None:
    async with site.client() as http:
        answer = await http.get("/openapi.json")
    document = json_of(answer)
    assert document["openapi"].startswith("3.1")
    for endpoint in ENDPOINTS:
        assert endpoint.method.lower() in document["paths"][endpoint.path], endpoint.path
    for path in (
        "/api/projects",
        "/api/projects/{id}/ideas",
        "/api/projects/{id}/script",
        "/api/projects/{id}/scenes",
        "/api/projects/{id}/render",
        "/api/projects/{id}/retry",
        "/api/projects/{id}",
        "/api/videos",
        "/api/scripts",
        "/api/images",
        "/api/assets/{asset_id}",
        "/api/credits",
        "/api/audit/projects/{id}",
        "/api/support/deleted",
        "/api/support/projects/{id}/restore",
        "/healthz",
        "/openapi.json",
        "/ws/videos",
        "/login",
        "/logout",
    ):
        assert path in document["paths"], path
    schemas = document["components"]["schemas"]
    assert {"Card", "VideoList", "StudioView", "NewProject", "ErrorBody"} <= set(schemas)
    create = document["paths"]["/api/projects"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewProject"
    }
    assert {"201", "401", "402", "413", "422"} <= set(create["responses"])


async def test_healthz_is_200_while_every_part_is_up_and_503_naming_a_stopped_one(
    site: Site,
) -> None:
    async with site.client() as http:
        answer = await http.get("/healthz")
        assert answer.status_code == 200, answer.text
        health = json_of(answer)
        assert health["status"] == "ok"
        assert {"store", "broker", "relay", "projections", "push"} <= set(health["parts"])
        assert all(health["parts"].values())
        await site.system.kill("relay")
        try:
            answer = await http.get("/healthz")
            assert answer.status_code == 503
            down = json_of(answer)
            assert down["status"] == "unavailable"
            assert down["parts"]["relay"] is False and down["down"] == ["relay"]
            assert down["error"]["code"] == "unavailable" and "relay" in down["error"]["message"]
        finally:
            site.system.revive("relay")
        assert (await http.get("/healthz")).status_code == 200


# ---- authentication ---------------------------------------------------------------------------


async def test_requests_without_valid_credentials_are_401(site: Site) -> None:
    async with site.client() as http:
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Basic dXNlcjpwdw=="},
            {"Authorization": "Bearer"},
            {"Cookie": "aytada_session=forged.99999999999.abc"},
        ):
            answer = await http.get("/api/videos", headers=headers)
            assert_error(answer, 401, "unauthenticated")
            assert answer.headers["www-authenticate"] == "Bearer"
        answer = await http.post("/api/projects", json=BRIEF)
        assert_error(answer, 401, "unauthenticated")


async def test_tokens_are_stored_only_as_hashes(site: Site) -> None:
    owner, token = site.user()
    studio = site.system.studio
    assert studio.account(owner).token_hash == hash_token(token)
    states = b"".join(n.state for n in studio.recorder.select_notifications(1, 100_000))
    assert token.encode() not in states
    assert hash_token(token).encode() in states


async def test_login_sets_an_httponly_samesite_strict_cookie_and_redirects(site: Site) -> None:
    _, token = site.user()
    async with site.client() as http:
        answer = await http.post("/login", data={"token": token})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/videos"
        cookie = answer.headers["set-cookie"]
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
        assert token not in cookie
        listed = await http.get("/api/videos")  # the client keeps the cookie
        assert listed.status_code == 200, listed.text
        answer = await http.post("/login", json={"token": token, "next": "/studio/x"})
        assert answer.headers["location"] == "/studio/x"
        answer = await http.post("/login", json={"token": token, "next": "//evil.example/"})
        assert answer.headers["location"] == "/dashboard/videos"
        await http.post("/logout", headers={"Origin": site.url})
        assert_error(await http.get("/api/videos"), 401, "unauthenticated")


async def test_the_root_sends_the_signed_in_to_my_videos_and_others_to_login(
    site: Site,
) -> None:
    _, token = site.user()
    async with site.client() as http:
        signed_out = await http.get("/")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/login"
        assert (await http.post("/login", data={"token": token})).status_code == 303
        signed_in = await http.get("/")
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/dashboard/videos"
    async with site.client(token) as http:  # a bearer token signs in as well as the cookie
        assert (await http.get("/")).headers["location"] == "/dashboard/videos"


async def test_a_bad_login_is_refused(site: Site) -> None:
    async with site.client() as http:
        assert_error(await http.post("/login", json={"token": "ayt_nope"}), 401, "unauthenticated")
        assert_error(await http.post("/login", json={}), 422, "invalid_input")
        form = await http.post("/login", data={"token": "ayt_nope", "next": "/dashboard/images"})
        assert form.status_code == 303
        assert form.headers["location"].startswith("/login?error=invalid_token")
        assert "set-cookie" not in form.headers
        foreign = await http.post("/login", json={"token": "x"}, headers={"Origin": "http://evil"})
        assert_error(foreign, 403, "forbidden")


async def test_a_cookie_authenticated_change_from_another_site_is_refused(site: Site) -> None:
    _, token = site.user()
    async with site.client() as http:
        assert (await http.post("/login", data={"token": token})).status_code == 303
        await site.settled()
        before = site.stored()
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {},  # a browser would say where it comes from
        ):
            answer = await http.post("/api/projects", json=BRIEF, headers=headers)
            assert_error(answer, 403, "forbidden")
        assert site.stored() == before
        host = site.url.removeprefix("http://")
        same = await http.post("/api/projects", json=BRIEF, headers={"Origin": f"http://{host}"})
        assert same.status_code == 201, same.text
        fetch = await http.post(
            "/api/projects", json=BRIEF, headers={"Sec-Fetch-Site": "same-origin"}
        )
        assert fetch.status_code == 201, fetch.text


# ---- projects --------------------------------------------------------------------------------


async def test_creating_a_project_answers_201_with_its_card_and_lists_it_newest_first(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, _, http = alice
    first = await http.post("/api/projects", json=BRIEF)
    assert first.status_code == 201, first.text
    card = json_of(first)
    assert set(card) == CARD_KEYS
    assert card["status"] == "draft" and card["action"] == "continue" and card["progress"] == 0
    assert card["created_at"].endswith("Z") and card["thumbnail_url"] is None
    second = json_of(await http.post("/api/projects", json={**BRIEF, "title": "Second"}))

    async def listed() -> bool:
        return len(json_of(await http.get("/api/videos"))["videos"]) == 2

    await wait_for(listed)
    videos = VideoList.model_validate(json_of(await http.get("/api/videos")))
    assert [v.id for v in videos.videos] == [second["id"], card["id"]]
    assert videos.poll_interval_s is None  # nothing active
    assert videos.position > 0


async def test_the_list_asks_for_polling_only_while_something_is_active(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, token, http = alice
    card = json_of(await http.post("/api/projects", json=BRIEF))
    started = json_of(await http.post(f"/api/projects/{card['id']}/ideas"))
    assert started["status"] == "generating_ideas"
    # The read model may already be past it; an active answer must ask for 8-second polling.
    listing = json_of(await http.get("/api/videos"))
    statuses = {v["status"] for v in listing["videos"]}
    active = any(Status(s).is_active for s in statuses)
    assert listing["poll_interval_s"] == (8 if active else None)
    await until_status(site, token, card["id"], "ideas_ready")

    async def idle() -> bool:
        listing = json_of(await http.get("/api/videos"))
        return (
            listing["poll_interval_s"] is None and listing["videos"][0]["status"] == "ideas_ready"
        )

    await wait_for(idle)


async def test_every_step_answers_202_and_the_project_completes_with_its_files(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, token, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    answer = await http.post(f"/api/projects/{id}/ideas", json={"count": 2})
    assert answer.status_code == 202 and json_of(answer)["status"] == "generating_ideas"
    await until_status(site, token, id, "ideas_ready")
    answer = await http.post(f"/api/projects/{id}/script", json={"idea": 1})
    assert answer.status_code == 202 and json_of(answer)["status"] == "generating_script"
    await until_status(site, token, id, "script_ready")
    answer = await http.post(f"/api/projects/{id}/scenes")
    assert answer.status_code == 202 and json_of(answer)["status"] == "generating_scenes"
    await until_status(site, token, id, "scenes_ready")
    answer = await http.post(f"/api/projects/{id}/render", json={})
    assert answer.status_code == 202 and json_of(answer)["status"] == "generating_video"
    await until_status(site, token, id, "completed")

    view = StudioView.model_validate(json_of(await http.get(f"/api/projects/{id}")))
    assert view.progress == 100 and view.action == "view" and view.failure is None
    assert len(view.ideas) == 2 and view.script is not None and view.scenes
    assert view.brief == BRIEF["brief"]
    assert view.credits.consistent and view.credits.still_reserved == 0
    assert view.credits.charged > 0
    kinds = {a.kind for a in view.assets}
    assert {"clip", "voiceover", "final_video", "thumbnail"} <= kinds
    final = next(a for a in view.assets if a.kind == "final_video")
    assert final.url == f"/api/assets/{final.id}" and final.created_at.endswith("Z")

    await site.settled()
    file = await http.get(final.url)
    assert file.status_code == 200 and file.content
    assert file.headers["content-type"].startswith(final.content_type or "")
    assert "attachment" not in file.headers.get("content-disposition", "")
    download = await http.get(final.url, params={"download": "1"})
    assert download.status_code == 200 and download.content == file.content
    assert download.headers["content-disposition"].startswith("attachment")

    scripts = json_of(await http.get("/api/scripts"))["scripts"]
    assert [s["project_id"] for s in scripts] == [id]
    images = json_of(await http.get("/api/images"))["images"]
    assert sorted(i["kind"] for i in images) == sorted(
        ["banner", "flyer", "product_shot"] + ["scene_still"] * len(view.scenes)
    )
    assert all(set(i) == {"id", "project_id", "kind", "url", "created_at"} for i in images)
    assert all(i["url"] == f"/api/assets/{i['id']}" and i["project_id"] == id for i in images)
    credits = CreditStatement.model_validate(json_of(await http.get("/api/credits")))
    assert credits.reserved == 0 and credits.balance == 10_000 - view.credits.charged
    assert [m.kind for m in credits.history][:2] == ["grant", "reserve"]


async def test_an_illegal_transition_is_409_and_changes_nothing(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, _, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    before = versions(site, id, owner)
    for step in ("render", "scenes", "retry"):
        error = assert_error(
            await http.post(f"/api/projects/{id}/{step}"), 409, "illegal_transition"
        )
        assert "draft" in error["message"]
    assert versions(site, id, owner) == before


async def test_a_short_balance_is_402_and_changes_nothing(site: Site) -> None:
    owner, token = site.user(credits=1)
    async with site.client(token) as http:
        id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
        before = versions(site, id, owner)
        error = assert_error(
            await http.post(f"/api/projects/{id}/ideas"), 402, "insufficient_credits"
        )
        assert "balance is 1" in error["message"]
        assert versions(site, id, owner) == before
        assert (
            await http.post("/api/projects", json={**BRIEF, "autopilot": True})
        ).status_code in (201,)


async def test_another_users_project_is_404_exactly_like_a_missing_one(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, _, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    before = versions(site, id, owner)
    _, bob_token = site.user()
    async with site.client(bob_token) as bob:
        for project in (id, str(uuid4()), "not-a-uuid"):
            for method, path in (
                ("GET", f"/api/projects/{project}"),
                ("POST", f"/api/projects/{project}/ideas"),
                ("POST", f"/api/projects/{project}/script"),
                ("POST", f"/api/projects/{project}/retry"),
                ("DELETE", f"/api/projects/{project}"),
            ):
                error = assert_error(await bob.request(method, path), 404, "not_found")
                assert error["message"] == f"project {project} not found"
        assert json_of(await bob.get("/api/videos"))["videos"] == []
    assert versions(site, id, owner) == before


async def test_an_asset_is_served_only_to_the_owner_of_a_listed_project(site: Site) -> None:
    _, token = site.user()
    async with site.client(token) as http:
        card = json_of(await http.post("/api/projects", json={**BRIEF, "autopilot": True}))
        await until_status(site, token, card["id"], "completed")
        await site.settled()
        thumbnail = json_of(await http.get("/api/videos"))["videos"][0]["thumbnail_url"]
        assert (await http.get(thumbnail)).status_code == 200
        _, bob_token = site.user()
        async with site.client(bob_token) as bob:
            assert_error(await bob.get(thumbnail), 404, "not_found")
            assert_error(await bob.get("/api/assets/" + "0" * 64), 404, "not_found")
            assert_error(await bob.get("/api/assets/../../etc/passwd"), 404, "not_found")
        _, auditor = site.user("auditor")
        async with site.client(auditor) as audit:
            assert (await audit.get(thumbnail)).status_code == 200
        assert (await http.delete(f"/api/projects/{card['id']}")).status_code == 204
        await site.settled()
        assert_error(await http.get(thumbnail), 404, "not_found")


# ---- roles -----------------------------------------------------------------------------------


async def test_auditors_read_every_history_and_change_nothing(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, token, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    assert (await http.post(f"/api/projects/{id}/ideas")).status_code == 202
    await until_status(site, token, id, "ideas_ready")
    assert (await http.delete(f"/api/projects/{id}")).status_code == 204
    _, auditor_token = site.user("auditor")
    await site.settled()
    before = site.stored()
    async with site.client(auditor_token) as auditor:
        trail = json_of(await auditor.get(f"/api/audit/projects/{id}"))
        assert trail["deleted"] is True and trail["owner_id"] == str(owner)
        types = [e["type"] for e in trail["events"]]
        assert types[0] == "ProjectCreated" and types[-1] == "ProjectDeleted"
        assert "IdeasRequested" in types and "CreditsReserved" in types
        assert [e["version"] for e in trail["events"]] == list(range(1, len(types) + 1))
        assert trail["reconciliation"]["consistent"] is True
        assert set(trail["reconciliation"]) == {
            "reserved",
            "charged",
            "released",
            "still_reserved",
            "consistent",
        }
        view = await auditor.get(f"/api/projects/{id}")
        assert view.status_code == 200 and json_of(view)["id"] == id
        assert (await auditor.get("/api/support/deleted")).status_code == 200
        for method, path, body in (
            ("POST", "/api/projects", BRIEF),
            ("POST", f"/api/projects/{id}/ideas", None),
            ("POST", f"/api/projects/{id}/script", None),
            ("POST", f"/api/projects/{id}/scenes", None),
            ("POST", f"/api/projects/{id}/render", None),
            ("POST", f"/api/projects/{id}/retry", None),
            ("DELETE", f"/api/projects/{id}", None),
            ("POST", f"/api/support/projects/{id}/restore", None),
        ):
            answer = await auditor.request(method, path, json=body)
            assert_error(answer, 403, "forbidden")
        assert_error(await auditor.get(f"/api/audit/projects/{uuid4()}"), 404, "not_found")
    assert site.stored() == before
    assert_error(await http.get(f"/api/audit/projects/{id}"), 403, "forbidden")
    assert_error(await http.get("/api/support/deleted"), 403, "forbidden")


async def test_support_sees_deleted_projects_and_restores_them(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, _, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    answer = await http.delete(f"/api/projects/{id}")
    assert answer.status_code == 204 and answer.content == b""
    assert_error(await http.delete(f"/api/projects/{id}"), 404, "not_found")
    assert_error(await http.get(f"/api/projects/{id}"), 404, "not_found")
    await site.settled()
    assert json_of(await http.get("/api/videos"))["videos"] == []
    assert_error(await http.post(f"/api/support/projects/{id}/restore"), 403, "forbidden")
    _, token = site.user("support")
    async with site.client(token) as support:
        deleted = json_of(await support.get("/api/support/deleted"))["deleted"]
        row = next(d for d in deleted if d["project_id"] == id)
        assert row["owner_id"] == str(owner) and row["deleted_by"].startswith("user:")
        restored = await support.post(f"/api/support/projects/{id}/restore")
        assert restored.status_code == 200 and json_of(restored)["id"] == id
        assert set(json_of(restored)) == CARD_KEYS
        again = await support.post(f"/api/support/projects/{id}/restore")
        assert_error(again, 409, "illegal_transition")
        missing = await support.post(f"/api/support/projects/{uuid4()}/restore")
        assert_error(missing, 404, "not_found")
    await site.settled()
    assert [v["id"] for v in json_of(await http.get("/api/videos"))["videos"]] == [id]


# ---- bad input -------------------------------------------------------------------------------


async def test_bad_input_is_422_naming_the_fields_at_fault_and_stores_nothing(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, _, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    await site.settled()
    before = site.stored()
    cases: list[tuple[str, str, Any, set[str]]] = [
        ("POST", "/api/projects", b"{not json", {"body"}),
        ("POST", "/api/projects", b"[1, 2]", {"body"}),
        ("POST", "/api/projects", b"null", {"body"}),
        ("POST", "/api/projects", {}, {"title", "format", "brief"}),
        ("POST", "/api/projects", {**BRIEF, "format": "3:2"}, {"format"}),
        ("POST", "/api/projects", {**BRIEF, "title": ""}, {"title"}),
        ("POST", "/api/projects", {**BRIEF, "title": "   "}, {"title"}),
        ("POST", "/api/projects", {**BRIEF, "title": "x" * 201}, {"title"}),
        ("POST", "/api/projects", {**BRIEF, "brief": "x" * 5001}, {"brief"}),
        ("POST", "/api/projects", {**BRIEF, "title": 5}, {"title"}),
        ("POST", "/api/projects", {**BRIEF, "autopilot": "yes"}, {"autopilot"}),
        ("POST", "/api/projects", {**BRIEF, "owner_id": "x"}, {"owner_id"}),
        # What a store could not hold, or a reader would be fooled by (docs/api.md §2).
        ("POST", "/api/projects", {**BRIEF, "title": "a\u0000b"}, {"title"}),
        ("POST", "/api/projects", {**BRIEF, "title": "Fizz\u202eevil"}, {"title"}),
        ("POST", "/api/projects", {**BRIEF, "title": "two\nlines"}, {"title"}),
        ("POST", "/api/projects", {**BRIEF, "brief": "esc\u001b[31m"}, {"brief"}),
        ("POST", f"/api/projects/{id}/ideas", {"count": 0}, {"count"}),
        ("POST", f"/api/projects/{id}/ideas", {"count": 10**30}, {"count"}),
        ("POST", f"/api/projects/{id}/script", {"idea": "1"}, {"idea"}),
        ("POST", f"/api/projects/{id}/script", {"idea": -1}, {"idea"}),
        ("POST", f"/api/projects/{id}/script", {"idea": 3}, {"idea"}),  # no ideas yet
        ("POST", f"/api/projects/{id}/scenes", {"please": True}, {"please"}),
    ]
    for method, path, body, fields in cases:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = await http.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
        error = assert_error(answer, 422, "invalid_input")
        assert set(error["fields"]) == fields, (body, error)
    assert site.stored() == before


async def test_a_body_over_the_cap_is_413_and_stores_nothing(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, _, http = alice
    await site.settled()
    before = site.stored()
    big = json.dumps({**BRIEF, "brief": "x" * 70_000}).encode()
    assert_error(await http.post("/api/projects", content=big), 413, "body_too_large")

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield b'{"title": "t", "format": "1:1", "brief": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    assert_error(await http.post("/api/projects", content=streamed()), 413, "body_too_large")
    assert site.stored() == before


async def test_no_input_makes_the_server_answer_500(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    _, _, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    bodies: list[bytes] = [
        b"",
        b"\xff\xfe\x00",
        b'{"title": "\\ud800", "format": "1:1", "brief": ""}',
        b'{"title": {"a": [1, 2, {"b": null}]}, "format": [], "brief": 1e999}',
        json.dumps({"count": 2**70}).encode(),
        b"1" * 60_000,
        b'"' + b"\\" * 1000 + b'"',
        b"[" * 5000,
    ]
    paths = [
        "/api/projects",
        f"/api/projects/{id}/ideas",
        f"/api/projects/{id}/script",
        "/api/projects/%00/ideas",
        "/api/projects/" + "9" * 5000,
        "/api/assets/%2e%2e%2f",
        "/api/videos?position=-1",
        "/login",
        "/api/nowhere",
    ]
    for path in paths:
        for method in ("GET", "POST", "DELETE", "PUT"):
            for body in bodies:
                answer = await http.request(
                    method, path, content=body, headers={"Content-Type": "application/json"}
                )
                assert answer.status_code < 500, (method, path, body[:40], answer.text)
                if answer.status_code >= 400:
                    assert "error" in json_of(answer) or answer.status_code == 405


async def test_commands_in_parallel_each_get_one_answer(
    site: Site, alice: tuple[UUID, str, httpx.AsyncClient]
) -> None:
    owner, _, http = alice
    id = json_of(await http.post("/api/projects", json=BRIEF))["id"]
    answers = await asyncio.gather(*(http.post(f"/api/projects/{id}/ideas") for _ in range(5)))
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 202 and set(codes) <= {202, 409}
    assert codes.count(202) >= 1
    project = site.system.studio.project(UUID(id))
    assert project.reconciliation().consistent
    assert project.owner_id == owner


async def test_the_session_key_is_made_once_per_data_dir_and_kept_private(tmp_path: Path) -> None:
    key = session_key(tmp_path / "var")
    assert session_key(tmp_path / "var") == key and len(key) >= 32
    assert (tmp_path / "var" / "session.key").stat().st_mode & 0o777 == 0o600
    assert session_key(tmp_path / "var", "x" * 40) == b"x" * 40
    with pytest.raises(ConfigError):
        session_key(tmp_path / "var", "short")
