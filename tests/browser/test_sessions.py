"""Ended sessions in a real browser: an open page goes to the login page within 5 s."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from .live_site import Site

pytestmark = pytest.mark.browser

CLOSE_WITHIN_S = 5.0
BACK_TO_LOGIN = "**/login?next=%2Fdashboard%2Fvideos"


def live(page: Any) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_signing_out_in_one_tab_sends_the_others_to_the_login_page(
    site: Site, new_page: Any
) -> None:
    _, token = site.user()
    first = new_page(token)
    second = first.context.new_page()  # the same browser: the same session cookie
    second.goto("/dashboard/videos")
    live(first)
    live(second)
    first.get_by_role("button", name="Sign out").click()
    first.wait_for_url("**/login")
    second.wait_for_url(BACK_TO_LOGIN, timeout=CLOSE_WITHIN_S * 1000)
    assert first.js_errors == []


def test_a_rotated_token_sends_its_open_pages_to_the_login_page(site: Site, new_page: Any) -> None:
    name = f"u{uuid.uuid4().hex[:10]}"
    _, token = site.user(name=name)
    page = new_page(token)
    live(page)
    rotated = time.monotonic()
    site.studio.rotate_token(name)
    page.wait_for_url(BACK_TO_LOGIN, timeout=CLOSE_WITHIN_S * 1000)
    assert time.monotonic() - rotated < CLOSE_WITHIN_S
    assert page.js_errors == []
