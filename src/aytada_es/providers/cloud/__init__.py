"""Cloud providers: an OpenAI-compatible LLM for text, ElevenLabs for voice, Shotstack for video."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ...adapters.assets import AssetStore
from ...domain.errors import ConfigError
from ..base import Providers
from .llm import ChatLLM
from .shotstack import DEFAULT_BASE_URL, ShotstackRenderer
from .voice import ElevenLabsVoice

__all__ = ["ChatLLM", "ElevenLabsVoice", "ShotstackRenderer", "cloud_providers"]

# A missing value is named by the variable a person sets.
REQUIRED = {
    "llm_base_url": "AYTADA_LLM_BASE_URL",
    "llm_api_key": "AYTADA_LLM_API_KEY",
    "elevenlabs_api_key": "ELEVENLABS_API_KEY",
    "shotstack_api_key": "SHOTSTACK_API_KEY",
}


def cloud_providers(
    assets: AssetStore,
    *,
    llm_base_url: str | None,
    llm_api_key: str | None,
    elevenlabs_api_key: str | None,
    shotstack_api_key: str | None,
    public_asset_url: Callable[[str], str],
    http: httpx.AsyncClient | None = None,
    llm_model: str = "gpt-4o-mini",
    elevenlabs_base_url: str | None = None,
    shotstack_base_url: str | None = None,
) -> Providers:
    """The "cloud" provider set; `public_asset_url` must give URLs that Shotstack can fetch.

    Pass `http` (owned and closed by the caller) to share one connection pool.
    """
    given = {
        "llm_base_url": llm_base_url,
        "llm_api_key": llm_api_key,
        "elevenlabs_api_key": elevenlabs_api_key,
        "shotstack_api_key": shotstack_api_key,
    }
    missing = [var for name, var in REQUIRED.items() if not given[name]]
    if missing:
        raise ConfigError(f"AYTADA_PROVIDERS=cloud needs {', '.join(missing)}")
    assert llm_base_url and llm_api_key  # checked just above, for mypy
    assert elevenlabs_api_key and shotstack_api_key
    http = http or httpx.AsyncClient(timeout=60.0)
    text = ChatLLM(http, llm_base_url, llm_api_key, model=llm_model)
    voice = ElevenLabsVoice(assets, elevenlabs_api_key, base_url=elevenlabs_base_url, http=http)
    video = ShotstackRenderer(
        http,
        assets,
        shotstack_api_key,
        public_asset_url,
        base_url=shotstack_base_url or DEFAULT_BASE_URL,
    )
    return Providers("cloud", text, text, text, video, voice, video)
