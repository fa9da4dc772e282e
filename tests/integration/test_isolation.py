"""One user's projects are invisible to another through every route and the live push; auditors
change nothing; tokens are kept only as hashes. Over SQLite and PostgreSQL, on the real broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
import pytest_asyncio
import websockets
from aiokafka import AIOKafkaConsumer
from starlette.routing import Route
from web_server import Site, json_of, site, site_settings, wait_for

from aytada_es.application import hash_token
from aytada_es.kafka.topics import ACCOUNT_EVENTS
from aytada_es.web.app import ENDPOINTS
from aytada_es.web.endpoints import SAFE_METHODS

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"format": "9:16", "brief": "Real fruit, no sugar."}
PROJECT_PARAMETERS = {"id", "project_id"}
ASSET_PARAMETERS = {"asset_id"}
USER_PARAMETERS = {"user"}  # a user's name: staff routes only


@dataclass(frozen=True)
class Bob:
    """Another user with a completed, a draft and a deleted project, and their files."""

    id: UUID
    token: str
    projects: dict[str, str]  # title -> id
    assets: list[str]

    def secrets(self) -> list[str]:
        """What of Bob's must never reach anyone else."""
        return [*self.projects, *self.projects.values(), *self.assets]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bob(site: Site) -> Bob:
    owner, token = site.user()
    titles = [f"bob-{name}-{uuid.uuid4().hex[:8]}" for name in ("done", "draft", "gone")]
    async with site.client(token) as http:
        ids = []
        for title, autopilot in zip(titles, (True, False, False), strict=True):
            card = json_of(
                await http.post(
                    "/api/projects", json={**BRIEF, "title": title, "autopilot": autopilot}
                )
            )
            ids.append(card["id"])
        assert (await http.delete(f"/api/projects/{ids[2]}")).status_code == 204

        async def completed() -> bool:
            return json_of(await http.get(f"/api/projects/{ids[0]}"))["status"] == "completed"

        await wait_for(completed, 60, "Bob's project to complete")
        await site.settled()
        assets = [a["id"] for a in json_of(await http.get(f"/api/projects/{ids[0]}"))["assets"]]
    assert assets
    return Bob(owner, token, dict(zip(titles, ids, strict=True)), assets)


def http_routes(site: Site) -> Iterator[tuple[str, str, set[str]]]:
    """Every HTTP method and path the app serves, with its path parameters."""
    for route in site.served.app.routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, route.path, set(route.param_convertors)


def bob_versions(site: Site, bob: Bob) -> list[int]:
    studio = site.system.studio
    return [studio.account(bob.id).version] + [
        studio.project(UUID(id)).version for id in bob.projects.values()
    ]


def answer_text(answer: httpx.Response, *ids: str) -> str:
    """The answer as a client sees it, with the ids asked for blanked out."""
    text = answer.text
    for id in ids:
        text = text.replace(id, "<id>")
    return text


async def test_every_route_answers_for_another_users_ids_exactly_as_for_missing_ones(
    site: Site, bob: Bob
) -> None:
    _, token = site.user()
    await site.settled()
    before, stored = bob_versions(site, bob), site.stored()
    checked = set()
    async with site.client(token) as alice:
        for method, path, parameters in http_routes(site):
            if not parameters:
                continue
            unknown = parameters - PROJECT_PARAMETERS - ASSET_PARAMETERS - USER_PARAMETERS
            assert not unknown, f"{method} {path}: say what {unknown} names, then test it here"
            if parameters & USER_PARAMETERS:
                bobs = [site.system.studio.account(bob.id).name]
                missing = f"nobody-{uuid.uuid4().hex[:8]}"
            elif parameters & ASSET_PARAMETERS:
                bobs, missing = bob.assets, uuid.uuid4().hex * 2
            else:
                bobs, missing = list(bob.projects.values()), str(uuid.uuid4())
            body = None if method in SAFE_METHODS else {}
            for theirs in bobs:
                asked = {name: theirs for name in parameters}
                answers = []
                for id in (theirs, missing):
                    url = path.format(**dict.fromkeys(parameters, id))
                    answers.append(await alice.request(method, url, json=body))
                mine, absent = answers
                assert mine.status_code == absent.status_code, (method, path, asked, mine.text)
                assert mine.status_code >= 400 or path.startswith("/studio/"), (method, path)
                assert answer_text(mine, theirs) == answer_text(absent, missing), (method, path)
                checked.add((method, path))
    assert ("DELETE", "/api/projects/{id}") in checked and (
        "GET",
        "/api/assets/{asset_id}",
    ) in checked
    assert bob_versions(site, bob) == before
    assert site.stored() == stored


async def test_no_list_page_or_document_shows_another_users_projects_or_files(
    site: Site, bob: Bob
) -> None:
    _, token = site.user()
    async with site.client(token) as alice:
        card = json_of(await alice.post("/api/projects", json={**BRIEF, "title": "alice's own"}))
        await site.settled()
        answered = 0
        for method, path, parameters in http_routes(site):
            if method != "GET" or parameters:
                continue
            answer = await alice.get(path)
            answered += answer.status_code == 200
            for secret in bob.secrets():
                assert secret not in answer.text, (path, secret)
        assert answered >= 5
        assert card["id"] in (await alice.get("/api/videos")).text  # the lists are not empty


async def test_another_users_projects_never_reach_a_socket_live_or_on_resume(
    site: Site, bob: Bob
) -> None:
    _, token = site.user()
    headers = {"Authorization": f"Bearer {token}"}
    await site.settled()
    seen: list[dict[str, Any]] = []
    async with (
        websockets.connect(f"{site.ws_url}/ws/videos", additional_headers=headers) as ws,
        site.client(bob.token) as bob_http,
        site.client(token) as alice,
    ):
        seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        assert seen[0]["type"] == "snapshot" and seen[0]["videos"] == []
        # Bob works (a new project, a step, a deletion) while Alice listens.
        busy = json_of(await bob_http.post("/api/projects", json={**BRIEF, "title": "bob-live"}))
        await bob_http.post(f"/api/projects/{busy['id']}/ideas")
        mine = json_of(await alice.post("/api/projects", json={**BRIEF, "title": "alice-live"}))
        await bob_http.delete(f"/api/projects/{busy['id']}")
        await site.settled()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
            except TimeoutError:
                continue
    for after in (0, seen[0]["position"]):
        url = f"{site.ws_url}/ws/videos?after={after}"
        async with websockets.connect(url, additional_headers=headers) as ws:
            while True:
                try:
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), 0.4)))
                except TimeoutError:
                    break
    ids = set()
    for message in seen:
        ids |= {v["id"] for v in message.get("videos") or []}
        if "video" in message:
            ids.add(message["video"]["id"])
        if "id" in message:
            ids.add(message["id"])
    assert ids == {mine["id"]}, seen
    text = json.dumps(seen)
    assert "bob-live" not in text and busy["id"] not in text
    assert all(secret not in text for secret in bob.secrets())


async def test_auditors_get_403_on_every_write_route_and_store_nothing(
    site: Site, bob: Bob
) -> None:
    _, token = site.user("auditor")
    await site.settled()
    stored, before = site.stored(), bob_versions(site, bob)
    writes = [e for e in ENDPOINTS if e.method not in SAFE_METHODS and e.roles is not None]
    assert len(writes) >= 8
    done = next(iter(bob.projects.values()))
    async with site.client(token) as auditor:
        for endpoint in writes:
            bobs_name = site.system.studio.account(bob.id).name
            path = endpoint.path.format(id=done, project_id=done, user=bobs_name)
            for body in (None, {}, {**BRIEF, "title": "x"}):
                answer = await auditor.request(endpoint.method, path, json=body)
                assert answer.status_code == 403, (endpoint.method, path, answer.text)
                assert json_of(answer)["error"]["code"] == "forbidden"
        # Reading is theirs: the same project answers.
        assert (await auditor.get(f"/api/projects/{done}")).status_code == 200
    await site.settled()
    assert site.stored() == stored and bob_versions(site, bob) == before


def every_stored_value(site: Site) -> Iterator[str]:
    """Every value of every table of the service's database, as text."""
    store = site.system.read_models.store
    if store.dialect == "sqlite":
        tables = [
            f'"{r["name"]}"'
            for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
    else:
        schema = site.system.settings.database().db_schema
        tables = [
            f'"{schema}"."{r["table_name"]}"'
            for r in store.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                (schema,),
            )
        ]
    assert any("events" in t for t in tables) and any("aytada_accounts" in t for t in tables)
    for table in tables:
        for row in store.query(f"SELECT * FROM {table}"):  # names from the catalogue
            for value in row.values():
                if isinstance(value, bytes | memoryview):
                    yield bytes(value).decode("utf-8", errors="replace")
                else:
                    yield str(value)


async def test_tokens_are_nowhere_in_the_database_or_on_kafka_only_their_hashes(
    site: Site,
) -> None:
    _, token = site.user()
    async with site.client(token) as http:
        assert (await http.get("/api/videos")).status_code == 200  # the accounts view has it
        assert (await http.post("/login", json={"token": token})).status_code == 303
    await site.settled()
    values = list(await asyncio.to_thread(lambda: list(every_stored_value(site))))
    assert not any(token in v for v in values)
    assert any(hash_token(token) in v for v in values)

    relay = site.system.relay
    assert relay is not None
    await wait_for(lambda: asyncio.to_thread(lambda: relay.position >= site.stored()), 20)
    consumer = AIOKafkaConsumer(
        site.system.settings.topic(ACCOUNT_EVENTS),
        bootstrap_servers=site.system.bootstrap_servers,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    published = b""
    try:
        deadline = time.monotonic() + 10
        while hash_token(token).encode() not in published and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                published += b"".join(r.value for r in records)
    finally:
        await consumer.stop()
    assert hash_token(token).encode() in published
    assert token.encode() not in published
