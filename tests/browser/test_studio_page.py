"""Project Studio in a real browser: next steps, errors, retry, watch and download, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .live_site import Site, tiny_mp4

pytestmark = pytest.mark.browser


def step_button(page: Page, step: str) -> Any:
    return page.locator(f'button[data-step="{step}"]')


def test_each_next_step_runs_from_the_studio_to_a_finished_ad(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    project_id = site.create(owner, "Studio walk-through", format="16:9")
    page = new_page(token)
    page.locator(f'[data-project-id="{project_id}"] [data-action="continue"]').click()
    page.wait_for_url(f"**/studio/{project_id}")
    studio = page.locator("#studio")
    expect(page.get_by_role("heading", name="Studio walk-through")).to_be_visible()
    expect(studio).to_have_attribute("data-status", "draft")

    step_button(page, "ideas").click()  # "Generate ideas"
    expect(studio).to_have_attribute("data-status", "ideas_ready")
    ideas = page.locator(".idea")
    expect(ideas).to_have_count(3)
    ideas.nth(1).get_by_role("radio").check()  # choose the second idea
    chosen = site.project(project_id).ideas[1]["title"]
    step_button(page, "script").first.click()  # "Write script"
    expect(studio).to_have_attribute("data-status", "script_ready")
    expect(page.locator(".script-text")).to_contain_text(chosen)
    assert site.project(project_id).script["idea"]["title"] == chosen

    step_button(page, "scenes").first.click()  # "Plan scenes"
    expect(studio).to_have_attribute("data-status", "scenes_ready")
    expect(page.locator(".scene")).to_have_count(len(site.project(project_id).scenes))

    step_button(page, "render").click()  # "Render video"
    expect(studio).to_have_attribute("data-status", "completed", timeout=15_000)
    video = page.locator("video.player")
    expect(video).to_be_visible()
    final = next(a for a in site.project(project_id).assets if a["kind"] == "final_video")
    expect(video).to_have_attribute("src", f"/api/assets/{final['id']}")
    assert (
        page.evaluate(  # the browser can really play it
            """() => new Promise(done => {
            const v = document.querySelector("video.player");
            if (v.readyState >= 1) return done(v.duration);
            v.addEventListener("loadedmetadata", () => done(v.duration));
            v.addEventListener("error", () => done(-1));
        })"""
        )
        > 0
    )

    with page.expect_download() as download:
        page.locator('[data-download="final_video"]').click()
    path = download.value.path()
    assert path is not None and Path(path).read_bytes() == tiny_mp4()
    assert download.value.suggested_filename.endswith(".mp4")
    assert page.js_errors == []


def test_refused_steps_are_explained(site: Site, new_page: Any) -> None:
    broke, broke_token = site.user(credits=0)
    project_id = site.create(broke, "No credits left")
    page = new_page(broke_token)
    page.goto(f"/studio/{project_id}")
    step_button(page, "ideas").click()
    alert = page.locator("#studio-messages")
    expect(alert).to_contain_text("Not enough credits")
    expect(page.locator("#studio")).to_have_attribute("data-status", "draft")
    expect(step_button(page, "ideas")).to_be_enabled()

    # a page that missed a change (its WebSocket down, nothing active so no polling) gets 409
    owner, token = site.user()
    stale = site.to_status(owner, "Stale page", "scenes_ready")
    page = new_page(token, clock=True, block_ws=True)
    page.goto(f"/studio/{stale}")
    expect(page.locator("#studio")).to_have_attribute("data-status", "scenes_ready")
    # Freeze the page's timers: no reconnect or first-load refresh may learn of the render.
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.5)
    site.studio.request_render(owner, stale, actor="user:test")
    site.wait_for(stale, "completed")
    step_button(page, "scenes").click()  # "Re-plan scenes", no longer allowed
    expect(page.locator("#studio-messages")).to_contain_text("can't run right now")
    expect(page.locator("#studio")).to_have_attribute("data-status", "completed")


def test_a_failed_project_shows_what_failed_and_retries(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    site.controls.fail("Flaky voice", "voiceover", "ElevenLabs: 503 system_busy")
    project_id = site.create(owner, "Flaky voice", autopilot=True)
    site.wait_for(project_id, "failed")
    page = new_page(token)
    page.locator(f'[data-project-id="{project_id}"] [data-action="retry"]').click()
    failure = page.locator(".failure")
    expect(failure).to_be_visible()
    expect(failure).to_have_attribute("data-failure-step", "voiceover")
    expect(failure).to_have_attribute("data-failure-code", "provider_rejected")
    # A plain sentence for a person; the provider's raw error is for auditors only.
    expect(failure.locator(".failure-message")).to_contain_text(
        "The service that makes the voiceover refused the request."
    )
    expect(failure).not_to_contain_text("system_busy")
    attempts = site.project(project_id).failure["attempts"]
    expect(failure.locator("dd").nth(1)).to_have_text(str(attempts))
    expect(page.locator('.steps li[data-state="failed"]')).to_have_text("Voiceover (failed)")

    site.controls.heal("Flaky voice")
    site.controls.hold("Flaky voice", "stitching")
    step_button(page, "retry").click()  # "Retry voiceover"
    studio = page.locator("#studio")
    expect(studio).to_have_attribute("data-status", "stitching")
    expect(page.get_by_role("progressbar", name="Project progress")).to_be_visible()
    site.controls.release("Flaky voice")
    expect(studio).to_have_attribute("data-status", "completed")
    expect(failure).to_have_count(0)
    expect(page.locator("video.player")).to_be_visible()
    assert site.project(project_id).retries == 1
    assert page.js_errors == []


def test_deleting_from_the_studio_asks_first_then_goes_back_to_my_videos(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    project_id = site.create(owner, "Short-lived")
    page = new_page(token)
    page.goto(f"/studio/{project_id}")
    delete = page.get_by_role("button", name="Delete project")

    page.once("dialog", lambda dialog: dialog.dismiss())
    delete.click()
    expect(page.locator("#studio")).to_have_attribute("data-status", "draft")
    assert not site.project(project_id).deleted

    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    delete.click()
    page.wait_for_url("**/dashboard/videos")
    assert "Short-lived" in messages[0]
    expect(page.get_by_role("heading", name="No videos yet")).to_be_visible()
    assert site.project(project_id).deleted

    page.goto(f"/studio/{project_id}")
    expect(page.get_by_role("heading", name="This project is not available")).to_be_visible()


def test_without_the_websocket_the_studio_polls_while_its_project_is_active(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    project_id = site.to_status(owner, "Polled studio", "script_ready")
    site.controls.hold("Polled studio", "scenes")
    page = new_page(token, clock=True, block_ws=True)
    polls: list[str] = []
    path = f"/api/projects/{project_id}"
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith(path) else None)
    page.goto(f"/studio/{project_id}")
    studio = page.locator("#studio")
    expect(studio).to_have_attribute("data-status", "script_ready")
    step_button(page, "scenes").first.click()  # "Plan scenes": held, so it stays active
    expect(studio).to_have_attribute("data-status", "generating_scenes")
    expect(page.locator("#connection")).to_have_attribute("data-state", "polling")
    page.wait_for_timeout(200)
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.5)  # in seconds
    before = len(polls)
    page.clock.run_for(8000)
    page.wait_for_timeout(300)
    assert len(polls) == before + 1

    site.controls.release("Polled studio")
    site.wait_for(project_id, "scenes_ready")
    page.clock.run_for(8000)
    expect(studio).to_have_attribute("data-status", "scenes_ready")
    expect(page.locator(".scene")).to_have_count(len(site.project(project_id).scenes))
    page.wait_for_timeout(200)
    after = len(polls)
    page.clock.run_for(30_000)
    page.wait_for_timeout(300)
    assert len(polls) == after  # nothing active: no polling
    assert page.js_errors == []
