"""Deterministic, instant providers: real text from the brief, small placeholder files."""

from __future__ import annotations

import hashlib

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
    """Placeholder media: tiny files that name what they stand for.

    Like the text, a placeholder follows from what it depicts alone, so projects with the same
    brief share their files (the store keeps each content once).
    """

    def __init__(self, assets: AssetStore) -> None:
        self.assets = assets

    def _placeholder(self, kind: str, content_type: str, depicts: str) -> JSON:
        content = f"aytada placeholder {kind}: {depicts}".encode()
        return self.assets.put(content, kind=kind, content_type=content_type)

    async def clip(self, brief: Brief, scene: JSON, call: Call) -> JSON:
        return self._placeholder("clip", "video/mp4", f"{brief.format} {scene['visual']}")

    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> JSON:
        return self._placeholder("voiceover", "audio/wav", f"{duration_s:g} s: {text}")

    async def stitch(
        self, brief: Brief, clips: list[JSON], voiceover: JSON | None, call: Call
    ) -> tuple[JSON, JSON]:
        parts = " ".join([c["id"] for c in clips] + ([voiceover["id"]] if voiceover else []))
        video = self._placeholder("final_video", "video/mp4", parts)
        thumbnail = self._placeholder("thumbnail", "image/jpeg", clips[0]["id"] if clips else "")
        return video, thumbnail

    async def images(self, brief: Brief, scenes: list[JSON], call: Call) -> list[JSON]:
        stills = [
            {
                **self._placeholder(
                    "scene_still", "image/png", f"{brief.format} {scene['visual']}"
                ),
                "scene": scene["index"],
            }
            for scene in scenes
        ]
        about = f"{brief.format} {brief.title}: {brief.brief}"
        return stills + [
            self._placeholder(kind, "image/png", about)
            for kind in ("product_shot", "banner", "flyer")
        ]


def instant_providers(assets: AssetStore) -> Providers:
    text = InstantText()
    media = InstantMedia(assets)
    return Providers("instant", text, text, text, media, media, media, media, billed=False)
