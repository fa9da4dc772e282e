"""Voiceover through the official ElevenLabs SDK, stored as an mp3 asset."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError

from ...adapters.assets import AssetStore
from ..base import JSON, Brief, Call, InvalidOutput, PermanentProviderError, ProviderError
from ._http import DEFAULT_BACKOFF, Backoff, Transient, retry_after, with_retries

API = "ElevenLabs"
DEFAULT_VOICE = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", a premade voice every account has


class _Queued(Exception):
    """The account's concurrency limit is reached: wait for a slot, this is not a failure."""

    def __init__(self, wait_s: float | None) -> None:
        super().__init__("too_many_concurrent_requests")
        self.wait_s = wait_s


def _status_of(body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    status = detail.get("status") if isinstance(detail, dict) else None
    return str(status or "")


class ElevenLabsVoice:
    """Text to speech; a few calls at once, queued on the account's concurrency limit."""

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
        max_queue_waits: int = 60,
        timeout_s: float = 120.0,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.assets = assets
        self.client = AsyncElevenLabs(
            api_key=api_key, base_url=base_url, httpx_client=http, timeout=timeout_s
        )
        self.voice_id = voice_id
        self.model_id = model_id
        self.slots = asyncio.Semaphore(concurrency)
        self.queue_wait_s = queue_wait_s
        self.max_queue_waits = max_queue_waits
        self.backoff = backoff

    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> JSON:
        async with self.slots:
            audio = await self._queued(text)
        return self.assets.put(audio, kind="voiceover", content_type="audio/mpeg")

    async def _queued(self, text: str) -> bytes:
        """Wait out `too_many_concurrent_requests` (a bounded number of times), then speak."""
        for _ in range(self.max_queue_waits):
            try:
                return await with_retries(API, self.backoff, lambda: self._speak(text))
            except _Queued as e:
                await asyncio.sleep(e.wait_s if e.wait_s is not None else self.queue_wait_s)
        raise ProviderError(
            f"{API}: still too_many_concurrent_requests after {self.max_queue_waits} waits"
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
                    request_options={"max_retries": 0},  # the retries are ours
                )
            ]
        except ApiError as e:
            raise _classify(e) from e
        except httpx.TimeoutException as e:
            raise Transient(f"text to speech timed out ({type(e).__name__})") from e
        except httpx.TransportError as e:
            raise Transient(f"text to speech failed: {e!r}") from e
        audio = b"".join(chunks)
        if not audio:
            raise InvalidOutput(f"{API}: text to speech answered with no audio")
        return audio


def _classify(e: ApiError) -> Exception:
    """The provider error (or queue wait) that an SDK `ApiError` stands for."""
    code, status = e.status_code or 0, _status_of(e.body)
    what = f"{API}: HTTP {code} {status or str(e.body)[:200]}"
    if code in (401, 403):
        return PermanentProviderError(f"{what}: the API key was refused")
    if code == 429 and status == "too_many_concurrent_requests":
        return _Queued(retry_after(e.headers))
    if code == 429:
        return Transient(what, retry_after(e.headers), rate_limited=True)
    if code >= 500 or code == 408:
        return Transient(what)
    return PermanentProviderError(what)
