"""Webhooks end to end: signed deliveries of a project's status changes to a local receiver,
retried after a 500 and after a restart of the service with one webhook-id; the API's rules."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from polling import wait_for
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from web_server import serving

from aytada_es.adapters.sql import SQLStore
from aytada_es.adapters.webhooks import Webhooks
from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings
from aytada_es.testing import Start
from aytada_es.web.serving import WebServer
from conftest import QUICK_GROUPS

pytestmark = pytest.mark.kafka
BRIEF = {"title": "Sparkling water", "format": "9:16", "brief": "Real fruit, no sugar."}


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers `failing` to project.completed, 204 otherwise."""

    failing: int | None = 500
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((dict(request.headers), body))
        if self.failing and json.loads(body)["type"] == "project.completed":
            return Response(status_code=self.failing)
        return Response(status_code=204)

    def of(self, event_type: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.received if json.loads(b)["type"] == event_type]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = Starlette(routes=[Route("/hooks/in", found.hook, methods=["POST"])])
    async with WebServer(app, host="127.0.0.1", port=0) as server:
        yield found, f"{server.url}/hooks/in"


@pytest.fixture
def hooks_settings(settings: Settings) -> Settings:
    return Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(settings.data_dir),
            "AYTADA_DATABASE_URL": settings.database_url,
            "AYTADA_KAFKA_NAMESPACE": settings.kafka_namespace,
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_STAGE_BACKOFF_S": "0.01",
            "AYTADA_RATE_LIMIT_LOGIN": "0",
            "AYTADA_RATE_LIMIT_WRITES": "0",
            "AYTADA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "AYTADA_WEBHOOK_RETRY_S": "0.2",
            "AYTADA_WEBHOOK_MAX_ENDPOINTS": "3",
            **QUICK_GROUPS,
        }
    )


def client(url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def test_signed_deliveries_are_retried_after_a_500_and_after_a_restart_with_one_id(
    hooks_settings: Settings, broker: str, receiver: tuple[Receiver, str]
) -> None:
    hooks, hook_url = receiver
    first = bootstrap(hooks_settings, bootstrap_servers=broker)
    _, token = first.studio.open_account("alice", credits=10_000)
    try:
        async with first.running(), serving(first) as site, client(site.url, token) as http:
            made = await http.post(
                "/api/webhooks",
                json={"url": hook_url, "events": ["project.completed", "project.status_changed"]},
            )
            assert made.status_code == 201, made.text
            endpoint = made.json()
            assert endpoint["secret"].startswith("whsec_")
            project = (await http.post("/api/projects", json={**BRIEF, "autopilot": True})).json()
            await wait_for(lambda: len(hooks.of("project.completed")) >= 2, 60, "a retried 500")
    finally:
        first.close()
    tried = {h["webhook-id"] for h, _ in hooks.of("project.completed")}
    assert len(tried) == 1
    refused = len(hooks.of("project.completed"))

    # The service was down; the receiver is fixed; a new process takes the outbox over.
    hooks.failing = None
    again = bootstrap(hooks_settings, bootstrap_servers=broker)
    try:
        async with again.running(), serving(again) as site, client(site.url, token) as http:
            await wait_for(lambda: _delivered(again, endpoint["id"]), 30, "delivered")
            history = (await http.get(f"/api/webhooks/{endpoint['id']}/deliveries")).json()
            listed = (await http.get("/api/webhooks")).json()
            exposed, _ = await asyncio.to_thread(again.metrics.exposition, None)
    finally:
        again.close()

    webhook = Webhook(endpoint["secret"])
    for headers, body in hooks.received:
        payload: dict[str, Any] = webhook.verify(body, headers)  # raises if not signed by it
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["data"]["id"] == project["id"]
    completed = hooks.of("project.completed")
    assert {h["webhook-id"] for h, _ in completed} == tried
    assert len(completed) > refused  # tried again by the new process, and taken
    assert json.loads(completed[-1][1])["data"]["status"] == "completed"
    changes = [json.loads(b)["data"]["status"] for _, b in hooks.of("project.status_changed")]
    # Not ordered (each delivery is sent and retried on its own): every status is there.
    assert {"generating_ideas", "ideas_ready", "completed"} <= set(changes)
    done = [d for d in history["deliveries"] if d["event_type"] == "project.completed"]
    assert len(done) == 1 and done[0]["webhook_id"] in tried
    assert done[0]["status"] == "delivered" and done[0]["last_status_code"] == 204
    assert done[0]["attempts"] == len(completed) and done[0]["delivered_at"]
    metrics = exposed.decode()
    delivered = re.search(r'aytada_webhook_deliveries_total\{outcome="delivered"\} (\S+)', metrics)
    assert delivered is not None and float(delivered.group(1)) >= 1
    assert "aytada_webhook_pending 0.0" in metrics
    assert "aytada_webhook_oldest_pending_seconds 0.0" in metrics
    assert listed == {
        "webhooks": [
            {
                "id": endpoint["id"],
                "url": hook_url,
                "events": ["project.completed", "project.status_changed"],
                "created_at": listed["webhooks"][0]["created_at"],
            }
        ]
    }


def _delivered(system: System, endpoint_id: str) -> bool:
    rows = system.read_models.store.query(
        "SELECT status FROM {aytada_webhook_deliveries} WHERE endpoint_id = ?"
        " AND event_type = 'project.completed'",
        (endpoint_id,),
    )
    return bool(rows) and rows[0]["status"] == "delivered"


async def test_the_api_refuses_bad_endpoints_changing_nothing_and_hides_other_users_ones(
    hooks_settings: Settings,
) -> None:
    system = bootstrap(hooks_settings)  # not started: the API needs only the store
    _, alice = system.studio.open_account("alice", credits=10)
    _, bob = system.studio.open_account("bob", credits=10)
    try:
        async with serving(system) as site, client(site.url, alice) as http:
            bad = [
                ({"url": "http://10.0.0.7/in", "events": ["project.completed"]}, "url"),
                ({"url": "http://[::1]:9/in", "events": ["project.completed"]}, "url"),
                ({"url": "ftp://127.0.0.1/in", "events": ["project.completed"]}, "url"),
                ({"url": "http://u:p@127.0.0.1/in", "events": ["project.completed"]}, "url"),
                ({"url": "http://127.0.0.1/" + "a" * 2100, "events": ["project.failed"]}, "url"),
                ({"url": "http://127.0.0.1/in", "events": []}, "events"),
                ({"url": "http://127.0.0.1/in", "events": ["project.deleted"]}, "events"),
                ({"url": "http://127.0.0.1/in", "events": ["project.failed"] * 2}, "events"),
                ({"url": "http://127.0.0.1/in"}, "events"),
            ]
            for body, named in bad:
                answer = await http.post("/api/webhooks", json=body)
                assert answer.status_code == 422, (body, answer.text)
                fields = answer.json()["error"]["fields"]
                assert {f.split(".")[0] for f in fields} == {named}, answer.text
            assert (await http.get("/api/webhooks")).json() == {"webhooks": []}

            made = await http.post(
                "/api/webhooks", json={"url": "http://127.0.0.1:9/in", "events": ["project.failed"]}
            )
            assert made.status_code == 201
            mine = made.json()["id"]
            assert "secret" not in (await http.get("/api/webhooks")).json()["webhooks"][0]
            for _ in range(2):
                more = {"url": "http://127.0.0.1:9/x", "events": ["project.failed"]}
                assert (await http.post("/api/webhooks", json=more)).status_code == 201
            over = await http.post("/api/webhooks", json=more)
            assert over.status_code == 409 and over.json()["error"]["code"] == "too_many_webhooks"

            async with client(site.url, bob) as other:
                assert (await other.get(f"/api/webhooks/{mine}/deliveries")).status_code == 404
                assert (await other.delete(f"/api/webhooks/{mine}")).status_code == 404
                assert (await other.get("/api/webhooks")).json() == {"webhooks": []}
                assert (await other.delete("/api/webhooks/nonsense")).status_code == 404
            assert (await http.get(f"/api/webhooks/{mine}/deliveries")).json() == {"deliveries": []}
            assert (await http.delete(f"/api/webhooks/{mine}")).status_code == 204
            assert (await http.delete(f"/api/webhooks/{mine}")).status_code == 404
            assert len((await http.get("/api/webhooks")).json()["webhooks"]) == 2
            async with httpx.AsyncClient(base_url=site.url) as anonymous:
                assert (await anonymous.get("/api/webhooks")).status_code == 401
    finally:
        system.close()


async def test_an_event_handled_again_records_no_second_delivery_and_late_endpoints_hear_nothing(
    aytada_start: Start,
) -> None:
    run = await aytada_start()
    owner = run.user()
    webhooks = Webhooks(SQLStore.of(run.studio))
    every = ["project.completed", "project.failed", "project.status_changed"]
    early = {"id": "early", "owner_id": str(owner), "url": "https://hooks.example/in"}
    webhooks.add_endpoint({**early, "events": every, "secret": "whsec_x", "created_at": 0}, limit=9)
    project_id = run.autopilot_project(owner)
    await run.until_event(project_id, "VideoStitched")
    await run.until_consumed("webhooks")
    recorded = {d["webhook_id"]: d["event_type"] for d in webhooks.deliveries_of("early")}
    statuses = [json.loads(d["body"])["data"]["status"] for d in webhooks.deliveries_of("early")]
    assert sorted(recorded.values()).count("project.completed") == 1
    assert "project.failed" not in recorded.values()
    assert statuses.count("completed") == 2  # status_changed and completed
    late = {"id": "late", "owner_id": str(owner), "url": "https://hooks.example/in"}
    webhooks.add_endpoint(
        {**late, "events": every, "secret": "whsec_x", "created_at": 2e9}, limit=9
    )

    # After a restart the relay publishes the log again: the stage handles it again.
    assert await run.republish(project_id, "VideoStitched") == 1
    await run.until_consumed("webhooks")
    again = {d["webhook_id"]: d["event_type"] for d in webhooks.deliveries_of("early")}
    assert again == recorded
    assert webhooks.deliveries_of("late") == []
