"""Webhooks without a broker: the SSRF guard, the retry schedule, the outbox and the deliverer."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from aytada_es.adapters.addresses import AddressGuard, checked_url
from aytada_es.adapters.sql import SQLStore
from aytada_es.adapters.webhooks import Webhooks
from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.deliverer import Deliverer
from aytada_es.domain.errors import BadInput, ConfigError, TooManyWebhooks
from aytada_es.domain.webhooks import GIVE_UP_S, RetrySchedule, webhook_id, webhook_types

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PUBLIC = {"hooks.example": ["93.184.216.34"], "slow.example": ["93.184.216.35"]}


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    return lambda host, port: list(table.get(host, []))


# ---- the guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://mixed.example/",
    ],
)
def test_a_url_that_reaches_a_private_address_is_refused_naming_the_url(url: str) -> None:
    guard = AddressGuard(
        resolver=resolver(
            {"localhost": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "10.0.0.1"]}
        )
    )
    with pytest.raises(BadInput) as refused:
        guard.target(url)
    assert set(refused.value.fields) == {"url"}
    assert "not a public address" in refused.value.fields["url"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example/",
        "javascript:alert(1)",
        "https://user:pw@hooks.example/",
        "https://token@hooks.example/",
        "https:///nohost",
        "https://hooks.example:99999/",
        "https://hooks.example/a b",
        "https://hooks.example/\x00",
        "https://hooks.example/" + "a" * 2100,
        "https://nowhere.example/",
    ],
)
def test_a_url_a_webhook_may_not_have_is_refused_naming_the_url(url: str) -> None:
    with pytest.raises(BadInput) as refused:
        AddressGuard(resolver=resolver(PUBLIC)).target(url)
    assert set(refused.value.fields) == {"url"}


def test_a_public_name_passes_and_an_allowed_network_opens_a_private_one() -> None:
    target = AddressGuard(resolver=resolver(PUBLIC)).target("https://hooks.example:8443/in?x=1")
    assert (target.host, target.port) == ("hooks.example", 8443)
    assert target.addresses == (ipaddress.ip_address("93.184.216.34"),)
    allowed = AddressGuard([ipaddress.ip_network("127.0.0.0/8")], resolver=resolver({}))
    assert allowed.target("http://127.0.0.1:9000/").addresses == (
        ipaddress.ip_address("127.0.0.1"),
    )
    with pytest.raises(BadInput):
        allowed.target("http://10.0.0.1/")
    assert checked_url("https://hooks.example/in").hostname == "hooks.example"


def test_allowed_networks_are_read_once_and_a_bad_one_fails_the_configuration() -> None:
    settings = Settings.from_env({"AYTADA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8, fd00::/8"})
    assert [str(n) for n in settings.webhook_allowed_networks] == ["127.0.0.0/8", "fd00::/8"]
    assert Settings.from_env({}).webhook_allowed_networks == ()
    with pytest.raises(ConfigError, match="AYTADA_WEBHOOK_ALLOWED_NETWORKS"):
        Settings.from_env({"AYTADA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,intranet"})
    with pytest.raises(ConfigError, match="AYTADA_WEBHOOK_RETRY_S"):
        Settings.from_env({"AYTADA_WEBHOOK_RETRY_S": "5,-1"})


# ---- the schedule ------------------------------------------------------------------------


def test_the_schedule_is_standard_webhooks_and_retries_for_at_least_72_hours() -> None:
    schedule = RetrySchedule()
    first = now = datetime(2026, 1, 1, tzinfo=UTC)
    waits, attempts = [], 1
    while (due := schedule.next_attempt(attempts, first, now)) is not None:
        waits.append((due - now).total_seconds())
        now, attempts = due, attempts + 1
    assert waits[:6] == [5, 300, 1800, 7200, 18000, 36000]
    assert set(waits[6:]) == {36000}
    assert now - first >= timedelta(hours=72)
    assert (now - first).total_seconds() - GIVE_UP_S < 36000  # given up at the first chance
    assert attempts == len(waits) + 1


def test_a_status_change_makes_the_events_the_contract_names_with_stable_ids() -> None:
    assert webhook_types("stitching", "completed") == [
        "project.status_changed",
        "project.completed",
    ]
    assert webhook_types("rendering", "failed") == ["project.status_changed", "project.failed"]
    assert webhook_types("draft", "generating_ideas") == ["project.status_changed"]
    assert webhook_types("failed", "failed") == []
    one = webhook_id("e1", "ev1", "project.completed")
    assert one == webhook_id("e1", "ev1", "project.completed") and one.startswith("msg_")
    assert len({one, webhook_id("e2", "ev1", "project.completed")}) == 2
    assert webhook_id("e1", "ev1", "project.status_changed") != one


# ---- the outbox and the deliverer -----------------------------------------------------------


def endpoint(
    owner: str, url: str, events: list[str] | None = None, n: int = 1
) -> dict[str, object]:
    return {
        "id": f"{owner}-endpoint-{n}",
        "owner_id": owner,
        "url": url,
        "events": events or ["project.completed"],
        "secret": SECRET,
        "created_at": time.time() - 60,
    }


def delivery(endpoint_id: str, n: int = 1) -> dict[str, object]:
    body = {"type": "project.completed", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": "p"}}
    return {
        "webhook_id": webhook_id(endpoint_id, f"event-{n}", "project.completed"),
        "endpoint_id": endpoint_id,
        "event_id": f"event-{n}",
        "event_type": "project.completed",
        "project_id": "p",
        "body": json.dumps(body),
        "created_at": time.time(),
    }


@pytest.fixture
def webhooks(studio: Studio) -> Webhooks:
    return Webhooks(SQLStore.of(studio))


def deliverer(
    webhooks: Webhooks, handler: Callable[[httpx.Request], object], table: dict[str, list[str]]
) -> tuple[Deliverer, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return (
        Deliverer(
            webhooks,
            AddressGuard(resolver=resolver(table)),
            http,
            RetrySchedule((0.05,), 3600),
            timeout_s=5,
            poll_s=0.02,
        ),
        http,
    )


async def until(check: Callable[[], bool], timeout_s: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_delivery_is_signed_sent_to_the_checked_address_and_retried_with_one_id(
    webhooks: Webhooks,
) -> None:
    webhooks.add_endpoint(endpoint("alice", "https://hooks.example:8443/in"), limit=10)
    webhooks.record([delivery("alice-endpoint-1")])
    assert webhooks.record([delivery("alice-endpoint-1")]) == 0  # the same event again: no copy
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500 if len(seen) == 1 else 204)

    sender, http = deliverer(webhooks, handler, PUBLIC)
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    try:
        wid = str(delivery("alice-endpoint-1")["webhook_id"])
        await until(lambda: (webhooks.delivery(wid) or {})["status"] == "delivered", what="it")
    finally:
        stop.set()
        await running
        await http.aclose()
    assert len(seen) == 2
    assert {r.headers["webhook-id"] for r in seen} == {wid}
    for request in seen:
        assert request.url.host == "93.184.216.34" and request.url.port == 8443  # pinned
        assert request.headers["host"] == "hooks.example:8443"
        assert request.extensions["sni_hostname"] == "hooks.example"
        verified = Webhook(SECRET).verify(request.content, dict(request.headers))
        assert verified["type"] == "project.completed"
    row = webhooks.delivery(wid)
    assert row is not None
    assert (row["attempts"], row["last_status_code"], row["last_error"]) == (2, 204, None)
    assert (sender.delivered, sender.retried, sender.attempts) == (1, 1, 2)


async def test_a_name_that_resolves_to_a_private_address_only_at_delivery_is_not_called(
    webhooks: Webhooks,
) -> None:
    table = dict(PUBLIC)
    guard = AddressGuard(resolver=resolver(table))
    guard.target("https://hooks.example/in")  # public when it was registered
    webhooks.add_endpoint(endpoint("alice", "https://hooks.example/in"), limit=10)
    webhooks.record([delivery("alice-endpoint-1")])
    table["hooks.example"] = ["169.254.169.254"]  # rebound to the metadata service
    seen: list[httpx.Request] = []
    sender, http = deliverer(webhooks, lambda r: seen.append(r) or httpx.Response(200), table)
    sender.guard = AddressGuard(resolver=resolver(table))
    await sender.send_due()
    wid = str(delivery("alice-endpoint-1")["webhook_id"])
    await until(lambda: (webhooks.delivery(wid) or {})["attempts"] == 1, what="one attempt")
    await sender.close()
    await http.aclose()
    row = webhooks.delivery(wid)
    assert row is not None and seen == []
    assert row["status"] == "pending" and row["last_status_code"] is None
    assert "169.254.169.254" in row["last_error"] and "not a public address" in row["last_error"]


async def test_a_slow_endpoint_does_not_delay_another_endpoints_delivery(
    webhooks: Webhooks,
) -> None:
    webhooks.add_endpoint(endpoint("alice", "https://slow.example/in", n=1), limit=10)
    webhooks.add_endpoint(endpoint("alice", "https://hooks.example/in", n=2), limit=10)
    # The slow endpoint has more due than it may take at once, and they are the oldest.
    webhooks.record([delivery("alice-endpoint-1", n) for n in range(200)])
    webhooks.record([delivery("alice-endpoint-2", 9)])
    released = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "slow.example":
            await released.wait()
        return httpx.Response(200)

    sender, http = deliverer(webhooks, handler, PUBLIC)  # type: ignore[arg-type]
    sender.concurrency = 3
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    fast = str(delivery("alice-endpoint-2", 9)["webhook_id"])
    try:
        began = time.monotonic()
        await until(lambda: (webhooks.delivery(fast) or {})["status"] == "delivered", 5, "fast")
        assert time.monotonic() - began < 2
        stuck = [
            webhooks.delivery(str(delivery("alice-endpoint-1", n)["webhook_id"])) for n in range(5)
        ]
        assert all(row is not None and row["status"] == "pending" for row in stuck)
        assert sender._flying == {"alice-endpoint-1": sender.per_endpoint}
    finally:
        released.set()
        stop.set()
        await running
        await http.aclose()


async def test_deleting_an_endpoint_cancels_its_pending_deliveries_and_keeps_the_others(
    webhooks: Webhooks,
) -> None:
    webhooks.add_endpoint(endpoint("alice", "https://hooks.example/in"), limit=10)
    webhooks.record([delivery("alice-endpoint-1", n) for n in range(3)])
    assert not webhooks.delete_endpoint("bob", "alice-endpoint-1", time.time())  # type: ignore[arg-type]
    assert webhooks.delete_endpoint("alice", "alice-endpoint-1", time.time())  # type: ignore[arg-type]
    rows = webhooks.deliveries_of("alice-endpoint-1")
    assert [r["status"] for r in rows] == ["cancelled"] * 3
    assert webhooks.due(time.time() + 1, 10) == []
    assert webhooks.backlog() == (0, None)


def test_a_user_has_at_most_the_allowed_endpoints(webhooks: Webhooks) -> None:
    for n in range(2):
        webhooks.add_endpoint(endpoint("alice", "https://hooks.example/", n=n), limit=2)
    with pytest.raises(TooManyWebhooks):
        webhooks.add_endpoint(endpoint("alice", "https://hooks.example/", n=3), limit=2)
    assert len(webhooks.endpoints_of("alice")) == 2  # type: ignore[arg-type]
    webhooks.add_endpoint(endpoint("bob", "https://hooks.example/", n=3), limit=2)


def test_a_claimed_delivery_is_held_by_one_process_until_its_lease_runs_out(
    webhooks: Webhooks,
) -> None:
    webhooks.add_endpoint(endpoint("alice", "https://hooks.example/in"), limit=10)
    webhooks.record([delivery("alice-endpoint-1")])
    wid = str(delivery("alice-endpoint-1")["webhook_id"])
    now = time.time()
    assert webhooks.claim(wid, now, now + 30)
    assert not webhooks.claim(wid, now + 1, now + 31)  # another process
    assert webhooks.due(now + 1, 10) == []
    assert webhooks.claim(wid, now + 31, now + 61)  # the first one died: its lease ran out
