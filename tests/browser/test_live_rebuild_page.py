"""My Videos in a real browser across `projections rebuild --live`: the socket's resync and new
snapshot keep the cards, and changes keep showing live afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from aytada_es.adapters.sql import SQLStore
from aytada_es.projections import ReadModels
from aytada_es.projections.live import rebuild_live

from .live_site import Site

pytestmark = pytest.mark.browser

LIVE_S = 1.0


def test_the_page_resyncs_and_keeps_updating_after_a_live_rebuild(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    before = [site.create(owner, f"Before {i}") for i in range(2)]
    frames: list[dict[str, Any]] = []
    page = new_page(None)
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload))),
    )
    page.goto("/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/videos")
    expect(page.locator("[data-project-id]")).to_have_count(2)

    studio = site.system.studio

    def runner_of(store: SQLStore, generation: int) -> ReadModels:
        return ReadModels(studio, store, prepare=False, generation=generation)

    done = rebuild_live(studio, runner_of, grace_s=0.5)
    expect(page.locator("[data-project-id]")).to_have_count(2)

    def resynced() -> bool:
        kinds = [(f.get("type"), f.get("epoch")) for f in frames]
        return ("resync", done.epoch) in kinds and kinds[-1] != ("resync", done.epoch)

    for _ in range(100):  # the frames arrive while the page runs
        if resynced():
            break
        page.wait_for_timeout(50)
    assert resynced(), frames
    after = site.create(owner, "After the switch")
    expect(page.locator(f'[data-project-id="{after}"]')).to_be_visible(timeout=LIVE_S * 1000)
    for project_id in before:
        expect(page.locator(f'[data-project-id="{project_id}"]')).to_be_visible()
    assert page.js_errors == []
