"""My Scripts and My Images in a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .live_site import Site, thumbnail_png

pytestmark = pytest.mark.browser


def test_my_scripts_lists_every_script_with_a_copy_button(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    _, other_token = site.user()
    first = site.to_status(owner, "Cold brew at home", "script_ready", format="1:1")
    second = site.to_status(owner, "Weekend linen sale", "scenes_ready")
    page = new_page(token)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("link", name="My Scripts", exact=True).click()
    scripts = page.locator(".script-card")
    expect(scripts).to_have_count(2)
    newest = scripts.first
    expect(newest).to_have_attribute("data-project-id", str(second))
    text = site.project(second).script["text"]
    expect(newest.locator(".script-text")).to_have_text(text)
    expect(newest.get_by_role("link", name="Weekend linen sale")).to_have_attribute(
        "href", f"/studio/{second}"
    )
    expect(scripts.nth(1)).to_contain_text("Cold brew at home")
    expect(scripts.nth(1)).to_contain_text("1:1")
    newest.get_by_role("button", name="Copy").click()
    expect(newest.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == text

    site.studio.delete_project(owner, first, actor="user:test")
    page.reload()
    expect(scripts).to_have_count(1)

    other = new_page(other_token)
    other.goto("/dashboard/scripts")
    expect(other.get_by_role("heading", name="No scripts yet")).to_be_visible()
    assert page.js_errors == [] and other.js_errors == []


def test_my_images_shows_every_image_with_a_download_link(site: Site, new_page: Any) -> None:
    owner, token = site.user()
    project_id = site.create(owner, "Bakery opening", format="4:5")
    pictures = [thumbnail_png(f"Bakery {i}", "4:5") for i in range(3)]
    assets = [
        site.system.assets.put(content, kind=kind, content_type="image/png")
        for content, kind in zip(pictures, ("product_shot", "banner", "scene_still"), strict=True)
    ]
    site.studio.add_assets(project_id, assets=assets, actor="stage:test")
    page = new_page(token)
    page.get_by_role("link", name="My Images", exact=True).click()
    images = page.locator(".image-card")
    expect(images).to_have_count(3)
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )
    for asset in assets:
        shown = page.locator(f'[data-image-id="{asset["id"]}"]')
        expect(shown).to_have_attribute("data-kind", asset["kind"])
        expect(shown.get_by_role("link", name="Bakery opening")).to_have_attribute(
            "href", f"/studio/{project_id}"
        )
    banner = assets[1]
    with page.expect_download() as download:
        page.locator(f'[data-image-id="{banner["id"]}"] [data-download]').click()
    path = download.value.path()
    assert path is not None and Path(path).read_bytes() == pictures[1]
    assert page.js_errors == []
