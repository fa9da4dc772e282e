"""Operations: `/metrics` and `/healthz` of the running system, of the web app and of a worker."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from web_server import Site, json_of, site, site_settings, wait_for

from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.consumers.registry import BUILT_IN
from aytada_es.consumers.runner import StageRunner
from aytada_es.kafka.broker import BundledBroker
from aytada_es.web.probes import probes_app
from aytada_es.web.serving import WebServer

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"title": "Sparkling water", "format": "9:16", "brief": "Real fruit, no sugar."}
STAGES = [s.name for s in BUILT_IN]


@dataclass
class Scrape:
    """One scrape of `/metrics`, parsed with prometheus_client's own text parser."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        return cls(samples)

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no sample {name}{labels}"
        return self.samples[key]

    def by(self, name: str, label: str) -> dict[str, float]:
        """Every sample of a metric, by the value of one label."""
        return {
            dict(labels)[label]: value for (n, labels), value in self.samples.items() if n == name
        }


async def scrape(url: str) -> Scrape:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return Scrape.parse(answer.text)


async def caught_up(site: Site) -> bool:
    """Every stored event published and applied to every read model, and no stage busy (the
    webhooks stage handles a project's last events after its card shows it completed)."""
    now = await scrape(site.url)
    lags = now.by("aytada_projection_lag_events", "projection")
    busy = [
        *now.by("aytada_stage_projects_in_progress", "stage").values(),
        *now.by("aytada_stage_messages_waiting", "stage").values(),
    ]
    return (
        not any(busy)
        and now("aytada_relay_lag_events") == 0
        and now("aytada_relay_published_total") == now("aytada_events_stored_total")
        and len(lags) == len(site.system.read_models.projections)
        and not any(lags.values())
    )


async def test_metrics_move_as_projects_run_and_settle_with_every_event_published(
    site: Site,
) -> None:
    before = await scrape(site.url)
    _, token = site.user()
    async with site.client(token) as http:
        for _ in range(3):
            created = await http.post("/api/projects", json={**BRIEF, "autopilot": True})
            assert created.status_code == 201, created.text
    await site.settled()
    await wait_for(lambda: caught_up(site), 30, "every event published and projected")
    after = await scrape(site.url)
    stored = after("aytada_events_stored_total")
    assert stored > before("aytada_events_stored_total")
    # Every event of this module's fresh store was saved by this process, and published once.
    assert stored == after("aytada_store_position") == site.stored()
    assert after("aytada_relay_published_total") == stored
    for stage in STAGES:
        consumed = after("aytada_stage_consumed_total", stage=stage)
        assert consumed > before.by("aytada_stage_consumed_total", "stage").get(stage, 0), stage
        handled = after("aytada_stage_handling_seconds_count", stage=stage)
        assert handled >= 3, stage  # each of the three projects went through every stage
        assert after("aytada_stage_handling_seconds_sum", stage=stage) > 0
        assert after("aytada_stage_failures_total", stage=stage) == 0
        assert after("aytada_stage_dead_lettered_total", stage=stage) == 0
        assert after("aytada_stage_projects_in_progress", stage=stage) == 0  # all settled
        assert after("aytada_stage_messages_waiting", stage=stage) == 0
    assert set(after.by("aytada_part_up", "part").values()) == {1.0}


async def test_lags_count_the_events_waiting_while_the_relay_and_projections_are_stopped(
    site: Site,
) -> None:
    await wait_for(lambda: caught_up(site), 30, "nothing left to publish or project")
    await site.system.kill("relay")
    await site.system.kill("projections")
    try:
        stored = site.stored()
        site.user()  # opens an account: events nobody publishes or projects for now
        waiting = site.stored() - stored
        assert waiting > 0
        stopped = await scrape(site.url)
        assert stopped("aytada_relay_lag_events") == waiting
        assert set(stopped.by("aytada_projection_lag_events", "projection").values()) == {waiting}
        assert stopped("aytada_part_up", part="relay") == 0
        assert stopped("aytada_part_up", part="projections") == 0
    finally:
        site.system.revive("relay")
        site.system.revive("projections")
    await wait_for(lambda: caught_up(site), 30, "the lags to return to 0")


async def test_the_websocket_clients_gauge_follows_a_socket_that_connects_and_closes(
    site: Site,
) -> None:
    _, token = site.user()
    assert (await scrape(site.url))("aytada_websocket_clients") == 0
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(f"{site.ws_url}/ws/videos", additional_headers=headers) as ws:
        await asyncio.wait_for(ws.recv(), 5)  # the snapshot: the socket is subscribed
        assert (await scrape(site.url))("aytada_websocket_clients") == 1
    await wait_for(lambda: _clients_are(site.url, 0), 10, "the closed socket to leave the gauge")


async def _clients_are(url: str, count: int) -> bool:
    return (await scrape(url))("aytada_websocket_clients") == count


async def test_healthz_is_503_naming_a_killed_stage_until_it_is_revived(site: Site) -> None:
    async with site.client() as http:
        healthy = json_of(await http.get("/healthz"))
        assert healthy["status"] == "ok"
        assert {f"stage:{name}" for name in STAGES} <= set(healthy["parts"])
        await site.system.kill("stage:scenes")
        try:
            answer = await http.get("/healthz")
            assert answer.status_code == 503
            down = json_of(answer)
            assert down["down"] == ["stage:scenes"]
            assert down["parts"]["stage:scenes"] is False and down["parts"]["broker"] is True
            assert "stage:scenes" in down["error"]["message"]
            assert (await scrape(site.url))("aytada_part_up", part="stage:scenes") == 0
        finally:
            site.system.revive("stage:scenes")
        assert (await http.get("/healthz")).status_code == 200


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(tmp_path / "var"),
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_KAFKA_NAMESPACE": f"t{uuid.uuid4().hex[:10]}.",
        }
    )


async def test_a_stage_that_keeps_crashing_is_down_while_it_waits_to_restart(
    tmp_path: Path, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(runner: StageRunner, stop: asyncio.Event) -> None:
        raise RuntimeError(f"{runner.stage.name} cannot reach its consumer group")

    monkeypatch.setattr(StageRunner, "run", crash)
    system = bootstrap(_settings(tmp_path), roles=("stages",), bootstrap_servers=broker)
    try:
        async with system.running():
            await wait_for(
                lambda: _all_down(system.health(), "stage:"), 5, "the crashed stages to be down"
            )
            scraped = Scrape.parse(system.metrics.exposition(None)[0].decode())
            assert scraped("aytada_part_up", part="stage:ideas") == 0
            assert scraped("aytada_part_up", part="broker") == 1
    finally:
        system.close()


async def _all_down(parts: dict[str, bool], prefix: str) -> bool:
    named = [up for name, up in parts.items() if name.startswith(prefix)]
    return len(named) == len(STAGES) and not any(named)


async def test_a_worker_names_the_broker_when_it_stops_answering(tmp_path: Path) -> None:
    with BundledBroker() as own:
        system = bootstrap(_settings(tmp_path), roles=("relay",), bootstrap_servers=own.bootstrap)
        try:
            async with (
                system.running(),
                WebServer(probes_app(system.service()), port=0) as server,
                httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            ):
                answer = await http.get("/healthz")
                assert answer.status_code == 200, answer.text
                assert json_of(answer)["parts"] == {
                    "anchors": True,
                    "broker": True,
                    "relay": True,
                    "store": True,
                }
                await asyncio.to_thread(own.stop)
                answer = await http.get("/healthz")
                assert answer.status_code == 503, answer.text
                assert json_of(answer)["down"] == ["broker"]
        finally:
            system.close()
