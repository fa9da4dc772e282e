"""Local fakes of the cloud APIs in their wire formats: chat completions, ElevenLabs, Shotstack.

One Starlette app serves all three under their own prefixes; a test scripts the next replies
of an endpoint (`fake.script("tts", Reply(429, ...))`) and reads back the requests it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aytada_es.web.serving import WebServer

LLM_KEY, ELEVENLABS_KEY, SHOTSTACK_KEY = "llm-key", "xi-key", "shotstack-key"
AUDIO = b"ID3\x04\x00fake-mp3-frames" * 200
PROGRESSION = ("queued", "fetching", "rendering", "saving", "done")


@dataclass
class Reply:
    """One scripted answer: a status, a JSON (or raw) body, headers, and a delay before it.

    `broken` sends the headers and half of the body, then drops the connection.
    """

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    broken: bool = False

    def response(self) -> Response:
        if self.broken:
            return StreamingResponse(self._half_then_drop(), self.status, self.headers)
        if self.body is not None:
            return Response(self.body, self.status, self.headers)
        return JSONResponse(self.json, self.status, self.headers)

    async def _half_then_drop(self) -> AsyncIterator[bytes]:
        body = self.body or b""
        yield body[: len(body) // 2]
        raise ConnectionAbortedError("the fake drops the connection mid-stream")


@dataclass
class Seen:
    """A request the fake received."""

    endpoint: str
    method: str
    path: str
    body: Any


def completion(content: Any, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat-completions answer whose message content is `content` (JSON-encoded unless a str)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def elevenlabs_error(status: int, code: str, message: str = "") -> Reply:
    """An ElevenLabs error reply: `{"detail": {"status": code, "message": ...}}`."""
    return Reply(status, {"detail": {"status": code, "message": message or code}})


class FakeCloud:
    """The fake APIs' state: scripted replies, renders, and every request seen."""

    def __init__(self) -> None:
        self.url = ""
        self.seen: list[Seen] = []
        self.scripted: dict[str, deque[Reply]] = defaultdict(deque)
        self.renders: dict[str, deque[str]] = {}
        self.render_progression: tuple[str, ...] = PROGRESSION
        self.render_error = ""
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/llm/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/xi/v1/text-to-speech/{voice_id}", self.tts, methods=["POST"]),
                Route("/shotstack/edit/v1/render", self.post_render, methods=["POST"]),
                Route("/shotstack/edit/v1/render/{id}", self.get_render, methods=["GET"]),
                Route("/cdn/{name}", self.cdn, methods=["GET"]),
            ]
        )

    def script(self, endpoint: str, *replies: Reply) -> None:
        """The next answers of `endpoint` (chat, tts, post_render, get_render, cdn)."""
        self.scripted[endpoint].extend(replies)

    def count(self, endpoint: str, method: str | None = None) -> int:
        return sum(1 for s in self.seen if s.endpoint == endpoint and method in (None, s.method))

    def add_render(self, statuses: tuple[str, ...]) -> str:
        """A render that already exists remotely, going through `statuses` one GET at a time."""
        render_id = f"render-{next(self._ids)}"
        self.renders[render_id] = deque(statuses)
        return render_id

    async def _seen(self, endpoint: str, request: Request) -> Reply | None:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.seen.append(Seen(endpoint, request.method, request.url.path, body))
        if self.scripted[endpoint]:
            reply = self.scripted[endpoint].popleft()
            await asyncio.sleep(reply.delay_s)
            return reply
        return None

    async def chat(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {LLM_KEY}":
            await self._seen("chat", request)
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, 401)
        reply = await self._seen("chat", request)
        if reply is not None:
            return reply.response()
        prompt = self.seen[-1].body["messages"][-1]["content"]
        if '{"ideas"' in prompt:
            answer: Any = {
                "ideas": [
                    {"angle": "question", "title": "Why wait?", "pitch": "Ask. Then answer."},
                    {"angle": "benefit", "title": "More done", "pitch": "Less work. More time."},
                ]
            }
        elif '{"scenes"' in prompt:
            answer = {
                "scenes": [
                    {"headline": "Meet it", "visual": "the product on a desk", "duration_s": 3},
                    {"headline": "Try it", "visual": "a smiling user", "duration_s": 2.5},
                ]
            }
        else:
            answer = {"title": "Why wait?", "text": "Why wait? Try it today and see."}
        return JSONResponse(completion(answer))

    async def tts(self, request: Request) -> Response:
        if request.headers.get("xi-api-key") != ELEVENLABS_KEY:
            await self._seen("tts", request)
            return elevenlabs_error(401, "invalid_api_key", "Invalid API key").response()
        reply = await self._seen("tts", request)
        if reply is not None:
            return reply.response()

        async def frames() -> AsyncIterator[bytes]:
            for i in range(0, len(AUDIO), 1000):
                yield AUDIO[i : i + 1000]

        return StreamingResponse(frames(), media_type="audio/mpeg")

    async def post_render(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != SHOTSTACK_KEY:
            await self._seen("post_render", request)
            return JSONResponse({"message": "Forbidden"}, 403)
        reply = await self._seen("post_render", request)
        if reply is not None:
            return reply.response()
        render_id = self.add_render(self.render_progression)
        answer = {"message": "Render Successfully Queued", "id": render_id}
        return JSONResponse({"success": True, "message": "Created", "response": answer}, 201)

    async def get_render(self, request: Request) -> Response:
        reply = await self._seen("get_render", request)
        if reply is not None:
            return reply.response()
        render_id = request.path_params["id"]
        statuses = self.renders.get(render_id)
        if statuses is None:
            return JSONResponse({"success": False, "message": "Not Found", "response": {}}, 404)
        status = statuses.popleft() if len(statuses) > 1 else statuses[0]
        render: dict[str, Any] = {"id": render_id, "owner": "fake", "status": status}
        if status == "done":
            render["url"] = f"{self.url}/cdn/{render_id}.mp4"
            render["poster"] = f"{self.url}/cdn/{render_id}-poster.jpg"
        if status == "failed":
            render["error"] = self.render_error or "Asset could not be fetched"
        return JSONResponse({"success": True, "message": "OK", "response": render})

    async def cdn(self, request: Request) -> Response:
        reply = await self._seen("cdn", request)
        if reply is not None:
            return reply.response()
        name = request.path_params["name"]
        kind = "image/jpeg" if name.endswith(".jpg") else "video/mp4"
        return Response(f"bytes of {name}".encode(), media_type=kind)


@contextlib.asynccontextmanager
async def fake_cloud() -> AsyncIterator[FakeCloud]:
    """The fake APIs, served on a free loopback port for the duration of the block."""
    fake = FakeCloud()
    server = WebServer(fake.app, host="127.0.0.1", port=0)
    fake.url = await server.start()
    try:
        yield fake
    finally:
        await server.stop()
