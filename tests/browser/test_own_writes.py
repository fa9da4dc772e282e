"""Read your own writes in a real browser: after a click, the pages never show the older state,
even while the read models lag behind the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .live_site import Site

pytestmark = pytest.mark.browser

# Each status the Studio and every card shows, in order, from the moment this runs.
RECORD_STATUSES = """
window.seenStatuses = {};
const note = (node) => {
  if (node.nodeType !== 1 || !node.dataset.status) return;
  if (!node.matches("#studio, [data-project-id]")) return;
  const key = node.id === "studio" ? "studio" : node.dataset.projectId;
  const seen = (window.seenStatuses[key] = window.seenStatuses[key] || []);
  if (seen[seen.length - 1] !== node.dataset.status) seen.push(node.dataset.status);
};
new MutationObserver((changes) => {
  for (const change of changes) {
    note(change.target);
    for (const added of change.addedNodes) {
      if (added.nodeType !== 1) continue;
      note(added);
      added.querySelectorAll("[data-status]").forEach(note);
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-status"],
                       childList: true });
"""


def after_first(seen: list[str], status: str) -> list[str]:
    """What was shown from the first time `status` was."""
    return seen[seen.index(status) :] if status in seen else []


@contextmanager
def read_models_lagging(site: Site) -> Iterator[None]:
    """Nothing is applied to the read models meanwhile: the runner waits for its batch lock."""
    lock = site.system.read_models._lock  # the runner's one-batch-at-a-time lock
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def until(page: Page, check: Any, what: str, timeout_s: float = 10) -> None:
    """Wait for a condition on what the page did (its events are handled while it waits)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(20)


def reads_with(requests: list[Any], path: str, position: int) -> list[Any]:
    return [
        r
        for r in requests
        if r.method == "GET" and path in r.url and f"min_position={position}" in r.url
    ]


def test_after_a_step_button_the_pages_never_show_the_older_status(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    title = "Own writes in the browser"
    project_id = site.create(owner, title)
    site.wait_for(project_id, "draft")
    site.controls.hold(title, "ideas")  # the step stays active: the status to see is its own
    page: Page = new_page(token)
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    page.goto(f"/studio/{project_id}")
    studio = page.locator("#studio")
    expect(studio).to_have_attribute("data-status", "draft")
    page.evaluate(RECORD_STATUSES)

    with read_models_lagging(site):
        with page.expect_response(lambda r: r.url.endswith(f"/{project_id}/ideas")) as answer:
            page.locator('button[data-step="ideas"]').click()
        position = int(answer.value.headers["x-aytada-position"])
        assert max(site.system.read_models.positions().values()) < position
        until(
            page,
            lambda: bool(reads_with(requests, f"/api/projects/{project_id}", position)),
            "the Studio to read the project with min_position",
        )
    expect(studio).to_have_attribute("data-status", "generating_ideas")
    shown = page.evaluate("window.seenStatuses")["studio"]
    assert "draft" not in after_first(shown, "generating_ideas"), shown

    # My Videos opened right after a click lists from read models that have not applied it yet.
    other = "Own writes, then My Videos"
    other_id = site.create(owner, other)
    site.wait_for(other_id, "draft")
    site.controls.hold(other, "ideas")
    page.goto(f"/studio/{other_id}")
    expect(studio).to_have_attribute("data-status", "draft")
    page.add_init_script(RECORD_STATUSES)
    with read_models_lagging(site):
        with page.expect_response(lambda r: r.url.endswith(f"/{other_id}/ideas")) as answer:
            page.locator('button[data-step="ideas"]').click()
        position = int(answer.value.headers["x-aytada-position"])
        requests.clear()
        page.goto("/dashboard/videos")
        until(
            page,
            lambda: bool(reads_with(requests, "/api/videos", position)),
            "My Videos to read the list with min_position",
        )
        assert max(site.system.read_models.positions().values()) < position
    card = page.locator(f'[data-project-id="{other_id}"]')
    expect(card).to_have_attribute("data-status", "generating_ideas")
    shown = page.evaluate("window.seenStatuses")[str(other_id)]
    assert shown == ["generating_ideas"], shown
    site.controls.release(title)
    site.controls.release(other)
    expect(card).to_have_attribute("data-status", "ideas_ready")
    assert page.js_errors == []
