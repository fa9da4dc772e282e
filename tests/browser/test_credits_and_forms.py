"""Credits where a decision is made, failures as sentences, and the New video dialog's fields."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from aytada_es.domain.failures import failure_message
from aytada_es.domain.project import autopilot_estimate
from aytada_es.domain.steps import SPECS

from .accessibility import assert_accessible
from .live_site import Site

pytestmark = pytest.mark.browser


def balance(page: Page) -> Any:
    return page.locator("#balance[data-balance]")


def statement(page: Page) -> Any:
    return page.request.get("/api/credits").json()


def studio_view(page: Page, project_id: Any) -> Any:
    return page.request.get(f"/api/projects/{project_id}").json()


def test_the_sidebar_balance_follows_each_charge_live_on_every_page(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user(credits=100)
    first = site.create(owner, "Balance on My Videos")
    second = site.create(owner, "Balance on My Scripts")
    page = new_page(token)
    expect(balance(page)).to_have_attribute("data-balance", "100")
    expect(balance(page)).to_contain_text("100")

    site.studio.request_ideas(owner, first, actor="user:test")  # reserves, then is charged
    site.wait_for(first, "ideas_ready")
    charged = site.project(first).charged
    assert charged > 0
    expect(balance(page)).to_have_attribute("data-balance", str(100 - charged))
    assert statement(page)["balance"] == 100 - charged

    # a page with no feed of its own (My Scripts) still follows the balance live
    page.goto("/dashboard/scripts")
    expect(balance(page)).to_have_attribute("data-balance", str(100 - charged))
    site.controls.hold("Balance on My Scripts", "script")
    site.studio.request_script(owner, second, actor="user:test")
    held = site.project(second).still_reserved
    expect(balance(page)).to_have_attribute("data-balance", str(100 - charged - held))
    expect(page.locator("[data-balance-reserved]")).to_contain_text(f"{held} held")
    site.controls.release("Balance on My Scripts")
    site.wait_for(second, "script_ready")
    after = 100 - site.project(first).charged - site.project(second).charged
    expect(balance(page)).to_have_attribute("data-balance", str(after))
    assert page.js_errors == []


def test_without_the_websocket_the_balance_is_read_every_8_s(site: Site, new_page: Any) -> None:
    owner, token = site.user(credits=50)
    project_id = site.create(owner, "Balance while polling")
    page = new_page(token, clock=True, block_ws=True)
    page.goto("/dashboard/images")  # no feed of its own: the balance's feed polls
    expect(balance(page)).to_have_attribute("data-balance", "50")
    site.studio.request_ideas(owner, project_id, actor="user:test")
    site.wait_for(project_id, "ideas_ready")
    charged = site.project(project_id).charged
    credits = site.system.read_models.credits
    site.wait_until(lambda: credits.statement(owner)["balance"] == 50 - charged, "the charge")
    # the socket is refused and the page's timers stand still: nothing has read it yet
    assert balance(page).get_attribute("data-balance") == "50"
    page.clock.run_for(8_000)
    expect(balance(page)).to_have_attribute("data-balance", str(50 - charged))
    assert page.js_errors == []


def test_every_step_button_shows_what_it_reserves_as_the_api_says(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    draft = site.create(owner, "Prices in a draft")
    ready = site.to_status(owner, "Prices before the render", "scenes_ready")
    site.controls.fail("Prices after a failure", "scenes", "refused")
    failed = site.to_status(owner, "Prices after a failure", "script_ready")
    site.studio.request_scenes(owner, failed, actor="user:test")
    site.wait_for(failed, "failed")
    page = new_page(token)

    seen: dict[str, dict[str, int]] = {}
    for project_id, steps in (
        (draft, {"ideas", "script"}),
        (ready, {"render", "scenes"}),
        (failed, {"retry"}),
    ):
        page.goto(f"/studio/{project_id}")
        buttons = page.locator("button[data-step]:not([data-step=cancel])")
        expect(buttons.first).to_be_visible()
        costs = studio_view(page, project_id)["costs"]
        assert costs == site.project(project_id).step_costs()
        shown = {
            buttons.nth(i).get_attribute("data-step"): buttons.nth(i).get_attribute("data-cost")
            for i in range(buttons.count())
        }
        assert set(shown) == steps
        assert shown == {step: str(costs[step]) for step in steps}
        for step in steps:
            button = page.locator(f'button[data-step="{step}"]').first
            expect(button).to_contain_text(f"{costs[step]} credit")
        seen[str(project_id)] = costs
    # the render reserves its three steps at once, from the scenes the project has
    project = site.project(ready)
    assert seen[str(ready)]["render"] == sum(
        project.estimate(spec.step)
        for spec in SPECS.values()
        if spec.status.value in ("generating_video", "generating_voiceover", "stitching")
    )

    # the price list the API serves is the domain's
    prices = page.request.get("/api/prices").json()
    assert prices["autopilot"] == autopilot_estimate()
    assert {p["step"]: p["credits_per_unit"] for p in prices["steps"]} == {
        spec.step.value: spec.credits_per_unit for spec in SPECS.values()
    }
    assert page.js_errors == []


def test_the_new_video_dialog_shows_the_autopilot_total(site: Site, new_page: Any) -> None:
    _, token = site.user(credits=10)
    page = new_page(token)
    expect(balance(page)).to_have_attribute("data-balance", "10")
    page.get_by_role("button", name="New video").click()
    dialog = page.get_by_role("dialog", name="New video")
    cost = dialog.locator("#nv-cost")
    expect(cost).to_have_attribute("data-cost", "0")
    expect(cost).to_contain_text("free")

    dialog.get_by_label("Autopilot").check()
    total = page.request.get("/api/prices").json()["autopilot"]
    assert total == autopilot_estimate()
    expect(cost).to_have_attribute("data-cost", str(total))
    expect(cost).to_contain_text(f"about {total} credits")
    expect(cost).to_contain_text("Your balance is 10")  # short of the total: it says so

    dialog.get_by_label("Autopilot").uncheck()
    expect(cost).to_have_attribute("data-cost", "0")
    # the four formats on one row, none wrapping
    tops = dialog.locator(".formats label").evaluate_all(
        "labels => labels.map(l => [l.getBoundingClientRect().top, l.scrollHeight, l.clientHeight])"
    )
    assert len({round(top) for top, _, _ in tops}) == 1
    assert all(height <= client + 1 for _, height, client in tops)
    border = dialog.locator("fieldset").evaluate("f => getComputedStyle(f).borderTopStyle")
    assert border == "none"
    assert page.js_errors == []


def test_an_autopilot_paused_for_credits_says_so_on_its_card_and_in_the_studio(
    site: Site, new_page: Any
) -> None:
    name = f"paused{uuid.uuid4().hex[:8]}"
    owner, token = site.user(credits=5, name=name)  # ideas (3) and a script (2), then nothing
    project_id = site.create(owner, "Paused for credits", autopilot=True)
    site.wait_until(
        lambda: site.project(project_id).autopilot_paused is not None, "autopilot to pause"
    )
    project = site.wait_for(project_id, "script_ready")
    needed = project.autopilot_paused["needed"]
    assert needed and needed > project.autopilot_paused["balance"]

    page = new_page(token)
    shown = page.locator(f'[data-project-id="{project_id}"]')
    expect(shown).to_have_attribute("data-paused", str(needed))
    expect(shown).to_contain_text(f"Paused: needs {needed} credits")
    assert page.request.get("/api/videos").json()["videos"][0]["paused"]["needed"] == needed
    assert_accessible(page, "My Videos with a paused card")

    shown.locator('[data-action="continue"]').click()
    notice = page.locator(".paused-notice")
    expect(notice).to_contain_text(f"Autopilot paused: needs {needed} credits for the scenes step")
    expect(notice).to_contain_text("add credits")
    expect(notice).to_contain_text("by hand")
    expect(page.locator('button[data-step="scenes"]')).to_have_attribute("data-cost", str(needed))
    assert_accessible(page, "the Studio of a paused project")

    # once credits come and the owner goes on by hand, the pause is history
    site.studio.grant_credits(name, 100, actor="test")
    page.reload()  # credits granted outside any project: read again when the page is
    expect(balance(page)).to_have_attribute("data-balance", "100")
    page.locator('button[data-step="scenes"]').click()
    expect(page.locator("#studio")).to_have_attribute("data-status", "scenes_ready")
    expect(notice).to_have_count(0)
    page.goto("/dashboard/videos")
    expect(shown).to_have_attribute("data-status", "scenes_ready")
    expect(shown).not_to_have_attribute("data-paused", str(needed))
    expect(shown.locator(".card-paused")).to_have_count(0)
    assert page.js_errors == []


def test_a_failure_reads_as_a_sentence_with_its_detail_folded_away(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    raw = "ProviderError: HTTP 400 from https://api.example.test/v1/tts?key=s3cret: bad voice"
    site.controls.fail("Refused voice", "voiceover", raw)
    project_id = site.create(owner, "Refused voice", autopilot=True)
    site.wait_for(project_id, "failed")
    page = new_page(token)
    page.goto(f"/studio/{project_id}")
    failure = page.locator(".failure")
    view = studio_view(page, project_id)["failure"]
    expect(failure.locator(".failure-message")).to_have_text(
        failure_message(view["code"], view["step"])
    )
    detail = failure.locator("details")
    expect(detail).not_to_have_attribute("open", "")
    attempts = failure.locator('dd[data-detail="attempts"]')
    expect(attempts).to_be_hidden()
    failure.get_by_text("Technical details").click()
    expect(attempts).to_have_text(str(view["attempts"]))
    expect(failure.locator('dd[data-detail="code"]')).to_have_text(view["code"])
    expect(failure.locator('dd[data-detail="when"] time')).to_have_attribute(
        "datetime", view["failed_at"]
    )
    assert_accessible(page, "the Studio with a failure's details open")
    html = failure.inner_html()
    for secret in ("ProviderError", "example.test", "s3cret", "bad voice", "HTTP 400"):
        assert secret not in html
    retry = failure.locator('button[data-step="retry"]')
    costs = studio_view(page, project_id)["costs"]
    expect(retry).to_have_attribute("data-cost", str(costs["retry"]))
    assert page.js_errors == []


def test_each_field_is_checked_in_the_browser_and_the_servers_422_lands_on_the_same_field(
    site: Site, new_page: Any
) -> None:
    _, token = site.user()
    page = new_page(token)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.get_by_role("button", name="New video").click()
    dialog = page.get_by_role("dialog", name="New video")
    title, brief = dialog.get_by_label("Title"), dialog.get_by_label("Brief")
    create = dialog.get_by_role("button", name="Create project")

    create.click()  # no title
    expect(dialog.locator("#nv-title-error")).to_have_text("Give the video a title.")
    expect(title).to_have_attribute("aria-invalid", "true")
    expect(title).to_be_focused()
    described = title.get_attribute("aria-describedby") or ""
    assert "nv-title-error" in described.split()

    title.fill("x" * 201)
    expect(dialog.locator("#nv-title-error")).to_contain_text("200 characters (it has 201)")
    title.fill("Bell\x07 ringing")
    expect(dialog.locator("#nv-title-error")).to_contain_text("U+0007")
    title.fill("Right\u202eto left")
    expect(dialog.locator("#nv-title-error")).to_contain_text("U+202E")
    title.fill("Fizzy Lime Sparkling Water")
    expect(dialog.locator("#nv-title-error")).to_be_hidden()
    expect(title).not_to_have_attribute("aria-invalid", "true")

    brief.fill("b" * 5001)
    expect(dialog.locator("#nv-brief-error")).to_contain_text("5,000 characters")
    expect(brief).to_have_attribute("aria-invalid", "true")
    brief.fill("Line one\n\tLine two, indented")  # newline and tab are fine in a brief
    expect(dialog.locator("#nv-brief-error")).to_be_hidden()
    brief.fill("Nul\x00 in the brief")
    expect(dialog.locator("#nv-brief-error")).to_contain_text("U+0000")
    create.click()
    assert not [url for url in posts if url.endswith("/api/projects")]  # nothing was sent

    # What the browser did not catch, the server does: its 422 lands on the same fields.
    brief.fill("A calm brief")

    def tamper(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        body["title"] += "\x00"
        body["brief"] += "\u202e"
        route.continue_(post_data=json.dumps(body))

    page.route("**/api/projects", tamper)
    create.click()
    expect(dialog.locator("#nv-title-error")).to_contain_text("U+0000")
    expect(dialog.locator("#nv-brief-error")).to_contain_text("U+202E")
    expect(title).to_have_attribute("aria-invalid", "true")
    expect(brief).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_be_visible()
    assert page.request.get("/api/videos").json()["videos"] == []  # nothing was created

    page.unroute("**/api/projects")
    title.fill("Fizzy Lime Sparkling Water")  # a change of the field clears the server's word
    expect(dialog.locator("#nv-title-error")).to_be_hidden()
    brief.fill("A calm brief")
    create.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-project-id]")).to_have_count(1)
    assert page.js_errors == []
