"""Fixtures of the browser tests: Debian's Chromium, the live site, signed-in pages."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aytada_es.adapters.assets import AssetStore
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.providers.base import Providers
from conftest import NO_RATE_LIMITS, QUICK_GROUPS, unavailable

from .live_site import (
    BLOCK_WEBSOCKETS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ControlledMedia,
    ControlledText,
    Controls,
    LiveServer,
    Site,
    sign_in,
)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium: missing, the tests fail in CI and skip elsewhere."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    return CHROMIUM if os.path.exists(CHROMIUM) else str(shutil.which("chromium"))


@pytest.fixture(scope="module")
def site(
    chromium_path: str, broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The full system (relay, stages, projections) and the web app, for one test module."""
    data = tmp_path_factory.mktemp("site")
    settings = Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(data / "var"),
            "AYTADA_DATABASE_URL": f"sqlite:///{data / 'aytada.sqlite'}",
            "AYTADA_KAFKA_NAMESPACE": f"b{uuid.uuid4().hex[:10]}.",
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_STAGE_BACKOFF_S": "0.01",
            "AYTADA_STAGE_ATTEMPTS": "3",
            **NO_RATE_LIMITS,
            **QUICK_GROUPS,
        }
    )
    controls = Controls()
    text = ControlledText(controls)
    media = ControlledMedia(AssetStore(settings.assets_dir), controls)
    providers = Providers("instant", text, text, text, media, media, media)
    system = bootstrap(settings, providers=providers, bootstrap_servers=broker)
    server = LiveServer(system)
    server.start()
    try:
        yield Site(server.url, system, controls)
    finally:
        controls.reset()
        server.stop()
        system.close()


@pytest.fixture(autouse=True)
def _fresh_controls(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts and ends with nothing held and nothing failing."""
    if "site" not in request.fixturenames:
        yield
        return
    site: Site = request.getfixturevalue("site")
    site.controls.reset()
    yield
    site.controls.reset()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any, site: Site) -> Iterator[Callable[..., Any]]:
    """Open a page in a fresh browser context (its own cookies), signed in with a token."""
    contexts: list[Any] = []

    def open_page(token: str | None, *, clock: bool = False, block_ws: bool = False) -> Any:
        context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.js_errors = errors
        if block_ws:
            page.add_init_script(BLOCK_WEBSOCKETS)
        if clock:
            page.clock.install()
        if token is not None:
            sign_in(page, token)
        return page

    yield open_page
    for context in contexts:
        context.close()
