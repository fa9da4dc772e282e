"""Read models seen from outside, on SQLite and PostgreSQL: `/healthz`, `/metrics` and
`projections status` name one that stopped or lags, in `serve`, `worker web` and
`worker projections`, until it is back."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from polling import wait_for
from prometheus_client.parser import text_string_to_metric_families
from web_server import Site, json_of, serving, site, site_settings

from aytada_es import cli
from aytada_es.adapters.sql import Transaction
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.domain.account import Account
from aytada_es.projections import Backoff, CardChange, ReadModels
from aytada_es.projections.base import DomainEvent
from aytada_es.web.probes import probes_app
from aytada_es.web.serving import WebServer

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"title": "Sparkling water", "format": "9:16", "brief": "Real fruit, no sugar."}
READ_MODELS = ("videos", "deleted", "accounts", "scripts", "images", "credits", "open_steps")
PARTS = {f"read_model:{name}" for name in READ_MODELS}


async def scrape(url: str, name: str) -> dict[str, float]:
    """One metric of `/metrics`, by its `projection` label."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    return {
        s.labels["projection"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def script_rows(models: ReadModels) -> list[dict[str, Any]]:
    return models.store.query("SELECT * FROM {aytada_scripts} ORDER BY project_id")


async def test_a_stopped_read_model_is_named_everywhere_until_it_resumes_by_itself(
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="aytada_es.projections.runner")
    models = site.system.read_models
    monkeypatch.setattr(models, "backoff", Backoff(first_s=0.1, max_s=0.4))
    fault = {"on": True}
    applies = models.scripts.apply

    def faulty(tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if fault["on"]:
            raise RuntimeError("no space left on device")
        return applies(tx, position, event)

    monkeypatch.setattr(models.scripts, "apply", faulty)
    monkeypatch.setenv("AYTADA_DATA_DIR", str(site.system.settings.data_dir))
    monkeypatch.setenv("AYTADA_DATABASE_URL", site.system.settings.database_url)
    monkeypatch.setenv("AYTADA_PROVIDERS", "instant")
    owner, token = site.user()
    async with site.client(token) as http:
        created = json_of(await http.post("/api/projects", json={**BRIEF, "autopilot": True}))

        def completed() -> bool:
            _, cards = models.videos.videos_of(owner)
            return [c["status"] for c in cards if c["id"] == created["id"]] == ["completed"]

        # The pipeline and the other read models go on without My Scripts.
        await wait_for(completed, 60, "the project to complete without My Scripts")
        assert json_of(await http.get("/api/scripts"))["scripts"] == []
        await wait_for(lambda: _attempts(models, "scripts") >= 3, 10, "three attempts")

        answer = await http.get("/healthz")
        assert answer.status_code == 503, answer.text
        health = json_of(answer)
        assert health["down"] == ["read_model:scripts"]
        assert set(health["parts"]) >= PARTS
        assert "read_model:scripts" in health["error"]["message"]
        stopped = await scrape(site.url, "aytada_projection_stopped")
        assert stopped == {name: float(name == "scripts") for name in READ_MODELS}
        assert set(await scrape(site.url, "aytada_projection_lag_seconds")) == set(READ_MODELS)
        assert (await scrape(site.url, "aytada_projection_lag_events"))["scripts"] > 0

        assert await asyncio.to_thread(cli.main, ["projections", "status"]) == 1
        shown = capsys.readouterr().out
        assert "needs attention: scripts" in shown
        assert "RuntimeError: no space left on device" in shown

        fault["on"] = False
        await wait_for(lambda: _attempts(models, "scripts") == 0, 10, "My Scripts to resume")
        await site.settled()
        assert (await http.get("/healthz")).status_code == 200
        assert len(json_of(await http.get("/api/scripts"))["scripts"]) == 1
    assert models.store.query("SELECT * FROM {aytada_projection_errors}") == []
    assert await asyncio.to_thread(cli.main, ["projections", "status"]) == 0

    # One line per back-off step, the first with the traceback; then one saying it resumed.
    failed = [
        r for r in caplog.records if "'scripts'" in r.getMessage() and "cannot apply" in r.msg
    ]
    (resumed,) = [r for r in caplog.records if "'scripts' resumed" in r.getMessage()]
    assert f"after {len(failed)} failed attempts" in resumed.getMessage()
    assert failed[0].exc_info is not None and all(r.exc_info is None for r in failed[1:])
    # It caught up exactly: its rows are those a rebuild gives.
    resumed_rows = script_rows(models)
    await asyncio.to_thread(models.rebuild)
    assert script_rows(models) == resumed_rows


def _attempts(models: ReadModels, name: str) -> int:
    """How many times the read model failed on its event so far (0: not stopped)."""
    for status in models.statuses():
        if status.name == name:
            return 0 if status.stopped is None else status.stopped.attempts
    raise AssertionError(f"no read model {name}")


async def test_a_web_process_names_every_read_model_that_lags_more_than_30_s(
    settings: Settings,
) -> None:
    system = bootstrap(settings, roles=())  # `worker web`: the projections run elsewhere
    try:
        account, _ = system.studio.open_account("ada", credits=5)
        async with serving(system) as served, httpx.AsyncClient(base_url=served.url) as http:
            fresh = json_of(await http.get("/healthz"))  # events not applied, but new
            assert fresh["status"] == "ok" and set(fresh["parts"]) >= PARTS
            await asyncio.to_thread(system.read_models.catch_up)  # as `worker projections` does
            stale = system.studio.account(account.id)
            stale.trigger_event(Account.CreditsGranted, amount=5, actor="cli")
            (granted,) = stale.collect_events()
            minute_ago = datetime.now(UTC) - timedelta(seconds=45)
            system.studio.events.put([dataclasses.replace(granted, timestamp=minute_ago)])

            answer = await http.get("/healthz")
            assert answer.status_code == 503, answer.text
            assert set(json_of(answer)["down"]) == PARTS

            await asyncio.to_thread(system.read_models.catch_up)
            assert (await http.get("/healthz")).status_code == 200
    finally:
        system.close()


async def test_a_projections_worker_reports_its_read_models(
    settings: Settings, broker: str
) -> None:
    system = bootstrap(settings, roles=("projections",), bootstrap_servers=broker)
    try:
        async with (
            system.running(),
            WebServer(probes_app(system.service()), port=0) as server,
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        ):
            system.studio.open_account("ada", credits=5)
            await wait_for(lambda: _applied(system.read_models), 10, "the account to be applied")
            answer = await http.get("/healthz")
            assert answer.status_code == 200, answer.text
            assert set(json_of(answer)["parts"]) == {"broker", "store", "projections", *PARTS}
            current = dict.fromkeys(READ_MODELS, 0.0)
            assert await scrape(server.url, "aytada_projection_lag_seconds") == current
            assert await scrape(server.url, "aytada_projection_stopped") == current
    finally:
        system.close()


def _applied(models: ReadModels) -> bool:
    return all(s.lag_events == 0 and s.position > 0 for s in models.statuses())
