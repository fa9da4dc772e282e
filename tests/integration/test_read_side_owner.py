"""A request never writes the read models: with no projection runner, new accounts still get in.

The system here is built but not started, so nothing applies events: whatever a request does,
the read models' positions and rows must stay as they were, and a just-opened account, found
in the log's events the read models have not applied, still logs in and reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from web_server import Served, serving, site_settings

from aytada_es.bootstrap import System, bootstrap
from aytada_es.config import Settings

__all__ = ["site_settings"]
pytestmark = pytest.mark.asyncio(loop_scope="module")
COOKIE = "aytada_session"


@pytest.fixture(scope="module")
def stopped(site_settings: Settings, broker: str) -> Iterator[System]:
    """A system whose parts never run: no projection runner applies anything."""
    system = bootstrap(site_settings, bootstrap_servers=broker)
    try:
        yield system
    finally:
        system.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(stopped: System) -> AsyncIterator[Served]:
    async with serving(stopped) as served:
        yield served


def read_side(system: System) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The read models' positions and every account row they hold."""
    models = system.read_models
    rows = models.store.query("SELECT * FROM {aytada_accounts} ORDER BY id")
    return models.positions(), rows


async def test_a_just_opened_account_logs_in_and_reads_and_nothing_is_applied(
    stopped: System, served: Served
) -> None:
    account, token = stopped.studio.open_account("ada-unapplied", credits=50)
    before = read_side(stopped)
    assert stopped.read_models.accounts.account(account.id) is None  # nothing applied it
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        by_token = await http.get("/api/scripts", headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 200, by_token.text
        login = await http.post("/login", data={"token": token})
        assert login.status_code == 303, login.text
        cookie = login.cookies[COOKIE]
    async with httpx.AsyncClient(base_url=served.url, cookies={COOKIE: cookie}) as browser:
        by_cookie = await browser.get("/api/videos")
        assert by_cookie.status_code == 200, by_cookie.text
        assert by_cookie.json()["videos"] == []
    assert read_side(stopped) == before
    assert stopped.read_models.accounts.account(account.id) is None


async def test_events_not_applied_are_folded_in_order(stopped: System, served: Served) -> None:
    account, old = stopped.studio.open_account("bo-unapplied", credits=7)
    new = stopped.studio.rotate_token("bo-unapplied").token
    before = read_side(stopped)
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        rotated_away = await http.get("/api/scripts", headers={"Authorization": f"Bearer {old}"})
        assert rotated_away.status_code == 401
        current = await http.get("/api/scripts", headers={"Authorization": f"Bearer {new}"})
        assert current.status_code == 200, current.text
    found = stopped.read_models.account(account.id)
    assert found is not None and found["balance"] == 7 and not found["disabled"]
    stopped.studio.disable_account("bo-unapplied")
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        disabled = await http.get("/api/scripts", headers={"Authorization": f"Bearer {new}"})
        assert disabled.status_code == 401
    assert read_side(stopped) == before


async def test_an_unknown_token_is_refused_without_writing(stopped: System, served: Served) -> None:
    before = read_side(stopped)
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        answer = await http.get("/api/scripts", headers={"Authorization": "Bearer ayt_nobody"})
    assert answer.status_code == 401
    assert read_side(stopped) == before


async def test_the_fold_matches_the_read_model(stopped: System) -> None:
    """Once the runner applies the same events, its rows are what the fold showed."""
    studio, models = stopped.studio, stopped.read_models
    account, _ = studio.open_account("di-folded", credits=30)
    studio.grant_credits("di-folded", 12)
    folded = models.account(account.id)
    assert models.accounts.account(account.id) is None
    while models.catch_up():
        pass
    applied = models.accounts.account(account.id)
    assert applied is not None and folded == applied
    assert applied["balance"] == 42
