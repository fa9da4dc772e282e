"""Clips and the final ad rendered by Shotstack's Edit API, downloaded at once into the assets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from ...adapters.assets import AssetStore
from ..base import JSON, Brief, Call, InvalidOutput, PermanentProviderError, ProviderError
from ._http import NotFound, json_of, send

API = "Shotstack"
STATUSES = ("queued", "fetching", "rendering", "saving", "done", "failed")
DEFAULT_BASE_URL = "https://api.shotstack.io/edit/v1"


class ShotstackRenderer:
    """Renders timelines; the render id is recorded at once so an interrupted call resumes it."""

    limit_key = "shotstack"  # AYTADA_LIMIT_SHOTSTACK_*

    def __init__(
        self,
        http: httpx.AsyncClient,
        assets: AssetStore,
        api_key: str,
        public_asset_url: Callable[[str], str],
        *,
        base_url: str = DEFAULT_BASE_URL,
        resolution: str = "sd",
        poll_interval_s: float = 2.0,
        render_timeout_s: float = 900.0,
        timeout_s: float = 60.0,
    ) -> None:
        self.http = http
        self.assets = assets
        self.headers = {"x-api-key": api_key}
        self.public_asset_url = public_asset_url
        self.base_url = base_url.rstrip("/")
        self.resolution = resolution
        self.poll_interval_s = poll_interval_s
        self.render_timeout_s = render_timeout_s
        self.timeout_s = timeout_s

    async def clip(self, brief: Brief, scene: JSON, call: Call) -> JSON:
        length = float(scene.get("duration_s", 3))
        tracks: list[JSON] = [
            {"clips": [_title(str(scene.get("headline") or brief.title), 0.0, length)]}
        ]
        still = scene.get("still")
        if still:
            picture = {"type": "image", "src": self.public_asset_url(str(still["id"]))}
            tracks.append({"clips": [{"asset": picture, "start": 0, "length": length}]})
        render = await self._render({"tracks": tracks}, {}, call)
        video = await self._download(render["url"])
        return {
            **await asyncio.to_thread(
                self.assets.put, video, kind="clip", content_type="video/mp4"
            ),
            "duration_s": length,
        }

    async def stitch(
        self, brief: Brief, clips: list[JSON], voiceover: JSON | None, call: Call
    ) -> tuple[JSON, JSON]:
        if not clips:
            raise PermanentProviderError(f"{API}: nothing to stitch (no clips)")
        track, start = [], 0.0
        for clip in clips:
            length = float(clip.get("duration_s", 3))
            source = {"type": "video", "src": self.public_asset_url(str(clip["id"]))}
            track.append({"asset": source, "start": start, "length": length})
            start += length
        timeline: JSON = {"tracks": [{"clips": track}]}
        if voiceover is not None:
            src = self.public_asset_url(str(voiceover["id"]))
            timeline["soundtrack"] = {"src": src, "effect": "fadeOut"}
        render = await self._render(timeline, {"poster": {"capture": 0}}, call)
        poster_url = render.get("poster") or render.get("thumbnail")
        if not isinstance(poster_url, str) or not poster_url:
            raise InvalidOutput(f"{API}: render {render['id']} is done without a poster")
        video, poster = await asyncio.gather(
            self._download(render["url"]), self._download(poster_url)
        )
        return (
            await asyncio.to_thread(
                self.assets.put, video, kind="final_video", content_type="video/mp4"
            ),
            await asyncio.to_thread(
                self.assets.put, poster, kind="thumbnail", content_type="image/jpeg"
            ),
        )

    async def _render(self, timeline: JSON, output: JSON, call: Call) -> JSON:
        """The finished render: the one `call.resume_id` names, or a new one."""
        render_id = call.resume_id
        if render_id is None or await self._status(render_id) is None:
            body = {
                "timeline": timeline,
                "output": {"format": "mp4", "resolution": self.resolution, **output},
            }
            response = await self._send("POST", f"{self.base_url}/render", json=body)
            created = _response(json_of(API, response), "the new render")
            render_id = _field(created, "id", "the new render")
            await call.record_id(render_id)
        return await self._wait(render_id)

    async def _wait(self, render_id: str) -> JSON:
        """Poll the render (the GET is the truth, not the callback) until it is done or failed."""
        deadline = asyncio.get_running_loop().time() + self.render_timeout_s
        while True:
            render = await self._status(render_id)
            if render is None:
                raise ProviderError(f"{API}: render {render_id} is gone")
            if render["status"] == "done":
                _field(render, "url", f"done render {render_id}")
                return render
            if render["status"] == "failed":
                reason = render.get("error") or "no reason given"
                raise PermanentProviderError(f"{API}: render {render_id} failed: {reason}")
            if asyncio.get_running_loop().time() >= deadline:
                raise ProviderError(
                    f"{API}: render {render_id} still {render['status']} "
                    f"after {self.render_timeout_s:.0f} s"
                )
            await asyncio.sleep(self.poll_interval_s)

    async def _status(self, render_id: str) -> JSON | None:
        """The render's `response` object, or None when Shotstack does not know the id."""
        url = f"{self.base_url}/render/{render_id}"
        try:
            response = await self._send("GET", url)
        except NotFound:
            return None
        render = _response(json_of(API, response), f"render {render_id}")
        status = render.get("status")
        if status not in STATUSES:
            raise InvalidOutput(f"{API}: render {render_id} has unknown status {status!r}")
        return {**render, "id": render_id}

    async def _download(self, url: str) -> bytes:
        """Fetch an output file at once: Shotstack's output URLs expire after 24 hours."""
        response = await send(self.http, API, "GET", url, timeout=self.timeout_s)
        if not response.content:
            raise InvalidOutput(f"{API}: the output file {url} is empty")
        return response.content

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await send(
            self.http, API, method, url,
            headers=self.headers, timeout=self.timeout_s, **kwargs,
        )  # fmt: skip


def _title(text: str, start: float, length: float) -> JSON:
    asset = {"type": "title", "text": text[:80], "style": "minimal", "size": "medium"}
    return {"asset": asset, "start": start, "length": length}


def _response(answer: Any, what: str) -> JSON:
    """The `response` object of a Shotstack answer, checked."""
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        raise InvalidOutput(f"{API}: malformed answer for {what}: {str(answer)[:200]!r}")
    return response


def _field(answer: JSON, name: str, what: str) -> str:
    """A non-empty string field of a Shotstack `response` object."""
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidOutput(f"{API}: {what} has no {name!r}: {str(answer)[:200]!r}")
    return value
