"""Read your own writes (docs/api.md §2): commands answer `X-Aytada-Position`, reads take
`?min_position=`, in `serve` and in a web process whose read models another process applies;
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
import pytest
import pytest_asyncio
from web_server import Served, Site, json_of, serving, site, site_settings, wait_for

from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.web import WebOptions
from aytada_es.web.endpoints import MAX_POSITION

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

HEADER = "X-Aytada-Position"
ELSEWHERE_WAIT_S = 1.0
BRIEF = {"title": "Own writes", "format": "9:16", "brief": "A lamp that reads your mind."}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def elsewhere(site: Site, site_settings: Settings) -> AsyncIterator[Served]:
    """A web process of its own over the site's database (`worker web`): it applies no read
    model; the site's projections do."""
    system = bootstrap(site_settings, roles=())
    try:
        options = WebOptions(live="feed", position_wait_s=ELSEWHERE_WAIT_S)
        async with serving(system, options) as served:
            yield served
    finally:
        system.close()


def event_type(topic: str) -> str:
    return topic.rsplit(".", 1)[-1]


def stored_after(site: Site, position: int) -> list[Any]:
    """Every stored event after a position, in order."""
    recorder = site.system.studio.recorder
    return list(recorder.select_notifications(position + 1, 100_000))


def positions(site: Site) -> dict[str, int]:
    return site.system.read_models.positions()


def position_of(response: httpx.Response) -> int:
    assert response.is_success, f"{response.status_code}: {response.text[:300]}"
    raw = response.headers.get(HEADER)
    assert raw is not None, f"{response.request.method} {response.request.url} has no {HEADER}"
    return int(raw)


async def status_of(client: httpx.AsyncClient, project_id: str) -> str:
    view = json_of(await client.get(f"/api/projects/{project_id}"))
    return str(view["status"])


async def until_status(client: httpx.AsyncClient, project_id: str, status: str) -> None:
    async def there() -> bool:
        return await status_of(client, project_id) == status

    await wait_for(there, 30, f"project {project_id} to be {status}")


@asynccontextmanager
async def alone(site: Site) -> AsyncIterator[None]:
    """Nothing but the test writes meanwhile: the site is settled and its relay stopped, so no
    stage hears of anything (a requested step stays active)."""
    await site.settled()
    await site.system.kill("relay")
    try:
        yield
    finally:
        site.system.revive("relay")


async def check_command(site: Site, send: Any, owner: UUID, kind: str) -> httpx.Response:
    """Run a command while the test writes alone: its header is its last event's position."""
    before = site.stored()
    response = await send()
    position = position_of(response)
    assert site.stored() == position, f"{kind}: the store's end is not the header's position"
    ours = stored_after(site, before)
    assert ours, f"{kind}: nothing stored after {before}"
    project = ours[0].originator_id if kind == "ProjectCreated" else None
    originators = {e.originator_id for e in ours}
    assert originators - {owner}, f"{kind}: no event of the project"
    assert len(originators - {owner}) == 1, f"{kind}: events of other aggregates"
    assert project is None or project in originators
    assert kind in {event_type(e.topic) for e in ours}, f"{kind} is not among {ours}"
    return response


async def test_every_command_answers_its_last_events_position(site: Site) -> None:
    owner, token = site.user()
    _, support = site.user("support")
    async with site.client(token) as client, site.client(support) as staff:
        async with alone(site):
            create = client.post("/api/projects", json=BRIEF)
            id = (await check_command(site, lambda: create, owner, "ProjectCreated")).json()["id"]

        async def post(step: str, body: dict[str, Any] | None = None) -> httpx.Response:
            return await client.post(f"/api/projects/{id}/{step}", json=body or {})

        path = f"/api/projects/{id}"
        async with alone(site):
            await check_command(site, lambda: post("ideas"), owner, "IdeasRequested")
        await until_status(client, id, "ideas_ready")
        async with alone(site):
            await check_command(site, lambda: post("script", {"idea": 0}), owner, "ScriptRequested")
        await until_status(client, id, "script_ready")
        async with alone(site):
            await check_command(site, lambda: post("scenes"), owner, "ScenesRequested")
        await until_status(client, id, "scenes_ready")
        async with alone(site):
            await check_command(site, lambda: post("render"), owner, "VideoRequested")
            refused = await post("render")  # a refused command stores nothing and says so
            assert refused.status_code == 409
            assert HEADER not in refused.headers
            await check_command(site, lambda: post("cancel"), owner, "StepCancelled")
            await check_command(site, lambda: post("retry"), owner, "StepRetried")
        await until_status(client, id, "completed")
        async with alone(site):
            deleted = await check_command(
                site, lambda: client.delete(path), owner, "ProjectDeleted"
            )
            restore = f"/api/support/projects/{id}/restore"
            restored = await check_command(
                site, lambda: staff.post(restore), owner, "ProjectRestored"
            )
        assert position_of(restored) > position_of(deleted)
        assert deleted.status_code == 204


async def test_a_read_with_min_position_waits_for_the_read_models_to_apply_it(
    site: Site,
) -> None:
    _, token = site.user()
    async with site.client(token) as client:
        created = await client.post("/api/projects", json=BRIEF)
        id = created.json()["id"]
        await until_status(client, id, "draft")
        before = json_of(await client.get("/api/credits"))
        await site.settled()
        await site.system.kill("projections")  # nothing applies the command meanwhile
        try:
            position = position_of(await client.post(f"/api/projects/{id}/ideas", json={}))
            assert max(positions(site).values()) < position
            reads = {
                path: asyncio.ensure_future(client.get(path, params={"min_position": position}))
                for path in ("/api/videos", f"/api/projects/{id}", "/api/credits")
            }
        finally:
            site.system.revive("projections")
        answers = {path: json_of(await read) for path, read in reads.items()}
    videos = answers["/api/videos"]
    assert videos["position"] >= position
    card = next(card for card in videos["videos"] if card["id"] == id)
    assert card["status"] != "draft"
    assert answers[f"/api/projects/{id}"]["status"] != "draft"
    credits = answers["/api/credits"]
    assert len(credits["history"]) > len(before["history"])
    assert credits["balance"] < before["balance"]


async def test_scripts_and_images_with_min_position_show_a_deletion_at_once(site: Site) -> None:
    _, token = site.user()
    async with site.client(token) as client:
        id = json_of(await client.post("/api/projects", json={**BRIEF, "autopilot": True}))["id"]
        await until_status(client, id, "completed")
        await site.settled()
        assert any(
            s["project_id"] == id for s in json_of(await client.get("/api/scripts"))["scripts"]
        )
        assert any(
            i["project_id"] == id for i in json_of(await client.get("/api/images"))["images"]
        )
        await site.system.kill("projections")
        try:
            position = position_of(await client.delete(f"/api/projects/{id}"))
            reads = {
                path: asyncio.ensure_future(client.get(path, params={"min_position": position}))
                for path in ("/api/scripts", "/api/images")
            }
        finally:
            site.system.revive("projections")
        scripts = json_of(await reads["/api/scripts"])["scripts"]
        images = json_of(await reads["/api/images"])["images"]
    assert all(s["project_id"] != id for s in scripts)
    assert all(i["project_id"] != id for i in images)


async def test_a_position_not_applied_within_5_s_answers_503_with_retry_after(
    site: Site,
) -> None:
    _, token = site.user()
    far = site.stored() + 1_000_000
    async with site.client(token) as client:
        began = time.monotonic()
        response = await client.get("/api/videos", params={"min_position": far})
        took = time.monotonic() - began
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "not_yet_applied"
    assert 5.0 <= took < 7.0


@pytest.mark.parametrize(
    "bad",
    ["abc", "-1", "1.5", "", " 1", "0x10", "\uff11\uff12", "9" * 19, str(MAX_POSITION + 1), "1e3"],
)
async def test_a_bad_min_position_is_422_and_changes_nothing(site: Site, bad: str) -> None:
    _, token = site.user()
    async with site.client(token) as client:
        id = json_of(await client.post("/api/projects", json=BRIEF))["id"]
        await site.settled()
        stored, applied = site.stored(), positions(site)
        for path in (
            "/api/videos",
            f"/api/projects/{id}",
            "/api/scripts",
            "/api/images",
            "/api/credits",
        ):
            response = await client.get(path, params={"min_position": bad})
            assert response.status_code == 422, (path, response.text)
            assert "min_position" in response.json()["error"]["fields"]
        assert site.stored() == stored
        assert positions(site) == applied


async def test_min_position_zero_or_already_applied_answers_at_once(site: Site) -> None:
    _, token = site.user()
    async with site.client(token) as client:
        position = position_of(await client.post("/api/projects", json=BRIEF))
        for value in (0, position):
            began = time.monotonic()
            response = await client.get("/api/videos", params={"min_position": value})
            assert response.status_code == 200
            assert time.monotonic() - began < 2.0
            assert response.json()["position"] >= value


async def test_a_web_process_without_projections_reads_its_own_writes(
    site: Site, elsewhere: Served
) -> None:
    _, token = site.user()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=elsewhere.url, headers=headers, timeout=10) as client:
        created = await client.post("/api/projects", json=BRIEF)
        position = position_of(created)
        id = created.json()["id"]
        videos = json_of(await client.get("/api/videos", params={"min_position": position}))
        assert videos["position"] >= position
        assert any(card["id"] == id for card in videos["videos"])
        ideas = position_of(await client.post(f"/api/projects/{id}/ideas", json={}))
        view = json_of(await client.get(f"/api/projects/{id}", params={"min_position": ideas}))
        assert view["status"] != "draft"


async def test_a_read_never_applies_the_read_models_itself(site: Site, elsewhere: Served) -> None:
    _, token = site.user()
    headers = {"Authorization": f"Bearer {token}"}
    await site.settled()
    await site.system.kill("projections")  # the only process that applies them
    revived = False
    try:
        async with httpx.AsyncClient(base_url=elsewhere.url, headers=headers, timeout=10) as client:
            position = position_of(await client.post("/api/projects", json=BRIEF))
            applied = positions(site)
            assert max(applied.values()) < position
            began = time.monotonic()
            response = await client.get("/api/videos", params={"min_position": position})
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert time.monotonic() - began >= ELSEWHERE_WAIT_S
            assert positions(site) == applied
            waiting = asyncio.ensure_future(
                client.get("/api/videos", params={"min_position": position})
            )
            site.system.revive("projections")
            revived = True
            answer = json_of(await waiting)
    finally:
        if not revived:
            site.system.revive("projections")
    assert answer["position"] >= position


async def test_a_write_through_one_web_process_is_read_through_another(
    site: Site, elsewhere: Served
) -> None:
    _, token = site.user()
    headers = {"Authorization": f"Bearer {token}"}
    await site.settled()
    await site.system.kill("projections")
    revived = False
    try:
        async with (
            site.client(token) as here,
            httpx.AsyncClient(base_url=elsewhere.url, headers=headers, timeout=10) as there,
        ):
            created = await here.post("/api/projects", json=BRIEF)
            position, id = position_of(created), created.json()["id"]
            assert max(positions(site).values()) < position
            reads = [
                asyncio.ensure_future(there.get(path, params={"min_position": position}))
                for path in ("/api/videos", f"/api/projects/{id}")
            ]
            site.system.revive("projections")
            revived = True
            videos, view = [json_of(await read) for read in reads]
    finally:
        if not revived:
            site.system.revive("projections")
    assert videos["position"] >= position
    assert [card["id"] for card in videos["videos"]] == [id]
    assert view["id"] == id


async def test_openapi_documents_the_header_and_min_position(site: Site) -> None:
    async with site.client() as client:
        document = json_of(await client.get("/openapi.json"))
    paths = document["paths"]
    for path in (
        "/api/videos",
        "/api/projects/{id}",
        "/api/scripts",
        "/api/images",
        "/api/credits",
    ):
        names = [p["name"] for p in paths[path]["get"].get("parameters", [])]
        assert "min_position" in names, path
        assert "503" in paths[path]["get"]["responses"], path
    commands = [
        ("/api/projects", "post", "201"),
        ("/api/projects/{id}/ideas", "post", "202"),
        ("/api/projects/{id}/cancel", "post", "202"),
        ("/api/projects/{id}", "delete", "204"),
        ("/api/support/projects/{id}/restore", "post", "200"),
    ]
    for path, method, status in commands:
        assert HEADER in paths[path][method]["responses"][status]["headers"], path
