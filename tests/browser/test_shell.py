"""The pages' frame in Chromium: axe-core finds no serious or critical violation on any page,
every status badge reads at 4.5:1 or more, and a 390 px phone gets a compact navigation, cards
in one column and dialogs that fit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from playwright.sync_api import expect

from aytada_es.domain.status import Status

from .accessibility import assert_accessible
from .live_site import Site, thumbnail_png

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Library:
    """A user whose projects are in several states, shared by the tests of this module."""

    token: str
    completed: UUID
    failed: UUID


@pytest.fixture(scope="module")
def library(site: Site) -> Iterator[Library]:
    owner, token = site.user(name="maya")
    site.create(owner, "Meal Kit Launch")
    site.to_status(owner, "Smart Water Bottle", "ideas_ready", format="16:9")
    completed = site.to_status(owner, "Trail Running Shoes", "completed", format="4:5")
    pictures = [thumbnail_png(f"Trail {i}", "4:5") for i in range(2)]
    images = [
        site.system.assets.put(content, kind=kind, content_type="image/png")
        for content, kind in zip(pictures, ("product_shot", "banner"), strict=True)
    ]
    site.studio.add_assets(completed, assets=images, actor="stage:test")
    site.controls.fail("Cold Brew Subscription", "voiceover", "ElevenLabs: 503 system_busy")
    failed = site.create(owner, "Cold Brew Subscription", format="1:1", autopilot=True)
    site.wait_for(failed, "failed")
    site.controls.reset()
    yield Library(token, completed, failed)


def cards(page: Any) -> Any:
    return page.locator("[data-project-id]")


# ---- axe-core on every page -------------------------------------------------------------


def test_the_login_page_is_accessible_with_and_without_an_error(new_page: Any) -> None:
    page = new_page(None)
    page.goto("/login")
    assert_accessible(page)
    page.get_by_label("Access token").fill("ayt_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not recognised")
    assert_accessible(page, "the login page with its error")


def test_my_videos_is_accessible_with_its_cards_and_the_new_video_dialog(
    library: Library, new_page: Any
) -> None:
    page = new_page(library.token)
    expect(cards(page)).to_have_count(4)
    assert_accessible(page)
    page.get_by_role("button", name="New video").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert_accessible(page, "My Videos with the New video dialog open")
    page.get_by_role("button", name="Create project").click()  # no title: an error shows
    expect(page.locator("#nv-title-error")).to_be_visible()
    assert_accessible(page, "the New video dialog showing an error")


def test_the_studio_is_accessible_for_a_finished_and_a_failed_project(
    library: Library, new_page: Any
) -> None:
    page = new_page(library.token)
    page.goto(f"/studio/{library.completed}")
    expect(page.locator("video")).to_have_count(1)
    assert_accessible(page, "the Studio of a finished ad")
    page.goto(f"/studio/{library.failed}")
    expect(page.get_by_role("button", name=re.compile("Retry"))).to_be_visible()
    assert_accessible(page, "the Studio of a failed project")
    page.goto("/studio/not-a-project")
    assert_accessible(page, "the Studio's not-found page")


def test_my_scripts_is_accessible(library: Library, new_page: Any) -> None:
    page = new_page(library.token)
    page.goto("/dashboard/scripts")
    expect(page.get_by_text("Trail Running Shoes").first).to_be_visible()
    assert_accessible(page)


def test_my_images_is_accessible(library: Library, new_page: Any) -> None:
    page = new_page(library.token)
    page.goto("/dashboard/images")
    expect(page.locator("img").first).to_be_visible()
    assert_accessible(page)


def test_my_videos_on_a_phone_is_accessible(library: Library, new_page: Any) -> None:
    page = new_page(library.token)
    page.set_viewport_size(PHONE)
    expect(cards(page)).to_have_count(4)
    assert_accessible(page, "My Videos on a phone")


# ---- contrast -----------------------------------------------------------------------------


def contrast(one: tuple[float, ...], other: tuple[float, ...]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (channels 0 to 1)."""

    def luminance(rgb: tuple[float, ...]) -> float:
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rgb(css: str) -> tuple[float, ...]:
    """`rgb(1, 2, 3)` or `color(srgb 0.1 0.2 0.3)`, as Chromium computes colours."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css)]
    if css.startswith("rgb"):
        return tuple(n / 255 for n in numbers[:3])
    assert css.startswith("color(srgb"), css
    return tuple(numbers[:3])


def test_every_status_badge_reads_at_4_5_to_1_or_more(library: Library, new_page: Any) -> None:
    page = new_page(library.token)
    expect(cards(page)).to_have_count(4)
    statuses = [s.value for s in Status]
    colours = page.evaluate(
        """statuses => statuses.map(status => {
          const badge = document.createElement("span");
          badge.className = "badge";
          badge.dataset.status = status;
          badge.textContent = status;
          document.querySelector("main").append(badge);
          const style = getComputedStyle(badge);
          const found = [status, style.color, style.backgroundColor, style.fontSize];
          badge.remove();
          return found;
        })""",
        statuses,
    )
    ratios = {status: contrast(rgb(fg), rgb(bg)) for status, fg, bg, _ in colours}
    assert set(ratios) == set(statuses)
    assert all(size == "12px" for *_, size in colours)  # small text: 4.5:1 is the bar
    low = {s: round(r, 2) for s, r in ratios.items() if r < 4.5}
    assert not low, f"badges under 4.5:1: {low}"


# ---- the phone layout -----------------------------------------------------------------------


def box(locator: Any) -> dict[str, float]:
    found: dict[str, float] | None = locator.bounding_box()
    assert found is not None, locator
    return found


def test_on_a_phone_the_navigation_is_one_row_cards_one_column_and_dialogs_fit(
    library: Library, new_page: Any
) -> None:
    page = new_page(library.token)
    page.set_viewport_size(PHONE)
    page.goto("/")  # the root is My Videos for the signed-in
    page.wait_for_url("**/dashboard/videos")
    expect(cards(page)).to_have_count(4)
    # The balance (ui-credits adds it) sits in the top bar: stand one in if it is not there.
    page.evaluate(
        """() => document.querySelector("[data-balance]") ||
          document.querySelector(".sidebar-foot").insertAdjacentHTML("beforebegin",
            '<p class="balance"><span data-balance>12,500</span> credits</p>')"""
    )
    width = PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll

    top = box(page.locator(".sidebar"))
    assert top["height"] <= 64, f"the top bar is {top['height']} px high"
    for part in (".brand", "[data-balance]", ".avatar", ".signout button"):
        found = box(page.locator(".sidebar").locator(part).first)
        assert found["y"] >= top["y"] and found["y"] + found["height"] <= top["y"] + top["height"]
        assert found["x"] >= 0 and found["x"] + found["width"] <= width, part

    nav = page.get_by_role("navigation", name="Library")
    links = [box(nav.get_by_role("link", name=n)) for n in ("My Videos", "My Scripts", "My Images")]
    assert len({round(b["y"]) for b in links}) == 1  # one row
    assert all(b["height"] <= 56 and b["x"] + b["width"] <= width for b in links)
    for name in ("My Videos", "My Scripts", "My Images"):  # each label on one line
        label = nav.get_by_role("link", name=name)
        assert label.evaluate("a => a.scrollWidth <= a.clientWidth"), name
    assert box(nav)["y"] + box(nav)["height"] == pytest.approx(PHONE["height"], abs=1)

    placed = [box(c) for c in cards(page).all()]
    assert len({round(b["x"]) for b in placed}) == 1  # one column
    assert all(b["x"] >= 12 and b["x"] + b["width"] <= width - 12 for b in placed)
    # The last card scrolls clear of the tab bar.
    cards(page).last.scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert box(cards(page).last)["y"] + box(cards(page).last)["height"] <= box(nav)["y"]

    page.get_by_role("button", name="New video").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    shown = box(dialog)
    assert shown["x"] >= 0 and shown["x"] + shown["width"] <= width
    assert shown["y"] >= 0 and shown["y"] + shown["height"] <= PHONE["height"]
    create = dialog.get_by_role("button", name="Create project")
    create.scroll_into_view_if_needed()
    assert box(create)["x"] + box(create)["width"] <= width
    dialog.get_by_role("button", name="Cancel").click()

    nav.get_by_role("link", name="My Scripts").click()
    page.wait_for_url("**/dashboard/scripts")
    expect(nav.get_by_role("link", name="My Scripts")).to_have_attribute("aria-current", "page")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.js_errors == []
