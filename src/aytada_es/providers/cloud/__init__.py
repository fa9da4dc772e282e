"""Cloud providers: an OpenAI-compatible LLM for text, ElevenLabs for voice, Shotstack for video."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ...adapters.assets import AssetStore
from ...config import Settings
from ...domain.errors import ConfigError
from ..base import Providers
from .llm import ChatLLM
from .shotstack import DEFAULT_BASE_URL, ShotstackRenderer
from .voice import ElevenLabsVoice

__all__ = ["ChatLLM", "ElevenLabsVoice", "ShotstackRenderer", "cloud_providers"]

REQUIRED = {
    "llm_base_url": "AYTADA_LLM_BASE_URL",
    "llm_api_key": "AYTADA_LLM_API_KEY",
    "elevenlabs_api_key": "ELEVENLABS_API_KEY",
    "shotstack_api_key": "SHOTSTACK_API_KEY",
}


def cloud_providers(
    settings: Settings,
    assets: AssetStore,
    *,
    public_asset_url: Callable[[str], str],
    http: httpx.AsyncClient | None = None,
    llm_model: str = "gpt-4o-mini",
    elevenlabs_base_url: str | None = None,
    shotstack_base_url: str | None = None,
) -> Providers:
    """The "cloud" provider set; `public_asset_url` must give URLs that Shotstack can fetch.

    Pass `http` (owned and closed by the caller) to share one connection pool.
    """
    missing = [var for field, var in REQUIRED.items() if not getattr(settings, field)]
    if missing:
        raise ConfigError(f"AYTADA_PROVIDERS=cloud needs {', '.join(missing)}")
    assert settings.llm_base_url and settings.llm_api_key  # checked just above, for mypy
    assert settings.elevenlabs_api_key and settings.shotstack_api_key
    http = http or httpx.AsyncClient(timeout=60.0)
    text = ChatLLM(http, settings.llm_base_url, settings.llm_api_key, model=llm_model)
    voice = ElevenLabsVoice(
        assets, settings.elevenlabs_api_key, base_url=elevenlabs_base_url, http=http
    )
    video = ShotstackRenderer(
        http,
        assets,
        settings.shotstack_api_key,
        public_asset_url,
        base_url=shotstack_base_url or DEFAULT_BASE_URL,
    )
    return Providers("cloud", text, text, text, video, voice, video)
