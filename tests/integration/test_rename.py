"""Renaming a project over HTTP, and downloads named after the project, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import httpx
import pytest
import pytest_asyncio
from web_server import Site, json_of, site, site_settings, wait_for

from aytada_es.pack.verify import verify
from aytada_es.web.models import Card

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"title": "Fizzy lime", "format": "9:16", "brief": "Real limes, no sugar."}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def completed(site: Site) -> AsyncIterator[tuple[UUID, str, str]]:
    """One user's autopilot project, completed: its owner, token and id."""
    owner, token = site.user()
    async with site.client(token) as http:
        id = json_of(await http.post("/api/projects", json={**BRIEF, "autopilot": True}))["id"]

        async def done() -> bool:
            return json_of(await http.get(f"/api/projects/{id}"))["status"] == "completed"

        await wait_for(done, 60, "the autopilot project to complete")
    await site.settled()
    yield owner, token, id


def version_of(site: Site, id: str) -> int:
    return site.system.studio.project(UUID(id)).version


async def rename(http: httpx.AsyncClient, id: str, title: Any) -> httpx.Response:
    return await http.patch(f"/api/projects/{id}", json={"title": title})


async def test_a_rename_answers_the_card_and_every_read_model_follows(
    site: Site, completed: tuple[UUID, str, str]
) -> None:
    _, token, id = completed
    async with site.client(token) as http:
        answer = await rename(http, id, "  Fizzy Lime Sparkling Water  ")
        assert answer.status_code == 200, answer.text
        card = Card.model_validate(json_of(answer))
        assert card.title == "Fizzy Lime Sparkling Water" and card.status == "completed"
        position = int(answer.headers["X-Aytada-Position"])
        read = {"min_position": position}
        listed = json_of(await http.get("/api/videos", params=read))["videos"]
        assert [v["title"] for v in listed if v["id"] == id] == ["Fizzy Lime Sparkling Water"]
        view = json_of(await http.get(f"/api/projects/{id}", params=read))
        assert view["title"] == "Fizzy Lime Sparkling Water"
        scripts = json_of(await http.get("/api/scripts", params=read))["scripts"]
        assert {s["project_title"] for s in scripts} == {"Fizzy Lime Sparkling Water"}
        credits = json_of(await http.get("/api/credits", params=read))["history"]
        titled = {m["project_title"] for m in credits if m.get("project_id") == id}
        assert titled == {"Fizzy Lime Sparkling Water"}

        # The user's own dispute pack holds the rename (its title sealed) and still verifies.
        pack = await http.get("/api/account/pack")
        assert pack.status_code == 200
        lines = [json.loads(line) for line in pack.content.splitlines()]
        renames = [r for r in lines if str(r.get("topic", "")).endswith(".ProjectRenamed")]
        assert len(renames) == 1 and b"Fizzy Lime Sparkling Water" not in pack.content
        verdict = verify(pack.content)
        assert verdict.passed, verdict.problems

        # The same title again records nothing, and still answers where the log stands.
        before = version_of(site, id)
        again = await rename(http, id, "Fizzy Lime Sparkling Water")
        assert again.status_code == 200 and version_of(site, id) == before
        assert int(again.headers["X-Aytada-Position"]) >= position

    _, auditor = site.user("auditor")
    async with site.client(auditor) as audit:
        trail = json_of(await audit.get(f"/api/audit/projects/{id}"))
        renamed = [e for e in trail["events"] if e["type"] == "ProjectRenamed"]
        assert len(renamed) == 1 and renamed[0]["actor"].startswith("user:")
        assert trail["title"] == "Fizzy Lime Sparkling Water"
        assert trail["reconciliation"]["consistent"] is True
        assert_forbidden = await rename(audit, id, "An auditor's title")
        assert assert_forbidden.status_code == 403

    # Deleted, it shows in the support view under its new title.
    async with site.client(token) as http:
        other = json_of(await http.post("/api/projects", json=BRIEF))["id"]
        assert (await rename(http, other, "Lime, renamed then deleted")).status_code == 200
        assert (await http.delete(f"/api/projects/{other}")).status_code == 204
        await site.settled()
        assert (await rename(http, other, "Too late")).status_code == 404
    _, support = site.user("support")
    async with site.client(support) as staff:
        deleted = json_of(await staff.get("/api/support/deleted"))["deleted"]
        assert [d["title"] for d in deleted if d["project_id"] == other] == [
            "Lime, renamed then deleted"
        ]


@pytest.mark.parametrize(
    "title",
    ["", "   ", "x" * 201, "nul\x00here", "bell\x07", "two\nlines", "evil\u202eoverride", 42, None],
)
async def test_a_bad_title_is_422_naming_it_and_changes_nothing(
    site: Site, completed: tuple[UUID, str, str], title: Any
) -> None:
    _, token, id = completed
    before, stored = version_of(site, id), site.stored()
    async with site.client(token) as http:
        answer = await rename(http, id, title)
    assert answer.status_code == 422, answer.text
    error = json_of(answer)["error"]
    assert "title" in error["fields"], error
    assert version_of(site, id) == before and site.stored() == stored


async def test_renaming_another_users_or_a_missing_project_is_404(
    site: Site, completed: tuple[UUID, str, str]
) -> None:
    _, _, id = completed
    _, bob = site.user()
    stored = site.stored()
    async with site.client(bob) as http:
        for target in (id, str(uuid4()), "not-an-id"):
            answer = await rename(http, target, "Mine now")
            assert answer.status_code == 404, answer.text
        extra = await http.patch(f"/api/projects/{id}", json={"title": "x", "owner": "bob"})
        assert extra.status_code in (404, 422)
    assert site.stored() == stored


async def test_downloads_are_named_after_the_project_and_the_asset(
    site: Site, completed: tuple[UUID, str, str]
) -> None:
    _, token, id = completed
    async with site.client(token) as http:
        assert (await rename(http, id, "Fizzy Lime Sparkling Water")).status_code == 200
        view = json_of(await http.get(f"/api/projects/{id}"))
        await site.settled()
        by_kind = {a["kind"]: a for a in view["assets"]}
        expected = {
            "final_video": "fizzy-lime-sparkling-water.mp4",
            "banner": "fizzy-lime-sparkling-water-banner.png",
            "product_shot": "fizzy-lime-sparkling-water-product-shot.png",
            "thumbnail": "fizzy-lime-sparkling-water-thumbnail.jpg",
        }
        for kind, name in expected.items():
            answer = await http.get(by_kind[kind]["url"], params={"download": "1"})
            assert answer.status_code == 200
            assert answer.headers["content-disposition"] == f'attachment; filename="{name}"'
        shown = await http.get(by_kind["banner"]["url"])
        assert "content-disposition" not in shown.headers  # shown in the page, not downloaded

        # A title beyond ASCII: a plain fallback name and the exact one as RFC 6266 filename*.
        assert (await rename(http, id, "Café Crème: Brûlée 2 \u00d7 2!")).status_code == 200
        await site.settled()
        answer = await http.get(by_kind["banner"]["url"], params={"download": "1"})
        exact = "café-crème-brûlée-2-2-banner.png"
        assert answer.headers["content-disposition"] == (
            'attachment; filename="cafe-creme-brulee-2-2-banner.png";'
            f" filename*=UTF-8''{quote(exact, safe='')}"
        )
