"""Project Studio in a real browser: next steps, errors, retry, watch and download, delete."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import imageio_ffmpeg
import pytest
from playwright.sync_api import Page, expect

from aytada_es.adapters.assets import AssetStore
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.steps import Price

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
    # The page's own first reads answered (under load one came back after the render below).
    page.wait_for_load_state("networkidle")
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
    failure.get_by_text("Technical details").click()  # folded away until asked for
    expect(failure.locator('dd[data-detail="attempts"]')).to_have_text(str(attempts))
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

    native: list[str] = []
    page.on("dialog", lambda dialog: (native.append(dialog.type), dialog.dismiss()))
    confirm = page.get_by_role("alertdialog", name="Delete project?")
    delete.click()
    expect(confirm).to_contain_text("Short-lived")
    expect(confirm).to_contain_text("support can restore it")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#studio")).to_have_attribute("data-status", "draft")
    assert not site.project(project_id).deleted

    delete.click()
    page.keyboard.press("Escape")  # closes it as Cancel does
    expect(confirm).to_be_hidden()
    assert not site.project(project_id).deleted
    delete.click()
    confirm.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/dashboard/videos")
    assert native == []  # never the browser's own confirm()
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
    # after the click every read carries `?min_position=` (read your own writes)
    page.on("request", lambda r: polls.append(r.url) if urlsplit(r.url).path == path else None)
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


def captioned_mp4(folder: Path) -> bytes:
    """A one-second clip unlike the final video (whose file the store would share with it)."""
    out = folder / "captioned.mp4"
    source = ["-f", "lavfi", "-i", "color=c=0x10b981:s=180x320:d=1:r=12"]
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *source, *encode]
    subprocess.run(command, check=True)
    return out.read_bytes()


def test_plug_in_add_ons_show_their_state_and_their_files_under_their_labels(
    site: Site, new_page: Any, tmp_path: Path
) -> None:
    owner, token = site.user()
    project_id = site.to_status(owner, "Add-on showcase", "completed")
    studio, trigger = site.studio, site.project(project_id).version

    def request(step: str, estimate: int) -> int | None:
        return studio.request_addon(
            project_id,
            step=step,
            trigger_version=trigger,
            estimate=estimate,
            stage_version="1.0.0",
            actor=f"stage:{step}",
        )

    def generation(units: int) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"provider": "local", "stage_version": "1.0.0", "units": units,
                "started_at": now, "finished_at": now, "attempts": 1}  # fmt: skip

    captions = request("captions", 2)
    assert captions is not None
    page = new_page(token)
    page.goto(f"/studio/{project_id}")
    addon = page.locator('[data-addon="captions"]')
    expect(addon).to_have_attribute("data-state", "requested")
    expect(addon).to_contain_text("Running")

    # The plug-in's stage finishes: its video shows, live, under the label its stage declares.
    store = AssetStore(site.system.assets.root, {"captioned_video": "Captioned video"})
    video = store.put(captioned_mp4(tmp_path), kind="captioned_video", content_type="video/mp4")
    studio.complete_addon(
        project_id,
        step="captions",
        version=captions,
        price=Price("video", 2),
        assets=[video],
        generation=generation(1),
        actor="stage:captions",
    )
    expect(addon).to_have_attribute("data-state", "completed")
    expect(addon).to_contain_text("Done")
    extra = page.locator('figure[data-asset-kind="captioned_video"]')
    expect(extra.locator("figcaption")).to_have_text("Captioned video")
    expect(extra.locator("video")).to_have_attribute("src", f"/api/assets/{video['id']}")
    expect(extra.locator('[data-download="captioned_video"]')).to_have_attribute(
        "href", f"/api/assets/{video['id']}?download=1"
    )
    expect(page.locator('.assets [data-asset-kind="captioned_video"]')).to_contain_text(
        "Captioned video"
    )
    expect(page.locator('.assets [data-asset-kind="clip"]').first).to_contain_text("Video clip 1")

    # One that failed says why, in words; one the balance could not cover says so.
    dubbing = request("dubbing", 1)
    assert dubbing is not None
    studio.fail_addon(
        project_id,
        step="dubbing",
        version=dubbing,
        code=FailureCode.PROVIDER_UNAVAILABLE,
        error="HTTP 503",
        generation=generation(0),
        actor="stage:dubbing",
    )
    assert request("poster", 10**9) is None
    failed, skipped = page.locator('[data-addon="dubbing"]'), page.locator('[data-addon="poster"]')
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed.locator(".addon-message")).to_contain_text("could not be reached")
    expect(skipped).to_have_attribute("data-state", "skipped")
    expect(skipped.locator(".addon-message")).to_have_text(
        "Not run: the balance could not cover it."
    )
    assert page.js_errors == []
