"""Voiceover through the official ElevenLabs SDK, stored as an mp3 asset."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError

from ...adapters.assets import AssetStore
from ..base import (
    JSON,
    Brief,
    Call,
    InvalidOutput,
    PermanentProviderError,
    ProviderError,
    RateLimited,
)
from ._http import retry_after

API = "ElevenLabs"
DEFAULT_VOICE = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", a premade voice every account has


def _status_of(body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    status = detail.get("status") if isinstance(detail, dict) else None
    return str(status or "")


class ElevenLabsVoice:
    """Text to speech; a few calls at once from this process.

    ElevenLabs answers 429 `too_many_concurrent_requests` when the account's concurrent
    requests are all in use (wait for a slot: `queue_wait_s`, or its Retry-After) and 429
    `system_busy` when it is overloaded: both are `RateLimited`, retried by the stage runner.
    """

    limit_key = "elevenlabs"  # AYTADA_LIMIT_ELEVENLABS_*

    def __init__(
        self,
        assets: AssetStore,
        api_key: str,
        *,
        base_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        voice_id: str = DEFAULT_VOICE,
        model_id: str = "eleven_multilingual_v2",
        concurrency: int = 2,
        queue_wait_s: float = 1.0,
        timeout_s: float = 120.0,
    ) -> None:
        self.assets = assets
        self.client = AsyncElevenLabs(
            api_key=api_key, base_url=base_url, httpx_client=http, timeout=timeout_s
        )
        self.voice_id = voice_id
        self.model_id = model_id
        self.slots = asyncio.Semaphore(concurrency)
        self.queue_wait_s = queue_wait_s

    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> JSON:
        async with self.slots:
            audio = await self._speak(text)
        return await asyncio.to_thread(
            self.assets.put, audio, kind="voiceover", content_type="audio/mpeg"
        )

    async def _speak(self, text: str) -> bytes:
        """One attempt; errors can surface while the audio streams, so all of it is read here."""
        try:
            chunks = [
                chunk
                async for chunk in self.client.text_to_speech.convert(
                    self.voice_id,
                    text=text,
                    model_id=self.model_id,
                    output_format="mp3_44100_128",
                    request_options={"max_retries": 0},  # the stage runner retries
                )
            ]
        except ApiError as e:
            raise self._classify(e) from e
        except httpx.TimeoutException as e:
            raise ProviderError(f"{API}: text to speech timed out ({type(e).__name__})") from e
        except httpx.TransportError as e:
            raise ProviderError(f"{API}: text to speech failed: {e!r}") from e
        audio = b"".join(chunks)
        if not audio:
            raise InvalidOutput(f"{API}: text to speech answered with no audio")
        return audio

    def _classify(self, e: ApiError) -> ProviderError:
        """The provider error that an SDK `ApiError` stands for."""
        code, status = e.status_code or 0, _status_of(e.body)
        what = f"{API}: HTTP {code} {status or str(e.body)[:200]}"
        if code in (401, 403):
            return PermanentProviderError(f"{what}: the API key was refused")
        if code == 429:
            after = retry_after(e.headers)
            if status == "too_many_concurrent_requests" and after is None:
                after = self.queue_wait_s  # a slot frees as soon as another request ends
            return RateLimited(what, after)
        if code >= 500 or code == 408:
            return ProviderError(what)
        return PermanentProviderError(what)
