"""Limits of the web edge (docs/api.md §2): sockets per user and per process, rate limits, the Host
check, numbers from requests, response headers and the access log; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
import websockets
from web_server import SECRET_KEY, Site, json_of, serving, site, site_settings, wait_for
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from aytada_es.adapters.links import AssetLinks
from aytada_es.bootstrap import bootstrap
from aytada_es.web import WebOptions, create_app
from aytada_es.web.serving import WebServer

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"title": "Limits", "format": "9:16", "brief": "Sparkling water."}
LOGINS_PER_MINUTE, WRITES_PER_MINUTE = 3, 5
HEX_ID = "ab" * 32  # an asset id of the right shape that no file has


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def limited(site: Site) -> AsyncIterator[Site]:
    """A web process over the site's database (like `worker web`) with every limit on.

    The site itself runs with the rate limits off (`0`), as every other web test does.
    """
    settings = site.system.settings.model_copy(
        update={
            "ws_per_user": 20,
            "rate_limit_login": LOGINS_PER_MINUTE,
            "rate_limit_writes": WRITES_PER_MINUTE,
        }
    )
    system = bootstrap(settings, roles=())
    try:
        async with serving(system) as served:
            yield Site(system, served)
    finally:
        system.close()


async def open_socket(url: str, token: str, **options: Any) -> ClientConnection:
    ws = await websockets.connect(
        f"{url}/ws/videos", additional_headers={"Authorization": f"Bearer {token}"}, **options
    )
    await asyncio.wait_for(ws.recv(), 10)  # the snapshot: the socket is fully open
    return ws


async def refused(url: str, token: str, **options: Any) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a handshake that must be refused."""
    with pytest.raises(InvalidStatus) as refusal:
        ws = await open_socket(url, token, **options)
        await ws.close()
    response = refusal.value.response
    body: dict[str, Any] = json.loads(response.body or b"null")
    return response.status_code, body


async def close_all(sockets: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in sockets))


# ---- WebSockets per user and per process ------------------------------------------------------


async def test_a_users_21st_socket_is_refused_with_429_while_another_user_lists_quickly(
    limited: Site,
) -> None:
    _, greedy = limited.user()
    _, other = limited.user()
    sockets = [await open_socket(limited.ws_url, greedy) for _ in range(20)]
    try:
        status, body = await refused(limited.ws_url, greedy)
        assert status == 429 and body["error"]["code"] == "too_many_requests"
        async with limited.client(other) as http:
            began = time.monotonic()
            listed = await http.get("/api/videos")
            assert listed.status_code == 200 and time.monotonic() - began < 5
        await (await open_socket(limited.ws_url, other)).close()  # others are not held back
        # A closed socket gives its place back (once the server has seen it go).
        await sockets.pop().close()
        replacement: list[ClientConnection] = []

        async def reopened() -> bool:
            try:
                replacement.append(await open_socket(limited.ws_url, greedy))
            except InvalidStatus:
                return False
            return True

        await wait_for(reopened, 10, "the freed place to be taken again")
        sockets += replacement
    finally:
        await close_all(sockets)


async def test_racing_handshakes_of_one_user_never_get_more_than_20_sockets(
    limited: Site,
) -> None:
    _, token = limited.user()
    attempts = await asyncio.gather(
        *(open_socket(limited.ws_url, token) for _ in range(30)), return_exceptions=True
    )
    opened = [a for a in attempts if isinstance(a, ClientConnection)]
    refusals = [a for a in attempts if isinstance(a, InvalidStatus)]
    try:
        assert len(opened) == 20
        assert len(refusals) == 10
        assert {r.response.status_code for r in refusals} == {429}
    finally:
        await close_all(opened)


async def test_a_process_holding_its_most_sockets_refuses_the_next_with_503(
    limited: Site,
) -> None:
    tokens = [limited.user()[1] for _ in range(3)]
    async with serving(limited.system, WebOptions(max_sockets=2)) as full:
        sockets = [await open_socket(full.ws_url, token) for token in tokens[:2]]
        try:
            status, body = await refused(full.ws_url, tokens[2])
            assert status == 503 and body["error"]["code"] == "unavailable"
            async with httpx.AsyncClient(base_url=full.url, timeout=10) as http:
                headers = {"Authorization": f"Bearer {tokens[2]}"}
                assert (await http.get("/api/videos", headers=headers)).status_code == 200
        finally:
            await close_all(sockets)


# ---- rate limits ------------------------------------------------------------------------------


async def test_logins_over_the_limit_from_one_address_are_429_with_retry_after(
    limited: Site,
) -> None:
    _, token = limited.user()
    crowded = {"X-Forwarded-For": "10.1.1.1"}  # uvicorn trusts it from 127.0.0.1, like a proxy
    async with limited.client(**crowded) as http:
        for _ in range(LOGINS_PER_MINUTE):
            assert (await http.post("/login", json={"token": token})).status_code == 303
        answer = await http.post("/login", json={"token": token})
        assert answer.status_code == 429
        assert json_of(answer)["error"]["code"] == "too_many_requests"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        form = await http.post("/login", data={"token": token, "next": "/dashboard/images"})
        assert form.status_code == 303
        target = urlsplit(form.headers["location"])
        assert target.path == "/login" and "error=too_many_attempts" in target.query
        assert "next=%2Fdashboard%2Fimages" in target.query
    async with limited.client() as anonymous:
        page = await anonymous.get(form.headers["location"])
        assert "Too many sign-in attempts" in page.text
    async with limited.client(**{"X-Forwarded-For": "10.1.1.2"}) as http:
        assert (await http.post("/login", json={"token": token})).status_code == 303


async def test_writes_over_the_limit_of_one_user_are_429_with_retry_after(
    limited: Site,
) -> None:
    _, busy = limited.user()
    _, calm = limited.user()
    async with limited.client(busy) as http:
        for _ in range(WRITES_PER_MINUTE):
            assert (await http.post("/api/projects", json=BRIEF)).status_code == 201
        answer = await http.post("/api/projects", json=BRIEF)
        assert answer.status_code == 429
        assert json_of(answer)["error"]["code"] == "too_many_requests"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        await limited.settled()
        listed = json_of(await http.get("/api/videos"))["videos"]  # reading is not a write
        assert len(listed) == WRITES_PER_MINUTE, "the refused write stored nothing"
    async with limited.client(calm) as http:
        assert (await http.post("/api/projects", json=BRIEF)).status_code == 201


async def test_a_limit_of_0_is_off(site: Site) -> None:
    _, token = site.user()
    async with site.client(token) as http:
        for _ in range(12):
            assert (await http.post("/login", json={"token": token})).status_code == 303
        for _ in range(WRITES_PER_MINUTE * 2):
            assert (await http.post("/api/projects", json=BRIEF)).status_code == 201


# ---- numbers from requests --------------------------------------------------------------------


@pytest.mark.parametrize("expires", ["²", "9" * 5000, "١٢٣", "-1", "1e9"])
async def test_a_public_link_with_a_bad_expiry_is_404_not_500(site: Site, expires: str) -> None:
    async with site.client() as http:
        answer = await http.get(
            f"/public/assets/{HEX_ID}", params={"expires": expires, "signature": "0" * 64}
        )
    assert answer.status_code == 404
    assert json_of(answer)["error"]["code"] == "not_found"


async def test_a_session_cookie_with_a_bad_expiry_is_401_not_500(site: Site) -> None:
    owner, _ = site.user()
    for expiry in ("²", "9" * 5000, "9" * 19):
        cookie = f"aytada_session={owner}.{expiry}.bWFj".encode()
        async with site.client() as http:
            answer = await http.get("/api/videos", headers={"Cookie": cookie})
        assert answer.status_code == 401, expiry[:10]


# ---- headers ----------------------------------------------------------------------------------


async def test_files_are_served_with_nosniff(site: Site) -> None:
    asset = site.system.assets.put(b"\x89PNG not really", kind="banner", content_type="image/png")
    link = AssetLinks(SECRET_KEY.encode(), site.url).url(asset["id"])
    async with httpx.AsyncClient(timeout=10) as http:
        public = await http.get(link)
        static = await http.get(f"{site.url}/static/app.css")
    assert public.status_code == 200 and public.content == b"\x89PNG not really"
    assert static.status_code == 200
    for answer in (public, static):
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in public.headers["content-security-policy"]


# ---- the Host check ---------------------------------------------------------------------------


async def test_a_host_that_is_not_allowed_is_400_and_the_allowed_ones_pass(site: Site) -> None:
    _, token = site.user()
    async with site.client(token) as http:
        for host, status in (
            ("evil.example", 400),
            ("127.0.0.1.evil.example:80", 400),
            ("", 400),
            ("localhost", 200),
            ("LOCALHOST:8000", 200),
            ("127.0.0.1", 200),
            ("[::1]:8000", 200),
        ):
            answer = await http.get("/api/videos", headers={"Host": host})
            assert answer.status_code == status, host
            if status == 400:
                assert json_of(answer)["error"]["code"] == "host_not_allowed"
    port = urlsplit(site.url).port
    status, body = await refused(f"ws://evil.example:{port}", token, host="127.0.0.1", port=port)
    assert status == 400 and body["error"]["code"] == "host_not_allowed"
    ws = await open_socket(f"ws://localhost:{port}", token, host="127.0.0.1", port=port)
    await ws.close()


async def test_allowed_hosts_name_the_hosts_and_a_star_allows_any(site: Site) -> None:
    for hosts, allowed, refused_host in (
        (("app.example",), "app.example", "localhost"),
        (("*",), "anything.example", None),
    ):
        settings = site.system.settings.model_copy(update={"allowed_hosts": hosts})
        system = bootstrap(settings, roles=())
        try:
            async with serving(system) as served, httpx.AsyncClient(base_url=served.url) as http:
                answer = await http.get("/healthz", headers={"Host": allowed})
                assert answer.status_code in (200, 503), allowed  # the host check let it in
                if refused_host is not None:
                    answer = await http.get("/healthz", headers={"Host": refused_host})
                    assert answer.status_code == 400
        finally:
            system.close()


# ---- the access log ---------------------------------------------------------------------------


async def test_the_access_log_shows_no_token_or_link_signature(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    _, token = site.user()
    app = create_app(site.system.service(), secret_key=SECRET_KEY)
    signed = "f00dcafe" * 8
    caplog.set_level(logging.INFO)
    async with WebServer(app, port=0, access_log=True, log_level="info") as server:
        ws_url = server.url.replace("http://", "ws://", 1)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            await http.get("/api/videos", params={"token": token, "after": "1"})
            await http.get(f"/public/assets/{HEX_ID}?expires=99&signature={signed}")
            await http.get(f"/public/assets/{HEX_ID}?expires=99&%73ignature={signed}")
        async with websockets.connect(f"{ws_url}/ws/videos?token={token}") as ws:
            await ws.recv()
        port = urlsplit(server.url).port
        with pytest.raises(InvalidStatus):
            async with websockets.connect(
                f"ws://evil.example:{port}/ws/videos?token={token}", host="127.0.0.1", port=port
            ):
                pass
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("uvicorn"))
    assert "/api/videos?token=[redacted]&after=1" in logged
    assert "/public/assets/" in logged and "signature=[redacted]" in logged
    assert '"WebSocket /ws/videos' in logged
    assert token not in logged and signed not in logged


async def test_a_huge_content_length_is_refused_not_a_server_error(site: Site) -> None:
    _, token = site.user()
    reader, writer = await asyncio.open_connection("127.0.0.1", urlsplit(site.url).port)
    try:
        writer.write(
            (
                "POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {'9' * 5000}\r\n\r\n{{}}"
            ).encode()
        )
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(status_line.split()[1])
    assert 400 <= status < 500, status_line
