"""Sessions and tokens that can be revoked (docs/api.md §2), on SQLite and PostgreSQL.

A running system with its web app, a second web app over the same database (as `worker web`
would be), and the real `aytada-es` command run as a process against that database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from web_server import Served, Site, json_of, serving, site, site_settings, wait_for
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aytada_es.application import hash_token
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.domain.account import Account, account_id
from aytada_es.projections import AccountView
from aytada_es.web import WebOptions
from aytada_es.web.revocations import Credential

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

COOKIE = "aytada_session"
CLOSE_WITHIN_S = 5.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def elsewhere(site: Site, site_settings: Settings) -> AsyncIterator[Served]:
    """A second web app with a system of its own over the same database, like `worker web`."""
    system = bootstrap(site_settings, roles=())
    try:
        async with serving(system, WebOptions(live="feed")) as served:
            yield served
    finally:
        system.close()


def new_user(site: Site, **options: Any) -> tuple[str, str]:
    """A new account's name and token."""
    name = f"u-{uuid.uuid4().hex[:8]}"
    _, token = site.system.studio.open_account(name, credits=100, **options)
    return name, token


def aytada_es(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line, as a process, against the site's database."""
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": settings.database_url,
        "AYTADA_PROVIDERS": "instant",
        "AYTADA_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "aytada_es", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def row(site: Site, name: str) -> AccountView:
    """The account as the read model has it now."""
    found = site.system.read_models.accounts.account(account_id(name))
    assert found is not None, name
    return found


async def login(url: str, token: str) -> str:
    """Log in through the form; the session cookie's value."""
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/login", data={"token": token})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard/videos"
    value: str = answer.cookies[COOKIE]
    return value


async def api_status(url: str, *, token: str | None = None, cookie: str | None = None) -> int:
    """The status `GET /api/videos` answers with these credentials."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        return (await http.get("/api/videos")).status_code


async def api_error(url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as h:
        answer = await h.get("/api/videos")
    assert answer.status_code == 401, answer.text
    message: str = json_of(answer)["error"]["message"]
    return message


def socket(ws_url: str, *, token: str | None = None, cookie: str | None = None) -> Any:
    """A `/ws/videos` connection with a bearer token or, from our own page, a session cookie."""
    if token is not None:
        return websockets.connect(
            f"{ws_url}/ws/videos", additional_headers={"Authorization": f"Bearer {token}"}
        )
    return websockets.connect(
        f"{ws_url}/ws/videos",
        additional_headers={"Cookie": f"{COOKIE}={cookie}"},
        origin=ws_url.replace("ws://", "http://", 1),
    )


async def opened(ws: ClientConnection) -> ClientConnection:
    """The connection once its snapshot came."""
    first = await asyncio.wait_for(ws.recv(), 10)
    assert '"type":"snapshot"' in str(first)
    return ws


async def closed(ws: ClientConnection, timeout_s: float) -> tuple[int, str]:
    """The close code and reason the server ends the connection with, within `timeout_s`."""
    with pytest.raises(ConnectionClosed) as ended:
        async with asyncio.timeout(timeout_s):
            while True:
                await ws.recv()
    assert ended.value.rcvd is not None, "the server sent no close frame"
    return ended.value.rcvd.code, ended.value.rcvd.reason


# ---- sessions --------------------------------------------------------------------------------


async def test_logout_ends_the_session_at_once_in_every_web_process(
    site: Site, elsewhere: Served
) -> None:
    _, token = new_user(site)
    cookie = await login(site.url, token)
    assert await api_status(site.url, cookie=cookie) == 200
    assert await api_status(elsewhere.url, cookie=cookie) == 200
    async with (
        socket(site.ws_url, cookie=cookie) as here,
        socket(elsewhere.ws_url, cookie=cookie) as there,
    ):
        await opened(here)
        await opened(there)
        async with httpx.AsyncClient(base_url=site.url) as http:
            answer = await http.post(
                "/logout", headers={"Origin": site.url, "Cookie": f"{COOKIE}={cookie}"}
            )
        left = time.monotonic()
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
        assert 'aytada_session=""' in answer.headers["set-cookie"]  # the browser forgets it
        assert await api_status(site.url, cookie=cookie) == 401
        assert await api_status(elsewhere.url, cookie=cookie) == 401
        async with httpx.AsyncClient(base_url=site.url) as http:
            page = await http.get("/dashboard/videos", headers={"Cookie": f"{COOKIE}={cookie}"})
        assert page.status_code == 303 and page.headers["location"] == "/login"
        for ws in (here, there):
            assert await closed(ws, CLOSE_WITHIN_S) == (4001, "logged out")
        assert time.monotonic() - left < CLOSE_WITHIN_S
    assert await api_status(site.url, token=token) == 200  # the token itself still works


async def test_a_session_expires_after_its_lifetime(site: Site) -> None:
    _, token = new_user(site)
    async with serving(site.system, WebOptions(session_ttl_s=3)) as short:
        async with httpx.AsyncClient(base_url=short.url) as http:
            answer = await http.post("/login", data={"token": token})
        assert "max-age=3" in answer.headers["set-cookie"].lower()
        cookie = answer.cookies[COOKIE]
        async with socket(short.ws_url, cookie=cookie) as ws:
            await opened(ws)
            assert await api_status(short.url, cookie=cookie) == 200
            assert await closed(ws, 3 + CLOSE_WITHIN_S) == (4001, "the session has expired")

        async def refused() -> bool:
            return await api_status(short.url, cookie=cookie) == 401

        await wait_for(refused, 5, "the expired session to be refused")


async def test_a_session_past_its_lifetime_or_unused_too_long_is_refused(site: Site) -> None:
    owner, token = site.user()
    sessions = site.served.web.sessions
    now = time.time()
    fresh, _ = sessions.open(str(owner), hash_token(token))
    old, _ = sessions.open(str(owner), hash_token(token), now=now - sessions.ttl_s - 1)
    idle, session = sessions.open(str(owner), hash_token(token), now=now - sessions.idle_s - 5)
    assert session.expires_at > now  # within its lifetime, but idle for too long
    assert await api_status(site.url, cookie=fresh) == 200
    assert await api_status(site.url, cookie=old) == 401
    assert await api_status(site.url, cookie=idle) == 401


async def test_sessions_that_ended_over_a_day_ago_are_purged_and_no_others(site: Site) -> None:
    owner, token = site.user()
    sessions = site.served.web.sessions
    day = 24 * 3600
    now = time.time()

    def opened_at(when: float) -> str:
        session_id, _ = sessions.open(str(owner), hash_token(token), now=when)
        return session_id

    live = opened_at(now)
    expired = opened_at(now - sessions.ttl_s - 2 * day)
    idle = opened_at(now - sessions.idle_s - 2 * day)  # within its lifetime, idle for days
    logged_out = opened_at(now - 3 * day)
    sessions.revoke(logged_out, now=now - 2 * day)
    lately = opened_at(now)
    sessions.revoke(lately)
    assert sessions.purge() >= 3
    assert [sessions.find(s) is not None for s in (live, expired, idle, logged_out, lately)] == [
        True,
        False,
        False,
        False,
        True,  # kept a day, so that every web process sees the logout
    ]


async def test_malformed_forged_or_huge_cookies_are_401_never_500(site: Site) -> None:
    owner, token = site.user()
    good = await login(site.url, token)
    assert await api_status(site.url, cookie=good) == 200
    flipped = ("b" if good[0] == "a" else "a") + good[1:]
    for value in (
        flipped,
        good[:-1],
        good + "x",
        "a" * 43,
        f"{owner}.{int(time.time()) + 10**6}.bWFj",  # the old signed format
        "",
        '"quoted"',
        "%00%ff",
        "x" * 8000,
    ):
        assert await api_status(site.url, cookie=value) == 401, value[:50]
        async with httpx.AsyncClient(base_url=site.url) as http:
            page = await http.get("/dashboard/images", headers={"Cookie": f"{COOKIE}={value}"})
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        with pytest.raises(InvalidStatus) as refused:
            async with socket(site.ws_url, cookie=value):
                pass
        assert refused.value.response.status_code == 401
    async with httpx.AsyncClient(base_url=site.url) as http:
        logout = await http.post("/logout", headers={"Cookie": f"{COOKIE}={'y' * 8000}"})
    assert logout.status_code == 303


# ---- tokens -----------------------------------------------------------------------------------


async def test_rotate_token_prints_a_new_token_and_the_old_one_stops_working_at_once(
    site: Site, site_settings: Settings, elsewhere: Served
) -> None:
    name, old = new_user(site)
    cookie = await login(site.url, old)
    async with (
        socket(site.ws_url, token=old) as by_token,
        socket(site.ws_url, cookie=cookie) as by_cookie,
        socket(elsewhere.ws_url, token=old) as there,
    ):
        for ws in (by_token, by_cookie, there):
            await opened(ws)
        done = await asyncio.to_thread(aytada_es, site_settings, "users", "rotate-token", name)
        returned = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # the running projections applied the change in time
        new = done.stdout.splitlines()[-1]
        assert new.startswith("ayt_") and new == new.strip() and " " not in new
        assert new != old
        # At once: the CLI returned only after the read model had the new token.
        assert await api_status(site.url, token=old) == 401
        assert await api_status(elsewhere.url, token=old) == 401
        assert await api_status(site.url, cookie=cookie) == 401  # sessions of the old token end
        assert await api_status(site.url, token=new) == 200
        assert await api_status(elsewhere.url, token=new) == 200
        for ws in (by_token, by_cookie, there):
            assert await closed(ws, CLOSE_WITHIN_S) == (4001, "the token was rotated")
        assert time.monotonic() - returned < CLOSE_WITHIN_S
    # The read model, not this process's Studio: `serve` trusts its cache, which the command's
    # process did not update.
    assert row(site, name)["token_hash"] == hash_token(new)
    assert new.encode() not in b"".join(
        n.state for n in site.system.studio.recorder.select_notifications(1, 100_000)
    )


async def test_disable_stops_the_token_sessions_and_sockets_and_rotate_token_enables_again(
    site: Site, site_settings: Settings
) -> None:
    name, token = new_user(site)
    cookie = await login(site.url, token)
    async with (
        socket(site.ws_url, token=token) as by_token,
        socket(site.ws_url, cookie=cookie) as by_cookie,
    ):
        for ws in (by_token, by_cookie):
            await opened(ws)
        done = await asyncio.to_thread(aytada_es, site_settings, "users", "disable", name)
        returned = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert "disabled" in done.stdout
        assert await api_error(site.url, token) == "the account is disabled"
        assert await api_status(site.url, cookie=cookie) == 401
        for ws in (by_token, by_cookie):
            assert await closed(ws, CLOSE_WITHIN_S) == (4001, "the account is disabled")
        assert time.monotonic() - returned < CLOSE_WITHIN_S
    async with httpx.AsyncClient(base_url=site.url) as http:
        refused = await http.post("/login", data={"token": token})
    assert refused.headers["location"].startswith("/login?error=invalid_token")
    assert row(site, name)["disabled"]

    again = await asyncio.to_thread(aytada_es, site_settings, "users", "disable", name)
    assert again.returncode == 0 and "disabled already" in again.stdout

    enabled = await asyncio.to_thread(aytada_es, site_settings, "users", "rotate-token", name)
    assert enabled.returncode == 0, enabled.stderr
    new = enabled.stdout.splitlines()[-1]
    assert await api_status(site.url, token=new) == 200
    assert await api_status(site.url, token=token) == 401
    assert await api_status(site.url, cookie=cookie) == 401
    assert not row(site, name)["disabled"]


async def test_an_unknown_user_is_exit_2_and_nothing_changes(
    site: Site, site_settings: Settings
) -> None:
    await site.settled()
    before = site.stored()
    for command in ("rotate-token", "disable"):
        done = await asyncio.to_thread(aytada_es, site_settings, "users", command, "nobody-here")
        assert done.returncode == 2, done.stdout
        assert "nobody-here" in done.stderr and "not found" in done.stderr
        assert "ayt_" not in done.stdout
    assert site.stored() == before


async def test_a_token_made_to_expire_records_its_expiry_and_is_refused_after_it(
    site: Site, site_settings: Settings
) -> None:
    name = f"u-{uuid.uuid4().hex[:8]}"
    done = await asyncio.to_thread(
        aytada_es, site_settings, "users", "add", name, "--expires-in", "3"
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.splitlines()[-1]
    assert "expires" in done.stdout
    # `users add` does not wait for the service's read models; idle, they look again within 1 s.
    accounts = site.system.read_models.accounts

    async def applied() -> bool:
        return await asyncio.to_thread(accounts.account, account_id(name)) is not None

    await wait_for(applied, 10, "the read models to apply the new account")
    expires_at = row(site, name)["token_expires_at"]
    assert expires_at is not None
    assert abs(expires_at - (time.time() + 3 * 24 * 3600)) < 60
    assert await api_status(site.url, token=token) == 200
    bad = await asyncio.to_thread(
        aytada_es, site_settings, "users", "rotate-token", name, "--expires-in", "0"
    )
    assert bad.returncode == 2 and "expires_in" in bad.stderr
    assert await api_status(site.url, token=token) == 200  # nothing changed

    expired = expiring_token(site, seconds=-1)
    assert await api_error(site.url, expired) == "the token has expired"
    async with httpx.AsyncClient(base_url=site.url) as http:
        form = await http.post("/login", data={"token": expired})
        assert form.headers["location"].startswith("/login?error=expired_token")
        answer = await http.post("/login", json={"token": expired})
        assert answer.status_code == 401


async def test_sockets_and_sessions_of_a_token_end_when_it_expires(site: Site) -> None:
    token = expiring_token(site, seconds=3)
    async with httpx.AsyncClient(base_url=site.url) as http:
        answer = await http.post("/login", data={"token": token})
    max_age = int(answer.headers["set-cookie"].lower().split("max-age=")[1].split(";")[0])
    assert 0 <= max_age <= 3  # the session ends with its token
    cookie = answer.cookies[COOKIE]
    async with (
        socket(site.ws_url, token=token) as by_token,
        socket(site.ws_url, cookie=cookie) as by_cookie,
    ):
        await opened(by_token)
        await opened(by_cookie)
        assert await closed(by_token, 3 + CLOSE_WITHIN_S) == (4001, "the token has expired")
        assert await closed(by_cookie, CLOSE_WITHIN_S) == (4001, "the session has expired")
    assert await api_error(site.url, token) == "the token has expired"
    assert await api_status(site.url, cookie=cookie) == 401


def expiring_token(site: Site, *, seconds: float) -> str:
    """A new account whose token expires `seconds` from now (in the past when negative)."""
    token = f"ayt_{uuid.uuid4().hex}"
    account = Account.open(
        name=f"u-{uuid.uuid4().hex[:8]}",
        role="user",
        token_hash=hash_token(token),
        token_expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
        actor="cli",
    )
    site.system.studio.save(account)
    return token


async def test_a_socket_whose_handshake_raced_a_rotation_is_still_closed(site: Site) -> None:
    owner, token = site.user()
    watch = site.served.web.hub.revocations
    accounts = site.system.read_models.accounts

    async def projected() -> bool:
        return await asyncio.to_thread(accounts.account, owner) is not None

    await wait_for(projected, 10, "the account to reach the read model")
    stale = accounts.account(owner)
    assert stale is not None
    site.system.studio.rotate_token(stale["name"])

    async def seen() -> bool:
        row = await asyncio.to_thread(accounts.account, owner)
        return (
            row is not None
            and row["token_hash"] != stale["token_hash"]
            and (watch.position >= row["position"])
        )

    await wait_for(seen, 10, "the watch to see the rotation")
    # Authenticated with the row as it was before the rotation; subscribed after the watch
    # had already ended the account's subscriptions.
    credential = Credential(str(owner), hash_token(token), stale["position"])
    with site.served.web.hub.subscription(str(owner), credential) as live:
        assert live.ended.is_set()
        assert (live.close_code, live.close_reason) == (4001, "the token was rotated")
