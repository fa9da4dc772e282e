"""My Videos' card menu (rename, download, delete), search and sort, notifications; My Images'
shapes and preview: in Chromium, against one live site for the module."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from .accessibility import assert_accessible
from .live_site import Site, thumbnail_png

pytestmark = pytest.mark.browser

# Records every Notification the page makes (after the real constructor succeeded) and lets the
# test say whether the tab is hidden.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notes = [];
  window.__hidden = false;
  Object.defineProperty(document, "visibilityState", {
    configurable: true,
    get: () => (window.__hidden ? "hidden" : "visible"),
  });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({ title, body: (options || {}).body, real: this instanceof Real });
    }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


def card(page: Page, project_id: Any) -> Any:
    return page.locator(f'[data-project-id="{project_id}"]')


def menu_button(page: Page, project_id: Any) -> Any:
    return card(page, project_id).locator('[aria-haspopup="menu"]')


def shown_titles(page: Page) -> list[str]:
    titles: list[str] = page.locator(".card:not([hidden]) .card-title").all_inner_texts()
    return titles


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_the_card_menu_works_by_keyboard_and_renames_downloads_and_deletes(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    draft = site.create(owner, "Alpha lime")
    done = site.to_status(owner, "Fizzy Lime Sparkling Water", "completed")
    page = new_page(token)
    native: list[str] = []
    page.on("dialog", lambda d: (native.append(d.type), d.dismiss()))

    # Keyboard: Enter opens on the first item, the arrows move, Escape closes and gives focus back.
    button = menu_button(page, draft)
    expect(button).to_have_attribute("aria-expanded", "false")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    menu = page.get_by_role("menu")
    expect(menu.get_by_role("menuitem")).to_have_text(["Rename", "Delete"])  # a draft: no video
    expect(menu.get_by_role("menuitem", name="Rename")).to_be_focused()
    assert_accessible(page, "My Videos with a card's menu open")
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Rename")).to_be_focused()  # it wraps
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("menu")).to_have_count(0)
    expect(button).to_be_focused()

    # Download the final video, named after the project.
    menu_button(page, done).click()
    expect(page.get_by_role("menuitem")).to_have_text(["Rename", "Download video", "Delete"])
    with page.expect_download() as download:
        page.get_by_role("menuitem", name="Download video").click()
    assert download.value.suggested_filename == "fizzy-lime-sparkling-water.mp4"

    # Rename: an empty title is refused beside the field, a good one is saved and shown.
    menu_button(page, draft).click()
    page.get_by_role("menuitem", name="Rename").click()
    dialog = page.get_by_role("dialog", name="Rename project")
    expect(dialog.get_by_label("Title")).to_have_value("Alpha lime")
    dialog.get_by_label("Title").fill("   ")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("#rename-error")).to_have_text("Enter a title.")
    expect(dialog.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "the Rename dialog showing an error")
    dialog.get_by_label("Title").evaluate("input => { input.value = 'Bad \\ud800 title'; }")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("#rename-error")).to_have_text(
        "Remove the characters that cannot be stored."
    )
    assert site.project(draft).title == "Alpha lime"
    other_tab = new_page(token)  # a second tab of the same person, kept live
    expect(card(other_tab, draft)).to_be_visible()
    dialog.get_by_label("Title").fill("Alpha lime, renamed")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(card(page, draft).locator(".card-title")).to_have_text("Alpha lime, renamed")
    expect(page.locator("[data-toast]")).to_contain_text("Renamed to “Alpha lime, renamed”")
    assert site.project(draft).title == "Alpha lime, renamed"
    expect(card(other_tab, draft).locator(".card-title")).to_have_text("Alpha lime, renamed")

    # Delete: a styled dialog says what is kept; Cancel keeps the project, Delete removes it.
    menu_button(page, draft).click()
    page.get_by_role("menuitem", name="Delete").click()
    confirm = page.get_by_role("alertdialog", name="Delete project?")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Alpha lime, renamed")
    expect(confirm).to_contain_text("support can restore it")
    expect(confirm).to_contain_text("history and credits are kept for audits")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    assert_accessible(page, "the Delete dialog")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert not site.project(draft).deleted
    menu_button(page, draft).click()
    page.get_by_role("menuitem", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(card(page, draft)).to_have_count(0)
    expect(page.locator("[data-toast]").last).to_contain_text("Deleted “Alpha lime, renamed”")
    assert site.project(draft).deleted
    page.reload()
    expect(card(page, done)).to_be_visible()
    expect(card(page, draft)).to_have_count(0)

    # The server's refusal comes back under the field: here, a project deleted meanwhile.
    gone = site.create(owner, "Gone soon")
    expect(card(page, gone)).to_be_visible()
    menu_button(page, gone).click()
    page.get_by_role("menuitem", name="Rename").click()
    site.studio.delete_project(owner, gone, actor="user:test")
    dialog.get_by_label("Title").fill("Too late")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("#rename-error")).to_have_text("This project no longer exists.")
    assert site.project(gone).title == "Gone soon"
    assert native == [] and page.js_errors == [] and other_tab.js_errors == []


def test_toasts_and_the_created_banner_go_by_themselves_or_when_dismissed(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    first = site.create(owner, "Toast one")
    page = new_page(token, clock=True)
    page.get_by_role("button", name="New video").click()
    dialog = page.get_by_role("dialog", name="New video")
    dialog.get_by_label("Title").fill("Banner check")
    dialog.get_by_label("Brief").fill("A short brief.")
    dialog.get_by_role("button", name="Create project").click()
    banner = page.locator("#videos-messages")
    expect(banner).to_contain_text("“Banner check” was created.")
    page.clock.run_for(4000)
    expect(banner).to_be_visible()
    page.clock.run_for(2000)
    expect(banner).to_be_hidden()

    menu_button(page, first).click()
    page.get_by_role("menuitem", name="Rename").click()
    page.get_by_role("dialog", name="Rename project").get_by_label("Title").fill("Toast two")
    page.get_by_role("button", name="Save").click()
    toast = page.locator("[data-toast]")
    expect(toast).to_have_count(1)
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)
    menu_button(page, first).click()
    page.get_by_role("menuitem", name="Rename").click()
    page.get_by_role("dialog", name="Rename project").get_by_label("Title").fill("Toast three")
    page.get_by_role("button", name="Save").click()
    expect(toast).to_have_count(1)
    page.clock.run_for(6000)
    expect(toast).to_have_count(0)
    assert page.js_errors == []


def test_search_and_sort_live_in_the_url_and_follow_live_updates(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    for title in ("Cherry cola", "apple cider", "Banana bread"):
        site.create(owner, title)
    page = new_page(token)
    expect(page.locator("[data-project-id]")).to_have_count(3)
    assert shown_titles(page) == ["Banana bread", "apple cider", "Cherry cola"]  # newest first

    page.get_by_label("Sort").select_option("title")
    expect(page).to_have_url(re.compile(r"sort=title"))
    assert shown_titles(page) == ["apple cider", "Banana bread", "Cherry cola"]
    page.get_by_label("Sort").select_option("oldest")
    assert shown_titles(page) == ["Cherry cola", "apple cider", "Banana bread"]
    page.get_by_label("Search by title").fill("an")
    expect(page).to_have_url(re.compile(r"q=an"))
    assert query_of(page) == {"q": ["an"], "sort": ["oldest"]}
    assert shown_titles(page) == ["Banana bread"]
    expect(page.locator('[data-filter="all"] .count')).to_have_text("1")

    # Live updates keep to the search and the order.
    site.create(owner, "Mango juice")
    site.create(owner, "Kiwi")
    expect(page.locator("[data-project-id]")).to_have_count(5)
    assert shown_titles(page) == ["Banana bread", "Mango juice"]
    page.get_by_label("Search by title").fill("zzz")
    expect(page.locator("#videos-nomatch")).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=zzz"))

    # Back, forward and reload restore what the URL says.
    page.go_back()
    expect(page.get_by_label("Search by title")).to_have_value("an")
    assert shown_titles(page) == ["Banana bread", "Mango juice"]
    page.go_back()
    expect(page.get_by_label("Search by title")).to_have_value("")
    expect(page.get_by_label("Sort")).to_have_value("oldest")
    page.go_back()
    expect(page.get_by_label("Sort")).to_have_value("title")
    page.go_forward()
    page.go_forward()
    expect(page.get_by_label("Search by title")).to_have_value("an")
    page.reload()
    expect(page.get_by_label("Search by title")).to_have_value("an")
    expect(page.get_by_label("Sort")).to_have_value("oldest")
    expect(page.locator("[data-project-id]")).to_have_count(5)
    assert shown_titles(page) == ["Banana bread", "Mango juice"]
    page.goto("/dashboard/videos?sort=title&q=ER")  # case does not matter
    expect(page.locator("[data-project-id]")).to_have_count(5)
    assert shown_titles(page) == ["apple cider", "Cherry cola"]
    assert page.js_errors == []


def test_a_project_that_ends_in_a_hidden_tab_sends_a_notification(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    page = new_page(token)
    page.context.grant_permissions(["notifications"], origin=site.url)
    page.add_init_script(RECORD_NOTIFICATIONS)
    page.goto("/dashboard/videos")
    toggle = page.get_by_role("button", name="Notify me")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()  # the permission is asked only now, after a click
    expect(page.get_by_role("button", name="Notifications on")).to_have_attribute(
        "aria-pressed", "true"
    )

    site.controls.hold("Hidden finish", "stitching")
    finishing = site.create(owner, "Hidden finish", autopilot=True)
    site.wait_for(finishing, "stitching")
    site.controls.hold("Hidden failure", "script")
    site.controls.fail("Hidden failure", "scenes", "the planner answered 503")
    failing = site.create(owner, "Hidden failure", autopilot=True)
    site.wait_for(failing, "generating_script")
    expect(card(page, finishing)).to_have_attribute("data-status", "stitching")
    expect(card(page, failing)).to_have_attribute("data-status", "generating_script")

    page.evaluate("window.__hidden = true")
    site.controls.release("Hidden finish")
    site.controls.release("Hidden failure")
    expect(card(page, finishing)).to_have_attribute("data-status", "completed")
    expect(card(page, failing)).to_have_attribute("data-status", "failed")
    page.wait_for_function("window.__notes.length >= 2")
    notes = page.evaluate("window.__notes")
    assert sorted(n["title"] for n in notes) == [
        "“Hidden failure” failed",
        "“Hidden finish” is ready",
    ]
    assert all(n["real"] for n in notes)

    # A visible tab shows the change itself: no notification.
    page.evaluate("window.__hidden = false")
    site.controls.hold("Seen finish", "stitching")
    seen = site.create(owner, "Seen finish", autopilot=True)
    site.wait_for(seen, "stitching")
    expect(card(page, seen)).to_have_attribute("data-status", "stitching")
    site.controls.release("Seen finish")
    expect(card(page, seen)).to_have_attribute("data-status", "completed")
    assert len(page.evaluate("window.__notes")) == 2

    # Turned off, it stays off after a reload.
    page.get_by_role("button", name="Notifications on").click()
    page.reload()
    expect(page.get_by_role("button", name="Notify me")).to_have_attribute("aria-pressed", "false")
    assert page.js_errors == []


def test_my_images_keep_their_shape_and_preview_with_their_project(
    site: Site, new_page: Any
) -> None:
    owner, token = site.user()
    project_id = site.create(owner, "Fizzy Lime Sparkling Water", format="16:9")
    shapes = {"banner": "16:9", "product_shot": "9:16", "scene_still": "1:1"}
    assets = {
        kind: site.system.assets.put(
            thumbnail_png(f"Fizzy {kind}", shape), kind=kind, content_type="image/png"
        )
        for kind, shape in shapes.items()
    }
    site.studio.add_assets(project_id, assets=list(assets.values()), actor="stage:test")
    page = new_page(token)
    page.goto("/dashboard/images")
    expect(page.locator(".image-card")).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-card img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    for kind, asset in assets.items():
        picture = page.locator(f'[data-image-id="{asset["id"]}"] .pic')
        natural = picture.locator("img").evaluate("i => i.naturalWidth / i.naturalHeight")
        box = picture.bounding_box()
        shown = picture.locator("img").bounding_box()
        assert box is not None and shown is not None
        # the whole picture is shown, in its own shape: nothing is cropped
        assert abs(box["width"] / box["height"] - natural) < 0.03, kind
        assert abs(shown["width"] / shown["height"] - natural) < 0.03, kind
    wide = page.locator(f'[data-image-id="{assets["banner"]["id"]}"] .pic').bounding_box()
    tall = page.locator(f'[data-image-id="{assets["product_shot"]["id"]}"] .pic').bounding_box()
    assert wide is not None and tall is not None and tall["height"] > 2 * wide["height"]

    page.get_by_role("button", name="Preview Banner of Fizzy Lime Sparkling Water").click()
    preview = page.get_by_role("dialog", name="Banner")
    expect(preview).to_be_visible()
    expect(preview.locator("img")).to_have_attribute("src", f"/api/assets/{assets['banner']['id']}")
    expect(preview.get_by_role("link", name="Fizzy Lime Sparkling Water")).to_have_attribute(
        "href", f"/studio/{project_id}"
    )
    assert_accessible(page, "My Images with a preview open")
    with page.expect_download() as download:
        preview.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "fizzy-lime-sparkling-water-banner.png"
    page.keyboard.press("Escape")
    expect(preview).to_be_hidden()
    assert page.js_errors == []
