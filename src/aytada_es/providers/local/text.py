"""Ideas, script and scenes written offline from the brief: seeded, so the same every time."""

from __future__ import annotations

import hashlib
import itertools
import re

from ..base import JSON, Brief, Call

AD_SECONDS = 12
SCENE_COUNT = 4
MIN_WORDS, MAX_WORDS = 28, 32
MAX_HEADLINE = 40
MAX_NAME = 22
MAX_NAME_WORDS = 4

# (angle, idea title, hook lines, hook headline); "{n}" is the product's short name.
ANGLES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (
        "problem/solution",
        "Tired of the old way? {n} fixes it",
        ("Tired of doing it the hard way?", "Still stuck with the old way?"),
        "Tired of the old way?",
    ),
    (
        "question",
        "What if {n} did the hard part for you?",
        ("What if the hard part took care of itself?", "What would you do with an extra hour?"),
        "What if it just worked?",
    ),
    (
        "social proof",
        "Thousands already switched to {n}",
        (
            "Thousands of people already made the switch.",
            "People everywhere are making the switch.",
        ),
        "Thousands already switched",
    ),
    (
        "urgency",
        "{n}: the offer ends this week",
        ("This offer ends soon, so do not wait.", "The launch offer ends this week."),
        "The offer ends this week",
    ),
    (
        "benefit",
        "Get more done with {n}",
        ("Get more done in less time.", "Do more with less effort."),
        "Get more done, stress less",
    ),
    (
        "before/after",
        "Life before and after {n}",
        ("Remember how it was before?", "Picture your day before and after."),
        "Before and after",
    ),
    (
        "how it works",
        "{n} in three simple steps",
        ("It only takes three simple steps.", "Here is how it works."),
        "Three simple steps",
    ),
    (
        "story",
        "A day that changed with {n}",
        ("It started as an ordinary day.", "Every great change starts small."),
        "One day, everything changed",
    ),
)

INTROS = (
    "Meet {n}, made for people who want results without the hassle.",
    "{n} makes it simple, fast and easy to love.",
    "Say hello to {n}.",
    "That is where {n} comes in.",
)
INTRO_HEADLINES = ("Meet {n}", "Say hello to {n}", "This is {n}", "Introducing {n}")
BENEFITS = (
    "It saves you time every single day.",
    "It is easy to start and hard to put down.",
    "Everything you need is right there, ready when you are.",
    "Clear results, no learning curve and no stress.",
    "Simple to use.",
)
BENEFIT_HEADLINES = ("Save time every day", "Simple, fast, reliable", "Results you can see")
CTAS = (
    "Try {n} today.",
    "Try {n} today and see the difference for yourself.",
    "Get {n} now and feel the difference from day one.",
    "Start with {n} today.",
)
CTA_HEADLINES = ("Try {n} today", "Get {n} now", "Start today")
VISUALS = (
    "Close-up of {n} on a bold gradient backdrop, the headline in large type",
    "{n} in use in a bright, modern space, soft light and gentle motion",
    "Happy customer smiling at the result, warm colours, slow push-in",
    "Clean product shot of {n} with a call to action button below",
    "Split screen of before and after, crisp shapes and confident colours",
    "Top-down view of {n} on a tidy desk, calm pastel palette",
)
FALLBACK_NAME = "our product"
_EDGE = " .,;:?!'\"-"
_UNSAFE = re.compile(r"[{}\x00-\x1f\x7f]")


def clean(text: str) -> str:
    """User text without braces or control characters, its whitespace collapsed."""
    return " ".join(_UNSAFE.sub(" ", text).split())


def short_name(title: str, limit: int = MAX_NAME, max_words: int = MAX_NAME_WORDS) -> str:
    """The product's name for copy: the title cut at a word boundary to fit `limit`."""
    name = clean(title).strip(_EDGE) or FALLBACK_NAME
    words, kept = name.split(), ""
    if len(name) <= limit and len(words) <= max_words:
        return name
    for word in words[:max_words]:
        candidate = f"{kept} {word}".strip()
        if len(candidate) > limit:
            break
        kept = candidate
    return kept.strip(_EDGE) or words[0][:limit]


def seed(*parts: object) -> int:
    """A stable number from the parts (not Python's salted hash)."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def _fill(template: str, name: str) -> str:
    text = template.replace("{n}", name)
    return text[0].upper() + text[1:] if text else text


def _first_sentence(text: str, limit: int = 160) -> str:
    sentence = re.split(r"(?<=[.!?])\s", clean(text), maxsplit=1)[0]
    if not sentence:
        return ""
    sentence = short_name(sentence, limit, max_words=limit)
    return _fill(sentence, "") + ("" if sentence[-1] in ".!?" else ".")


def ideas_for(brief: Brief, count: int) -> list[JSON]:
    """`count` ideas, each from a different angle (at most one per angle)."""
    name = short_name(brief.title)
    start = seed(brief.title, brief.brief, "ideas") % len(ANGLES)
    about = _first_sentence(brief.brief)
    ideas = []
    for i in range(min(count, len(ANGLES))):
        angle, title, _, _ = ANGLES[(start + i) % len(ANGLES)]
        article = "An" if angle[0] in "aeiou" else "A"
        pitch = f"{article} {angle} ad for {name}."
        ideas.append(
            {
                "angle": angle,
                "title": _fill(title, name),
                "pitch": f"{pitch} {about}".strip(),
            }
        )
    return ideas


def _angle(idea: JSON | None, brief: Brief) -> int:
    names = [a[0] for a in ANGLES]
    if idea and idea.get("angle") in names:
        return names.index(str(idea["angle"]))
    return seed(brief.title, brief.brief, "angle") % len(ANGLES)


def _words(text: str) -> int:
    return len(text.split())


def script_for(brief: Brief, idea: JSON | None) -> JSON:
    """A four-line script of 28 to 32 words (12 s spoken), led by the idea's angle."""
    name = short_name(brief.title)
    angle, _, hooks, hook_headline = ANGLES[_angle(idea, brief)]
    parts = [hooks, INTROS, BENEFITS, CTAS]
    s = seed(brief.title, brief.brief, angle, "script")
    order = [[p[(s // (7**k) + j) % len(p)] for j in range(len(p))] for k, p in enumerate(parts)]
    best: tuple[int, list[str]] | None = None
    for combo in itertools.product(*order):
        lines = [_fill(t, name) for t in combo]
        gap = max(MIN_WORDS - _words(" ".join(lines)), _words(" ".join(lines)) - MAX_WORDS, 0)
        if best is None or gap < best[0]:
            best = (gap, lines)
        if gap == 0:
            break
    assert best is not None
    lines = best[1]
    headlines = [
        hook_headline,
        _headline(INTRO_HEADLINES[s % len(INTRO_HEADLINES)], name),
        BENEFIT_HEADLINES[s % len(BENEFIT_HEADLINES)],
        _headline(CTA_HEADLINES[s % len(CTA_HEADLINES)], name),
    ]
    text = " ".join(lines)
    title = _fill(ANGLES[_angle(idea, brief)][1], name)
    return {
        "title": str(idea["title"]) if idea and idea.get("title") else title,
        "text": text,
        "words": _words(text),
        "lines": lines,
        "headlines": headlines,
        "idea": idea,
    }


def _headline(template: str, name: str) -> str:
    text = _fill(template, name)
    return short_name(text, MAX_HEADLINE, max_words=MAX_HEADLINE)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", clean(text)) if s]


def scenes_for(brief: Brief, script: JSON) -> list[JSON]:
    """Four scenes of 3 s: a headline of at most 40 characters and a visual each."""
    name = short_name(brief.title)
    lines = [str(x) for x in script.get("lines") or _sentences(str(script.get("text", "")))]
    headlines = [str(x) for x in script.get("headlines") or []]
    while len(lines) > SCENE_COUNT:  # fold extra sentences into the last scene
        lines[-2:] = [f"{lines[-2]} {lines[-1]}"]
    lines = lines or [f"Meet {name}."]
    s = seed(brief.title, brief.brief, "scenes")
    duration = AD_SECONDS / len(lines)
    scenes = []
    for i, line in enumerate(lines):
        headline = headlines[i] if i < len(headlines) else line.rstrip(".!")
        visual = _fill(VISUALS[(s + i) % len(VISUALS)], name)
        scenes.append(
            {
                "index": i,
                "headline": short_name(headline, MAX_HEADLINE, max_words=MAX_HEADLINE),
                "line": line,
                "visual": f"{visual}.",
                "duration_s": round(duration, 3),
            }
        )
    return scenes


class LocalText:
    """Ideas, script and scenes written offline, the same for the same brief."""

    async def ideas(self, brief: Brief, count: int, call: Call) -> list[JSON]:
        return ideas_for(brief, count)

    async def script(self, brief: Brief, idea: JSON | None, call: Call) -> JSON:
        return script_for(brief, idea)

    async def scenes(self, brief: Brief, script: JSON, call: Call) -> list[JSON]:
        return scenes_for(brief, script)
