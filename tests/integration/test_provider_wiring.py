"""Which providers AYTADA_PROVIDERS gives, and the signed links a remote renderer downloads by."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from aytada_es.adapters.assets import AssetStore
from aytada_es.adapters.links import AssetLinks
from aytada_es.bootstrap import bootstrap, make_providers
from aytada_es.config import Settings
from aytada_es.domain.errors import ConfigError
from aytada_es.web.app import create_app

KEYS = {
    "AYTADA_LLM_BASE_URL": "http://127.0.0.1:9/v1",
    "AYTADA_LLM_API_KEY": "k",
    "ELEVENLABS_API_KEY": "k",
    "SHOTSTACK_API_KEY": "k",
}


def settings_with(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"AYTADA_DATA_DIR": str(tmp_path / "var"), **env})


def test_local_is_the_default_and_cloud_draws_its_images_locally(tmp_path: Path) -> None:
    assets = AssetStore(tmp_path / "assets")
    local = make_providers(settings_with(tmp_path), assets)
    assert local.name == "local" and local.images is not None
    cloud = make_providers(settings_with(tmp_path, AYTADA_PROVIDERS="cloud", **KEYS), assets)
    assert cloud.name == "cloud"
    assert type(cloud.images) is type(local.images)


def test_cloud_without_its_keys_fails_at_start_up_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY") as raised:
        make_providers(settings_with(tmp_path, AYTADA_PROVIDERS="cloud"), AssetStore(tmp_path))
    assert "SHOTSTACK_API_KEY" in str(raised.value)


def test_a_signed_link_is_valid_for_its_asset_until_it_expires() -> None:
    links = AssetLinks(b"k" * 32, "https://ads.example", ttl_s=60)
    url = links.url("a" * 64, now=1000)
    query = dict(part.split("=") for part in url.split("?")[1].split("&"))
    assert url.startswith("https://ads.example/public/assets/" + "a" * 64)
    assert links.valid("a" * 64, query["expires"], query["signature"], now=1030)
    assert not links.valid("a" * 64, query["expires"], query["signature"], now=1061)
    assert not links.valid("b" * 64, query["expires"], query["signature"], now=1030)
    assert not links.valid("a" * 64, str(int(query["expires"]) + 1), query["signature"], now=1)
    assert not AssetLinks(b"x" * 32, "https://ads.example").valid(
        "a" * 64, query["expires"], query["signature"], now=1030
    )


async def test_the_public_asset_route_serves_only_signed_unexpired_links(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        AYTADA_PROVIDERS="instant",
        AYTADA_SECRET_KEY="s" * 32,
        AYTADA_PUBLIC_URL="http://testserver",
    )
    system = bootstrap(settings)
    try:
        asset = system.assets.put(b"a still", kind="scene_still", content_type="image/png")
        app = create_app(system.service())
        links = AssetLinks(b"s" * 32, "http://testserver")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            good = await client.get(links.url(asset["id"]))
            assert good.status_code == 200 and good.content == b"a still"
            unsigned = await client.get(f"/public/assets/{asset['id']}")
            assert unsigned.status_code == 404
            assert unsigned.json()["error"]["code"] == "not_found"
            old = await client.get(links.url(asset["id"], now=time.time() - 2 * links.ttl_s))
            assert old.status_code == 404
            forged = await client.get(AssetLinks(b"f" * 32, "http://testserver").url(asset["id"]))
            assert forged.status_code == 404
            missing = await client.get(links.url("0" * 64))
            assert missing.status_code == 404
    finally:
        system.close()
