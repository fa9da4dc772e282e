"""My Videos in a real browser: cards per status, live updates, the polling fallback, isolation."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .live_site import Site, sign_in

pytestmark = pytest.mark.browser

LIVE_S = 1.0  # a change on the server shows on the page within this
ACTIONS = {"continue": "Continue in Studio", "view": "View Ad", "retry": "View & Retry"}
SCREENSHOT = Path(__file__).parents[2] / "docs" / "screenshots" / "my-videos.png"


def card(page: Page, project_id: Any) -> Any:
    return page.locator(f'[data-project-id="{project_id}"]')


def processing_badge(page: Page) -> Any:
    return page.locator("[data-processing]")


def settle(page: Page, ms: int = 300) -> None:
    """Give in-flight requests (real time) a moment to be made and counted."""
    page.wait_for_timeout(ms)


def wait_count(page: Page, seen: list[str], count: int, timeout_s: float = 3.0) -> None:
    """Wait until `count` requests have finished, and the page has applied the last answer."""
    deadline = time.monotonic() + timeout_s
    while len(seen) < count and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    page.wait_for_timeout(100)
    assert len(seen) == count, f"{len(seen)} requests to /api/videos, expected {count}"


def test_signing_in_and_out_guards_every_page(site: Site, new_page: Any) -> None:
    _, token = site.user()
    page = new_page(None)
    for path in ("/dashboard/videos", "/dashboard/scripts", "/dashboard/images", "/studio/x"):
        page.goto(path)
        assert page.url.split("?")[0].endswith("/login"), path
    page.goto("/dashboard/scripts")
    page.get_by_label("Access token").fill("ayt_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not recognised")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/scripts")  # back where the visitor was going
    expect(page.get_by_role("heading", name="My Scripts")).to_be_visible()
    nav = page.get_by_role("navigation", name="Library")
    nav.get_by_role("link", name="My Videos").click()
    expect(nav.get_by_role("link", name="My Videos")).to_have_attribute("aria-current", "page")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.goto("/dashboard/videos")
    assert page.url.endswith("/login")
    assert page.js_errors == []


def test_every_status_has_its_card_badge_and_action_button(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    ids = {
        "draft": site.create(owner, "A draft"),
        "ideas_ready": site.to_status(owner, "Ideas ready", "ideas_ready"),
        "script_ready": site.to_status(owner, "Script ready", "script_ready"),
        "scenes_ready": site.to_status(owner, "Scenes ready", "scenes_ready", format="1:1"),
        "completed": site.to_status(owner, "Completed", "completed", format="16:9"),
    }
    site.controls.fail("Failed", "scenes", "the scene planner answered 503")
    ids["failed"] = site.create(owner, "Failed", autopilot=True)
    site.wait_for(ids["failed"], "failed")
    # each active status held by its own stage; the later steps first, so none waits on another
    for status, point in (
        ("stitching", "stitching"),
        ("generating_voiceover", "voiceover"),
        ("generating_video", "clip:1"),
        ("generating_scenes", "scenes"),
        ("generating_script", "script"),
        ("generating_ideas", "ideas"),
    ):
        title = f"Held at {point}"
        site.controls.hold(title, point)
        ids[status] = site.create(owner, title, format="4:5", autopilot=True)
        site.wait_for(ids[status], status)
    rendering = ids["generating_video"]
    site.wait_until(lambda: len(site.project(rendering).clips) == 1, "the first clip")
    site.wait_for(rendering, "generating_video")  # and the view shows its progress

    page = new_page(token)
    expect(page.locator("[data-project-id]")).to_have_count(12)
    for status, project_id in ids.items():
        project = site.project(project_id)
        shown = card(page, project_id)
        expect(shown).to_have_attribute("data-status", status)
        expect(shown.get_by_role("heading")).to_have_text(project.title)
        expect(shown).to_contain_text(project.format)
        expect(shown.locator(f'.badge[data-status="{status}"]')).to_be_visible()
        expect(shown.locator("time")).to_have_attribute(
            "datetime", project.created_on.isoformat().replace("+00:00", "Z")
        )
        action = project.status.action
        if action is None:  # active: a progress bar over the thumbnail, no button
            expect(shown.locator("[data-action]")).to_have_count(0)
            bar = shown.locator('.thumb [role="progressbar"]')
            expect(bar).to_have_attribute("aria-valuenow", str(project.progress))
        else:
            button = shown.locator(f'[data-action="{action}"]')
            expect(button).to_have_text(ACTIONS[action])
            expect(button).to_have_attribute("href", f"/studio/{project_id}")
            expect(shown.get_by_role("progressbar")).to_have_count(0)
    assert site.project(ids["generating_video"]).progress > 50  # one clip of four done
    expect(processing_badge(page)).to_be_visible()
    expect(processing_badge(page)).to_have_text("Processing: 6 projects")

    site.controls.reset()  # everything held finishes, live
    for status in ("stitching", "generating_voiceover", "generating_video"):
        expect(card(page, ids[status])).to_have_attribute("data-status", "completed")
    expect(page.locator('[data-status^="generating"], [data-status="stitching"]')).to_have_count(0)
    expect(processing_badge(page)).to_have_count(0)
    expect(page.locator("#processing-badge")).to_be_hidden()
    assert page.js_errors == []


def test_changes_show_within_a_second_and_progress_moves_forward(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    project_id = site.to_status(owner, "Live render", "scenes_ready")
    quiet = site.create(owner, "Quiet draft")
    site.controls.hold("Live render", "clip:1", "clip:2")
    page = new_page(token)
    shown = card(page, project_id)
    expect(shown).to_have_attribute("data-status", "scenes_ready")
    expect(processing_badge(page)).to_have_count(0)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    site.studio.request_render(owner, project_id, actor="user:test")
    expect(shown).to_have_attribute("data-status", "generating_video", timeout=LIVE_S * 1000)
    expect(processing_badge(page)).to_be_visible(timeout=LIVE_S * 1000)
    expect(shown.locator("[data-action]")).to_have_count(0)

    bar = shown.locator('[role="progressbar"]')
    seen = []
    for done, clip in ((1, "clip:1"), (2, "clip:2")):  # the stage waits before clip 1, then 2
        site.wait_until(lambda n=done: len(site.project(project_id).clips) == n, "clips")
        progress = site.project(project_id).progress
        expect(bar).to_have_attribute("aria-valuenow", str(progress), timeout=LIVE_S * 1000)
        seen.append(progress)
        site.controls.release("Live render", clip)
    assert seen == sorted(seen) and len(set(seen)) == 2, seen

    site.wait_for(project_id, "completed")
    expect(shown).to_have_attribute("data-status", "completed", timeout=LIVE_S * 1000)
    expect(shown.locator('[data-action="view"]')).to_have_text("View Ad")
    expect(shown.get_by_role("progressbar")).to_have_count(0)
    expect(processing_badge(page)).to_have_count(0)
    expect(card(page, quiet)).to_have_attribute("data-status", "draft")
    assert page.js_errors == []


def test_while_the_websocket_is_down_it_polls_every_8_s_only_while_anything_is_active(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    site.create(owner, "Idle draft")
    held = site.create(owner, "Held ideas")
    site.controls.hold("Held ideas", "ideas", "script")
    site.studio.request_ideas(owner, held, actor="user:test")
    site.wait_for(held, "generating_ideas")

    page = new_page(None, clock=True, block_ws=True)
    polls: list[str] = []  # finished
    sent: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/videos" in r.url else None)
    page.on("requestfinished", lambda r: polls.append(r.url) if "/api/videos" in r.url else None)
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, token)
    expect(card(page, held)).to_have_attribute("data-status", "generating_ideas")
    expect(page.locator("#connection")).to_have_attribute("data-state", "polling")
    expect(processing_badge(page)).to_be_visible()
    wait_count(page, polls, 1)  # the list, loaded once because the WebSocket failed

    # from now on, time moves only when the test moves it; find the first tick
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.5)  # in seconds
    for _ in range(20):
        page.clock.run_for(500)
        page.wait_for_timeout(20)
        if len(sent) == 2:
            break
    wait_count(page, polls, 2)
    for expected in (3, 4):
        page.clock.run_for(8000)
        wait_count(page, polls, expected)
    page.clock.run_for(7000)
    settle(page)
    wait_count(page, polls, 4)  # nothing between two ticks

    site.controls.release("Held ideas", "ideas")
    site.wait_for(held, "ideas_ready")
    page.clock.run_for(1000)  # the next tick sees it: nothing is active any more
    wait_count(page, polls, 5)
    expect(card(page, held)).to_have_attribute("data-status", "ideas_ready")
    expect(processing_badge(page)).to_have_count(0)
    for _ in range(3):
        page.clock.run_for(20_000)
    settle(page)
    wait_count(page, polls, 5)  # the interval is cleared: no polling when nothing is active

    # while down, it kept trying again, less and less often: 6 to 10 tries in ~95 s, not 95
    attempts = page.evaluate("window.__attempts")
    assert 5 <= len(attempts) <= 10, attempts
    assert sockets == []

    # the WebSocket comes back: it resumes after the last position and polling stays off
    page.evaluate("window.__wsBlocked = false")
    site.studio.request_script(owner, held, actor="user:test")
    site.wait_for(held, "generating_script")
    # up to the longest reconnect delay, a second at a time: the handshake takes real time
    connection = page.locator("#connection")
    for _ in range(40):
        page.clock.run_for(1000)
        page.wait_for_timeout(30)
        if connection.get_attribute("data-state") == "live":
            break
    expect(connection).to_have_attribute("data-state", "live")
    expect(card(page, held)).to_have_attribute("data-status", "generating_script")
    assert "?after=" in sockets[-1], sockets[-1]
    count = len(polls)
    for _ in range(3):
        page.clock.run_for(8000)
    settle(page)
    wait_count(page, polls, count)  # active again, but the WebSocket is up: no polling

    site.controls.release("Held ideas", "script")
    expect(card(page, held)).to_have_attribute("data-status", "script_ready")
    expect(processing_badge(page)).to_have_count(0)
    assert page.js_errors == []


def test_a_soft_deleted_project_disappears_live(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    keep = site.create(owner, "Keep me")
    gone = site.to_status(owner, "Delete me", "completed")
    page = new_page(token)
    expect(page.locator("[data-project-id]")).to_have_count(2)
    site.studio.delete_project(owner, gone, actor="user:test")
    expect(card(page, gone)).to_have_count(0, timeout=LIVE_S * 1000)
    expect(card(page, keep)).to_be_visible()
    expect(page.locator("#videos-summary")).to_have_text("1 project")
    page.reload()
    expect(card(page, keep)).to_be_visible()
    expect(card(page, gone)).to_have_count(0)


def test_a_user_never_sees_another_users_projects(site: Site, new_page: Any) -> None:
    alice, alice_token = site.user()
    _, bob_token = site.user()
    secret = site.create(alice, "Alice's launch")
    alice_page = new_page(alice_token)
    bob_page = new_page(bob_token)
    expect(card(alice_page, secret)).to_be_visible()
    expect(bob_page.get_by_role("heading", name="No videos yet")).to_be_visible()
    expect(bob_page.locator("#connection")).to_have_attribute("data-state", "live")

    another = site.create(alice, "Alice's second", autopilot=True)
    expect(card(alice_page, another)).to_be_visible(timeout=LIVE_S * 1000)
    site.wait_for(another, "completed")
    expect(card(alice_page, another)).to_have_attribute("data-status", "completed")
    expect(bob_page.locator("[data-project-id]")).to_have_count(0)
    assert "Alice" not in bob_page.content()

    bob_page.goto(f"/studio/{secret}")
    expect(bob_page.get_by_role("heading", name="This project is not available")).to_be_visible()
    assert "Alice" not in bob_page.content()


def test_a_new_video_made_in_the_dialog_runs_on_autopilot_to_a_finished_ad(
    site: Site, new_page: Any
) -> None:
    _, token = site.user()
    page = new_page(token)
    expect(page.get_by_role("heading", name="No videos yet")).to_be_visible()
    page.get_by_role("button", name="New video").click()
    dialog = page.get_by_role("dialog", name="New video")
    dialog.get_by_label("Title").fill("Oat milk, barista edition")
    dialog.get_by_label("16:9 Wide").check()
    dialog.get_by_label("Brief").fill("Creamy oat milk that foams like dairy.")
    dialog.get_by_label("Autopilot").check()
    dialog.get_by_role("button", name="Create project").click()
    expect(dialog).to_be_hidden()
    shown = page.locator("[data-project-id]")
    expect(shown).to_have_count(1)
    expect(shown).to_contain_text("Oat milk, barista edition")
    expect(shown).to_contain_text("16:9")
    expect(shown).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(shown.locator('[data-action="view"]')).to_be_visible()
    expect(shown.locator(".thumb img")).to_be_visible()  # the poster of the finished ad
    expect(processing_badge(page)).to_have_count(0)

    page.get_by_role("button", name="New video").click()
    dialog.get_by_role("button", name="Create project").click()  # no title
    expect(dialog.locator("#nv-title-error")).to_contain_text("title")
    assert page.js_errors == []


def test_screenshot_of_my_videos(site: Site, new_page: Any, tmp_path: Path) -> None:
    """A 1280x800 picture of a lived-in My Videos (copied to docs/ with AYTADA_SCREENSHOTS=1)."""
    owner, token = site.user(name="maya")
    site.to_status(owner, "Smart Water Bottle", "ideas_ready", format="16:9")
    site.create(owner, "Meal Kit Launch")
    site.to_status(owner, "Linen Bedding Weekend Sale", "scenes_ready", format="4:5")
    site.controls.fail("Cold Brew Subscription", "voiceover", "ElevenLabs: 503 system_busy")
    failed = site.create(owner, "Cold Brew Subscription", format="1:1", autopilot=True)
    site.wait_for(failed, "failed")
    site.to_status(owner, "Trail Running Shoes", "completed", format="9:16")
    site.controls.hold("Summer Sparkling Water", "clip:2")
    rendering = site.create(owner, "Summer Sparkling Water", autopilot=True)
    site.wait_until(lambda: site.project(rendering).progress > 60, "two clips rendered")
    site.wait_for(rendering, "generating_video")

    page = new_page(token)
    expect(page.locator("[data-project-id]")).to_have_count(6)
    expect(page.locator(".thumb img")).to_have_count(1)
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )
    path = tmp_path / "my-videos.png"
    page.screenshot(path=str(path), animations="disabled")
    assert path.stat().st_size > 10_000
    if os.environ.get("AYTADA_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOT)
