"""Deterministic, instant providers: real text from the brief, small placeholder files."""

from __future__ import annotations

import hashlib
import json

from ..adapters.assets import AssetStore
from .base import JSON, Brief, Call, Providers

ANGLES = (
    ("problem/solution", "Tired of the old way? {title} fixes it"),
    ("question", "What if {title} did the hard part for you?"),
    ("social proof", "Thousands already switched to {title}"),
    ("urgency", "{title}: the offer ends this week"),
    ("benefit", "Get more done with {title}"),
)


def _seed(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


class InstantText:
    """Ideas, script and scenes derived from the brief, the same every time."""

    async def ideas(self, brief: Brief, count: int, call: Call) -> list[JSON]:
        start = _seed(brief.title, brief.brief) % len(ANGLES)
        picked = [ANGLES[(start + i) % len(ANGLES)] for i in range(count)]
        return [
            {
                "angle": angle,
                "title": template.format(title=brief.title)[:120],
                "pitch": f"A {angle} ad for {brief.title}. {brief.brief[:160]}".strip(),
            }
            for angle, template in picked
        ]

    async def script(self, brief: Brief, idea: JSON | None, call: Call) -> JSON:
        hook = idea["title"] if idea else f"Meet {brief.title}"
        text = (
            f"{hook}. {brief.title} is made for people who want results without the hassle. "
            f"Try {brief.title} today and see the difference for yourself."
        )
        return {"title": hook, "text": text, "words": len(text.split()), "idea": idea}

    async def scenes(self, brief: Brief, script: JSON, call: Call) -> list[JSON]:
        sentences = [s.strip() for s in str(script["text"]).split(".") if s.strip()]
        return [
            {
                "index": i,
                "headline": sentence[:40],
                "visual": f"{brief.title}: {sentence.lower()}",
                "duration_s": 3,
            }
            for i, sentence in enumerate(sentences[:4])
        ]


class InstantMedia:
    """Placeholder media: tiny files that name what they stand for."""

    def __init__(self, assets: AssetStore) -> None:
        self.assets = assets

    def _placeholder(self, kind: str, content_type: str, **about: object) -> JSON:
        content = json.dumps({"placeholder": kind, **about}, sort_keys=True, default=str).encode()
        return self.assets.put(content, kind=kind, content_type=content_type)

    async def clip(self, brief: Brief, scene: JSON, call: Call) -> JSON:
        return self._placeholder(
            "clip", "video/mp4", project=brief.project_id, scene=scene["index"]
        )

    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> JSON:
        return self._placeholder("voiceover", "audio/wav", project=brief.project_id, text=text)

    async def stitch(
        self, brief: Brief, clips: list[JSON], voiceover: JSON | None, call: Call
    ) -> tuple[JSON, JSON]:
        ids = [c["id"] for c in clips]
        video = self._placeholder("final_video", "video/mp4", project=brief.project_id, clips=ids)
        thumbnail = self._placeholder("thumbnail", "image/jpeg", project=brief.project_id)
        return video, thumbnail

    async def images(self, brief: Brief, scenes: list[JSON], call: Call) -> list[JSON]:
        stills = [
            {
                **self._placeholder("scene_still", "image/png", project=brief.project_id, scene=i),
                "scene": scene["index"],
            }
            for i, scene in enumerate(scenes)
        ]
        return stills + [
            self._placeholder(kind, "image/png", project=brief.project_id)
            for kind in ("product_shot", "banner", "flyer")
        ]


def instant_providers(assets: AssetStore) -> Providers:
    text = InstantText()
    media = InstantMedia(assets)
    return Providers("instant", text, text, text, media, media, media, media, billed=False)
