"""What an offline ad needs from a brief, read with plain deterministic rules (no model).

`read_brief` finds the product's whole name (quoted, after "introducing"/"meet"/"for", or the
title without words such as "ad" or "promo"), the benefits and the audience in the brief's own
words, its call to action, its tone and what kind of package the product comes in. A brief may
also label its parts ("Audience: ...", "Tone: ...", "Call to action: ..."); a label wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..base import Brief


def _listed(text: str) -> list[str]:
    """The words of a vocabulary written as one string."""
    return text.split()


FALLBACK_NAME = "our product"
MAX_NAME_CHARS, MAX_NAME_WORDS = 40, 7
MAX_PHRASE_WORDS = 9
_UNSAFE = re.compile(r"[{}\x00-\x1f\x7f]")
_EDGE = " .,;:?!'\"-\u2013\u2014\u201c\u201d\u2018\u2019\u00ab\u00bb()[]"
_WORD = re.compile(r"[^\W_](?:[\w'\u2019&%+/.-]*[^\W_%])?%?|\d+%?")
_QUOTED = re.compile(
    r"[\u201c\u00ab\"]([^\u201d\u00bb\"\n]{2,60})[\u201d\u00bb\"]|(?<!\w)['\u2018]([^'\u2019\n]{2,60})['\u2019](?!\w)"
)
# A run of capitalised words (or numbers), joined by a few small words: a product's name.
_CAP = r"[A-Z0-9][\w'\u2019&+.-]*"
_NAME_RUN = re.compile(rf"{_CAP}(?:\s+(?:(?:of|and|&|the|de|by|for|with|n')\s+)?{_CAP})*")
_TITLE_MARKERS = re.compile(
    r"\b(?:introducing|meet|presenting|say hello to|launch(?:ing)? of|launch:|"
    r"ad for|advert for|video for|promo for|commercial for|campaign for|spot for|for)\s+",
    re.IGNORECASE,
)
_BRIEF_MARKERS = re.compile(
    r"\b(?:introducing|meet|presenting|say hello to|launch(?:ing)? of)\s+", re.IGNORECASE
)
AD_WORDS = frozenset(
    _listed(
        "ad ads advert advertisement video videos promo promotion commercial spot "
        "campaign teaser launch reel trailer clip draft test new my our the a an summer "
        "spring autumn fall winter holiday q1 q2 q3 q4 v1 v2 tiktok instagram youtube "
        "social story stories sale deal deals offer discount"
    )
)
LABELS = {
    "product": "name",
    "product name": "name",
    "name": "name",
    "brand": "name",
    "audience": "audience",
    "target audience": "audience",
    "target": "audience",
    "for": "audience",
    "who": "audience",
    "tone": "tone",
    "mood": "tone",
    "style": "tone",
    "voice": "tone",
    "cta": "action",
    "call to action": "action",
    "action": "action",
    "benefit": "benefit",
    "benefits": "benefit",
    "key benefit": "benefit",
    "key message": "benefit",
    "message": "benefit",
    "usp": "benefit",
    "offer": "benefit",
    "problem": "problem",
    "pain point": "problem",
}
_LABEL = re.compile(
    r"^\s*(" + "|".join(sorted(LABELS, key=len, reverse=True)) + r")(?:\s*[:=]|\s+[-\u2013]\s)\s*",
    re.IGNORECASE,
)
ACTION_VERBS = _listed(
    "shop buy order try get grab visit download sign join discover find pre-order "
    "preorder subscribe start call claim pick taste explore learn install reserve "
    "book sip enjoy register save upgrade switch treat"
)
# Sentence openers that speak to the ad's maker, not to the viewer.
DIRECTIONS = re.compile(
    r"^(?:make it|make the|keep it|use|show|we want|we need|we'd like|the ad|this ad|the video|"
    r"this video|it should|please|avoid|include|mention|aim for|go for|feel)\b",
    re.IGNORECASE,
)
EMPHASIS = re.compile(
    r"^(?:highlight|emphasi[sz]e|focus on|stress|feature|showcase|push|sell)\s+(?:the\s+|our\s+)?",
    re.IGNORECASE,
)
PROBLEM = re.compile(
    r"\b(?:tired of|sick of|no more|say goodbye to|instead of|hate|fed up with)\s+([^.,;:!?]+)",
    re.IGNORECASE,
)
AUDIENCE = re.compile(
    r"\b(?:aimed at|targeted at|targeting|perfect for|ideal for|made for|designed for|built for|"
    r"great for|for)\s+([^.,;:!?()]+)",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"\s+(?:who|that|which|to|because|so|while|when|but|with|by|in|on)\s")
NOT_AUDIENCE = frozenset(
    _listed(
        "you your it its the a an this that those these less more free only just sale "
        "everyone anyone"
    )
)
OCCASIONS = frozenset(
    _listed(
        "weekend weekends morning mornings day days night nights summer winter spring "
        "autumn holiday holidays trips trip travel work office home school gym parties "
        "party adventures evenings life hikes hiking trails"
    )
)
TONES = {
    "lively": _listed(
        "energetic fun playful upbeat bold exciting lively vibrant punchy fizzy zesty "
        "youthful cheeky loud dynamic"
    ),
    "calm": _listed(
        "calm relaxing relaxed gentle soothing peaceful natural mindful cozy cosy warm "
        "soft quiet serene slow"
    ),
    "premium": _listed(
        "premium luxury luxurious elegant sophisticated refined exclusive classy timeless "
        "crafted artisan"
    ),
}
TONE_WORDS = frozenset(w for cues in TONES.values() for w in cues) | {"and", "very", "but", "yet"}
# Package shapes, by the first word of the title (then the brief) that names one.
KINDS = {
    "can": _listed("soda cola sparkling fizzy seltzer beer cider can tonic energy"),
    "bottle": _listed(
        "water juice drink drinks beverage kombucha smoothie wine oil sauce shampoo "
        "lotion perfume serum brew lemonade bottle milk syrup vodka gin"
    ),
    "cup": _listed("coffee tea latte espresso cappuccino matcha cocoa chai cafe café"),
    "jar": _listed("cream honey jam balm moisturiser moisturizer candle jar butter spread salsa"),
    "phone": _listed(
        "app apps software platform saas website online digital subscription service tool "
        "tracker game"
    ),
    "tube": _listed("toothpaste sunscreen gel tube lipstick mascara"),
    "box": _listed(
        "boots boot shoes shoe sneakers trainers box kit toy gift cereal chocolate snack "
        "bar cookies"
    ),
}
STOP_TAIL = frozenset(_listed("and or with the a an of for to in on at by our your its that which"))


@dataclass(frozen=True)
class BriefFacts:
    """The brief, read: its product, what it does, for whom, how it sounds, what to do next."""

    name: str
    benefits: tuple[str, ...]
    audience: str | None
    action: str | None
    problem: str | None
    tone: str
    kind: str
    text: str

    @property
    def people(self) -> bool:
        """Whether the audience names people (not an occasion such as "weekends")."""
        return bool(self.audience) and words(self.audience or "")[-1].lower() not in OCCASIONS


def clean(text: str) -> str:
    """User text without braces or control characters, its whitespace collapsed."""
    return " ".join(_UNSAFE.sub(" ", text).split())


def words(text: str) -> list[str]:
    """The words of `text`, its punctuation dropped (a word keeps inner ' & - / . and %)."""
    return _WORD.findall(text)


def phrase(text: str, limit: int = MAX_PHRASE_WORDS) -> str:
    """`text` as a clean run of at most `limit` words, without a dangling "and" or "the"."""
    kept = words(text)[:limit]
    while kept and kept[-1].lower() in STOP_TAIL:
        kept.pop()
    return " ".join(kept)


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+|;\s*", text)
    return [p.strip() for p in parts if p.strip()]


def _fit_name(name: str) -> str:
    name = clean(name).strip(_EDGE)
    if len(name) <= MAX_NAME_CHARS and len(name.split()) <= MAX_NAME_WORDS:
        return name
    run = _NAME_RUN.search(name)  # the first capitalised run inside a long title
    if run and 1 < len(run.group(0)) <= MAX_NAME_CHARS and run.group(0) != name:
        return _fit_name(run.group(0))
    kept = ""
    for word in name.split()[:MAX_NAME_WORDS]:
        if len(f"{kept} {word}".strip()) > MAX_NAME_CHARS:
            break
        kept = f"{kept} {word}".strip()
    while " " in kept and kept.rsplit(" ", 1)[1].lower() in STOP_TAIL:
        kept = kept.rsplit(" ", 1)[0]
    return kept.strip(_EDGE) or name[:MAX_NAME_CHARS].strip(_EDGE)


def _quoted(text: str) -> str | None:
    for found in _QUOTED.finditer(text):
        name = (found.group(1) or found.group(2) or "").strip(_EDGE)
        if words(name):
            return name
    return None


def _after_marker(text: str, markers: re.Pattern[str], lead: bool = False) -> str | None:
    """The name after "introducing", "for", ...; with `lead`, only after ad words ("Promo for")."""
    for found in markers.finditer(text):
        if lead and any(w.lower() not in AD_WORDS for w in words(text[: found.start()])):
            continue
        run = _NAME_RUN.match(text, found.end())
        if run and words(run.group(0)):
            return run.group(0).strip(_EDGE)
    return None


def _without_ad_words(title: str) -> str:
    parts = [
        p.strip(_EDGE) for p in re.split(r"\s[-\u2013\u2014|:]\s|:\s|\|", title) if p.strip(_EDGE)
    ]
    named = [p for p in parts if any(w.lower() not in AD_WORDS for w in words(p))]
    if len(named) > 1:  # "Summer promo: Fizzy Lime" keeps the part without ad words
        named = [
            p
            for p in named
            if not any(w.lower() in AD_WORDS - {"the", "a", "an"} for w in words(p))
        ] or named
    text = named[0] if named else ""
    kept = text.split()
    while kept and kept[-1].lower().strip(_EDGE) in AD_WORDS:
        kept.pop()
    while kept and kept[0].lower().strip(_EDGE) in AD_WORDS - {"the", "new", "a", "an"}:
        kept.pop(0)
    return " ".join(kept).strip(_EDGE)


def product_name(title: str, brief: str) -> str:
    """The product's whole name, from the title first and the brief where the title has none."""
    labelled = _labelled(brief).get("name")
    title, brief = clean(title), clean(brief)
    name = (
        labelled
        or _quoted(title)
        or _after_marker(title, _TITLE_MARKERS, lead=True)
        or _without_ad_words(title)
        or _quoted(brief)
        or _after_marker(brief, _BRIEF_MARKERS)
        or title.strip(_EDGE)
    )
    if (
        name and not labelled
    ):  # "Fizzy Lime" in the title, "Fizzy Lime Sparkling Water" in the brief
        longer = _quoted(brief) or _after_marker(brief, _BRIEF_MARKERS)
        if longer and longer.lower().startswith(name.lower()) and longer != name:
            name = longer
    return _fit_name(name) if words(name or "") else FALLBACK_NAME


def _labelled(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in re.split(r"\n+|(?<=[.!?])\s+(?=[A-Z][\w ]{1,20}:)", text):
        match = _LABEL.match(line)
        if match:
            key = LABELS[match.group(1).lower()]
            value = line[match.end() :].strip().rstrip(".!").strip(_EDGE)
            if value and key not in found:
                found[key] = value
    return found


def _audience(text: str, name: str) -> str | None:
    for found in AUDIENCE.finditer(text):
        candidate = _CLAUSE_END.split(f"{found.group(1)} ", maxsplit=1)[0]
        kept = phrase(candidate, 6)
        first = kept.split()[0].lower() if kept else ""
        if kept[:1].isalpha() and first not in NOT_AUDIENCE and kept.lower() not in name.lower():
            return kept
    return None


def _action(sentences: list[str]) -> str | None:
    for sentence in sentences:
        first = words(sentence)[:1]
        if first and first[0].lower() in ACTION_VERBS:
            return phrase(sentence, 10)
        available = re.search(r"\bavailable (?:at|in|on|from)\s+([^.,;!?]+)", sentence, re.I)
        if available:
            return "Find it at " + phrase(available.group(1), 6)
    return None


def _benefits(sentences: list[str], name: str, skip: set[str]) -> list[str]:
    found: list[str] = []
    name_words = [w.lower() for w in words(name)]
    for sentence in sentences:
        if _LABEL.match(sentence) or DIRECTIONS.match(sentence):
            continue
        first = words(sentence)[:1]
        if first and first[0].lower() in ACTION_VERBS:
            continue
        sentence = EMPHASIS.sub("", _BRIEF_MARKERS.sub("", sentence))
        for clause in re.split(r",\s*|\s+[-\u2013\u2014]\s+|:\s+|\s+but\s+", sentence):
            clause = PROBLEM.sub("", clause)
            clause = re.split(
                r"\s+(?:aimed at|targeted at|targeting|perfect for|ideal for|made for|"
                r"designed for|built for|great for|for)\s+",
                clause,
                maxsplit=1,
                flags=re.I,
            )[0]
            tokens = words(clause)
            lowered = [t.lower() for t in tokens]
            if lowered[: len(name_words)] == name_words:  # "Fizzy Lime is a ..." -> "a ..."
                tokens = tokens[len(name_words) :]
                if tokens and tokens[0].lower() in ("is", "are", "has", "was"):
                    tokens = tokens[1:]
            elif lowered[:1] in (["it"], ["they"], ["this"]) and len(tokens) > 2:
                tokens = tokens[1:] if tokens[1].lower() not in ("is", "are") else tokens[2:]
            text = phrase(" ".join(tokens))
            if (
                len(text.split()) >= 2
                and text.lower() not in skip
                and not {w.lower() for w in words(text)} <= TONE_WORDS
            ):
                found.append(text)
                skip.add(text.lower())
    return found


def _tone(text: str) -> str:
    lowered = {w.lower() for w in words(text)}
    for tone, cues in TONES.items():
        if lowered & set(cues):
            return tone
    return "friendly"


def _kind(title: str, brief: str) -> str:
    for text in (title, brief):
        for word in words(text):
            for kind, cues in KINDS.items():
                if word.lower() in cues:
                    return kind
    return "box"


@lru_cache(maxsize=256)
def _read(title: str, brief: str) -> BriefFacts:
    text = clean(brief)
    labels = _labelled(brief)
    name = product_name(title, brief)
    sentences = _sentences(clean(brief.replace("\n", ". ")) if "\n" in brief else text)
    problem = labels.get("problem")
    if problem is None:
        found = PROBLEM.search(text)
        problem = found.group(1) if found else None
    action = labels.get("action") or _action(sentences)
    benefits = [phrase(labels["benefit"])] if "benefit" in labels else []
    skip = {b.lower() for b in benefits} | {name.lower()}
    benefits += _benefits(sentences, name, skip)
    return BriefFacts(
        name=name,
        benefits=tuple(b for b in benefits if b),
        audience=phrase(labels["audience"], 6) if "audience" in labels else _audience(text, name),
        action=phrase(action, 10) if action else None,
        problem=phrase(problem, 6) if problem else None,
        tone=_tone(labels.get("tone", "") or text),
        kind=_kind(clean(title), text),
        text=text,
    )


def read_brief(brief: Brief) -> BriefFacts:
    """The facts of `brief` (the same brief always reads the same)."""
    return _read(brief.title, brief.brief)
