"""Ideas, script and scenes from an OpenAI-compatible chat-completions API, in JSON mode."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...domain.steps import MAX_SCENE_SECONDS, MAX_SCENES
from ..base import JSON, Brief, Call, InvalidOutput
from ._http import json_of, send

API = "LLM"
Answer = TypeVar("Answer", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Idea(_Model):
    angle: str = Field(min_length=1, max_length=60)
    title: str = Field(min_length=1, max_length=120)
    pitch: str = Field(min_length=1, max_length=600)


class Ideas(_Model):
    ideas: list[Idea] = Field(min_length=1)


class Script(_Model):
    title: str = Field(min_length=1, max_length=120)
    text: str = Field(min_length=1, max_length=2000)


class Scene(_Model):
    headline: str = Field(min_length=1, max_length=80)
    visual: str = Field(min_length=1, max_length=400)
    duration_s: float = Field(3.0, gt=0, le=MAX_SCENE_SECONDS)


class Scenes(_Model):
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)


SYSTEM = (
    "You write short video ads. Answer with one JSON object only, exactly in the shape asked for."
)


def _about(brief: Brief) -> str:
    return f"Product: {brief.title}\nFormat: {brief.format}\nBrief: {brief.brief}"


class ChatLLM:
    """The text steps, asked of a chat-completions model and validated before they are used."""

    limit_key = "llm"  # AYTADA_LIMIT_LLM_*

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        *,
        model: str = "gpt-4o-mini",
        timeout_s: float = 60.0,
    ) -> None:
        self.http = http
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.api_key = api_key
        self.model = model
        self.timeout_s = timeout_s

    async def ideas(self, brief: Brief, count: int, call: Call) -> list[JSON]:
        prompt = (
            f"{_about(brief)}\n\nGive {count} distinct ad ideas as "
            '{"ideas": [{"angle": "...", "title": "...", "pitch": "..."}]}: angle a short label '
            "(problem/solution, question, social proof...), title a hook of at most 120 "
            "characters, pitch two sentences."
        )
        answer = await self._ask("ideas", prompt, Ideas, call)
        return [idea.model_dump() for idea in answer.ideas[:count]]

    async def script(self, brief: Brief, idea: JSON | None, call: Call) -> JSON:
        chosen = f"\nIdea: {idea['title']} ({idea.get('pitch', '')})" if idea else ""
        prompt = (
            f"{_about(brief)}{chosen}\n\nWrite the voiceover script of a 10 to 20 second ad as "
            '{"title": "...", "text": "..."}: text is what the narrator says, 25 to 50 words.'
        )
        answer = await self._ask("script", prompt, Script, call)
        return {**answer.model_dump(), "words": len(answer.text.split()), "idea": idea}

    async def scenes(self, brief: Brief, script: JSON, call: Call) -> list[JSON]:
        prompt = (
            f"{_about(brief)}\nScript: {script['text']}\n\nBreak the script into 1 to {MAX_SCENES} "
            'visual scenes as {"scenes": [{"headline": "...", "visual": "...", "duration_s": 3}]}: '
            "headline the on-screen text (at most 40 characters), visual what the picture shows, "
            f"duration_s at most {MAX_SCENE_SECONDS}."
        )
        answer = await self._ask("scenes", prompt, Scenes, call)
        return [{"index": i, **scene.model_dump()} for i, scene in enumerate(answer.scenes)]

    async def _ask(self, step: str, prompt: str, shape: type[Answer], call: Call) -> Answer:
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": prompt},
            ],
            "response_format": {"type": "json_object"},
        }
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": call.key}
        response = await send(
            self.http, API, "POST", self.url,
            json=body, headers=headers, timeout=self.timeout_s,
        )  # fmt: skip
        return _parse(step, json_of(API, response), shape)


def _parse(step: str, completion: Any, shape: type[Answer]) -> Answer:
    """The model's JSON answer, validated; anything else is a clear permanent error."""
    try:
        choice = completion["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise InvalidOutput(
            f"{API}: the {step} completion has no choices[0].message.content: "
            f"{json.dumps(completion)[:200]}"
        ) from None
    if choice.get("finish_reason") == "length":
        raise InvalidOutput(f"{API}: the {step} answer was cut off (finish_reason=length)")
    if not isinstance(content, str):
        raise InvalidOutput(f"{API}: the {step} answer is not text: {content!r:.200}")
    try:
        return shape.model_validate_json(content)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'answer'}: {err['msg']}" for err in e.errors()
        )
        raise InvalidOutput(
            f"{API}: malformed {step} answer ({problems}): {content[:200]!r}"
        ) from None
