"""Ideas, script and scenes written offline from the brief's own words: the same every time."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from ..base import JSON, Brief, Call
from .brief_facts import BriefFacts, clean, phrase, read_brief
from .palette import palette_for

AD_SECONDS = 12
SCENE_COUNT = 4
MIN_WORDS, MAX_WORDS = 28, 32
MAX_HEADLINE = 40
LONG_NAME_WORDS = 3  # a longer name is said once or twice, then "it"

# An angle: (name, idea titles, hooks). A template is used only when the brief fills all its
# slots: {name}, {benefit}, {audience} (people), {occasion} (a "for" that is not people),
# {problem}. A hook is "sentence|headline"; the last template of each list needs nothing.
ANGLES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "problem/solution",
        ("{name} ends {problem}", "{name}: the answer to {problem}", "{name} makes it easy"),
        (
            "Tired of {problem}?|Tired of {problem}?",
            "{audience}, there is a better way.|There is a better way",
            "There is a better way.|There is a better way",
        ),
    ),
    (
        "question",
        ("Looking for {benefit}?", "What if it were this easy?"),
        (
            "Looking for {benefit}?|{benefit}?",
            "{audience}, ready for something new?|Ready for something new?",
            "Ready for something new?|Ready for something new?",
        ),
    ),
    (
        "social proof",
        ("{audience} love {name}", "Why everyone picks {name}"),
        (
            "{audience} are switching to {name}.|{audience} are switching",
            "Everyone is talking about {name}.|Everyone is talking",
        ),
    ),
    (
        "urgency",
        ("{name} is here: do not wait", "{name} is here"),
        (
            "Your {occasion} will never be the same.|Your {occasion}, upgraded",
            "{name} is here, and it is going fast.|It is going fast",
        ),
    ),
    (
        "benefit",
        ("{name}: {benefit}", "{name}, made for you"),
        (
            "Imagine {benefit}.|{benefit}",
            "Imagine {audience} loving every minute.|Made for {audience}",
            "This changes everything.|This changes everything",
        ),
    ),
    (
        "before/after",
        ("Life before and after {name}", "From {problem} to {name}"),
        (
            "Remember {problem}?|Remember {problem}?",
            "Picture your {occasion} before and after.|Before and after",
            "Picture the before and the after.|Before and after",
        ),
    ),
    (
        "how it works",
        ("{name} in three simple steps", "How {name} works"),
        ("Here is how {name} works.|How it works", "Here is how it works.|How it works"),
    ),
    (
        "story",
        ("A story about {problem}", "A day with {name}"),
        (
            "It started with {problem}.|It started with {problem}",
            "Every {occasion} starts with a choice.|Every {occasion} starts here",
            "Every great day starts small.|It starts small",
        ),
    ),
)
INTROS = {
    "lively": "Meet {name}!",
    "calm": "Say hello to {name}.",
    "premium": "Introducing {name}.",
    "friendly": "Meet {name}.",
}
ACTION_VERB = {"can": "Grab", "bottle": "Grab", "cup": "Pour", "phone": "Download"}
PADS = {
    "lively": ("Bright, bold and ready to go.", "Big energy.", "Why wait?", "Let's go."),
    "calm": ("Take a breath.", "Slow down and enjoy the moment.", "Simple and honest.", "Relax."),
    "premium": ("Crafted with care.", "Nothing less will do.", "Made to last.", "Pure quality."),
    "friendly": (
        "Made with care.",
        "You are going to love it.",
        "Why wait?",
        "See for yourself.",
        "It is that simple.",
        "Give it a try.",
        "Easy.",
    ),
}
PACKAGES = {
    "can": "can",
    "bottle": "bottle",
    "cup": "cup",
    "jar": "jar",
    "phone": "phone screen",
    "tube": "tube",
    "box": "box",
}
_SLOT = re.compile(r"\{(\w+)\}")


def seed(*parts: object) -> int:
    """A stable number from the parts (not Python's salted hash)."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def capital(text: str) -> str:
    """`text` with its first letter upper-case (a name such as "iPhone" keeps its own)."""
    return text[0].upper() + text[1:] if text else text


def shorten(text: str, limit: int = MAX_HEADLINE) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    text = clean(text)
    if len(text) <= limit:
        return text
    kept = ""
    for word in text.split():
        if len(f"{kept} {word}".strip()) > limit:
            break
        kept = f"{kept} {word}".strip()
    while kept.split() and kept.split()[-1].lower() in ("and", "with", "the", "a", "of", "for"):
        kept = kept.rsplit(" ", 1)[0] if " " in kept else ""
    return kept.strip(" ,;:-") or text[:limit]


def inline(text: str, name: str = "") -> str:
    """A phrase to set inside a sentence: a capital that only opened the brief's sentence goes."""
    first = text.split(" ", 1)[0]
    if (first[1:].islower() or first == "A") and first not in name.split():
        return first.lower() + text[len(first) :]
    return text


def headline_of(text: str) -> str:
    """A claim as a headline: cut before "with", "that", ... when the whole does not fit."""
    text = capital(text)
    if len(text) > MAX_HEADLINE:
        head = re.split(r"\s(?:with|that|which|and|for|to|so|because)\s", text, maxsplit=1)[0]
        if len(head.split()) >= 2:
            text = head
    return shorten(text)


def _slots(facts: BriefFacts) -> dict[str, str]:
    slots = {"name": facts.name}
    if facts.benefits:
        slots["benefit"] = inline(phrase(facts.benefits[0], 7), facts.name)
    if facts.audience:
        slots["audience" if facts.people else "occasion"] = facts.audience
    if facts.problem:
        slots["problem"] = facts.problem
    return slots


def _fill(template: str, slots: dict[str, str]) -> str | None:
    if any(s not in slots for s in _SLOT.findall(template)):
        return None
    text = _SLOT.sub(lambda m: slots[m.group(1)], template)
    return capital(text)


def _first(templates: Iterable[str], slots: dict[str, str]) -> str:
    for template in templates:
        filled = _fill(template, slots)
        if filled:
            return filled
    raise AssertionError("the last template of each list needs no slot")


def _sentence(text: str, end: str = ".") -> str:
    text = text.strip(" ,;:-")
    return capital(text) + ("" if text[-1:] in ".!?" else end) if text else ""


def _count(texts: Iterable[str]) -> int:
    return sum(len(t.split()) for t in texts)


def _angle(idea: JSON | None, brief: Brief) -> int:
    names = [a[0] for a in ANGLES]
    if idea and idea.get("angle") in names:
        return names.index(str(idea["angle"]))
    return seed(brief.title, brief.brief, "angle") % len(ANGLES)


def _hook(facts: BriefFacts, angle: int) -> tuple[str, str]:
    slots = _slots(facts)
    for template in ANGLES[angle][2]:
        sentence, headline = template.split("|")
        filled = _fill(sentence, slots)
        if filled:
            return filled, headline_of(_fill(headline, slots) or filled)
    raise AssertionError("the last hook of each angle needs no slot")


def _action(facts: BriefFacts, short_name: str) -> str:
    end = "!" if facts.tone == "lively" else "."
    if facts.action:
        return _sentence(facts.action, end)
    return f"{ACTION_VERB.get(facts.kind, 'Get')} {short_name} today{end}"


def _body(facts: BriefFacts, hook: str) -> list[str]:
    """The brief's own claims, most important first (not the one the hook already made)."""
    said = hook.lower()
    body = [_sentence(b) for b in facts.benefits[:3] if phrase(b, 7).lower() not in said]
    if facts.audience:
        body.insert(min(1, len(body)), f"Made for {facts.audience}.")
    return body


def _fit(core: int, body: list[str], pads: Iterable[str]) -> list[str]:
    """Body sentences (then pads) that bring `core` words into MIN_WORDS..MAX_WORDS."""
    chosen: list[str] = []
    for sentence in body:
        room = MAX_WORDS - core - _count(chosen)
        if len(sentence.split()) <= room:
            chosen.append(sentence)
        elif not chosen and room >= 2:  # the first claim is shortened rather than left out
            chosen.append(_sentence(phrase(sentence, room)))
    for pad in pads:
        if core + _count(chosen) >= MIN_WORDS:
            break
        if core + _count(chosen) + len(pad.split()) <= MAX_WORDS:
            chosen.append(pad)
    return [c for c in chosen if c]


def _trim(text: str, words_over: int) -> str:
    kept = text.split()
    return _sentence(phrase(" ".join(kept), max(len(kept) - words_over, 1)))


def script_for(brief: Brief, idea: JSON | None) -> JSON:
    """A four-line script of 28 to 32 words (12 s spoken): hook, name, claims, action."""
    facts = read_brief(brief)
    angle = _angle(idea, brief)
    long_name = len(facts.name.split()) > LONG_NAME_WORDS
    hook, hook_headline = _hook(facts, angle)
    if long_name and facts.name in hook:
        hook, hook_headline = ANGLES[angle][2][-1].replace("{name}", "it").split("|")
        hook, hook_headline = capital(hook), capital(hook_headline)
    intro = INTROS[facts.tone].replace("{name}", facts.name)
    action = _action(facts, "it" if long_name else facts.name)
    pads = dict.fromkeys((*PADS[facts.tone], *PADS["friendly"], f"Only {facts.name}.", "Really."))
    body = _fit(_count((hook, intro, action)), _body(facts, hook), pads)
    over = _count((hook, intro, action, *body)) - MAX_WORDS
    if over > 0:  # a long name and a long call to action: the hook gives way first
        hook = _trim(hook, over)
        over = _count((hook, intro, action, *body)) - MAX_WORDS
        if over > 0:
            action = _trim(action, over)
    lines = [hook, intro, " ".join(body) or _sentence(facts.name), action]
    text = " ".join(lines)
    # The claims' scene shows its first claim: the one the hook did not make already.
    claim = body[0].rstrip(".!?") if body else facts.name
    headlines = [
        shorten(hook_headline),
        shorten(intro.rstrip(".!")) if len(intro) <= MAX_HEADLINE + 1 else shorten(facts.name),
        headline_of(claim),
        shorten(action.rstrip(".!")),
    ]
    title = _first(ANGLES[angle][1], _slots(facts))
    return {
        "title": str(idea["title"]) if idea and idea.get("title") else shorten(title, 120),
        "text": text,
        "words": len(text.split()),
        "lines": lines,
        "headlines": headlines,
        "idea": idea,
    }


def ideas_for(brief: Brief, count: int) -> list[JSON]:
    """`count` ideas, each from a different angle (at most one per angle), in the brief's words."""
    facts = read_brief(brief)
    start = seed(brief.title, brief.brief, "ideas") % len(ANGLES)
    claim = inline(phrase(facts.benefits[0], 7), facts.name) if facts.benefits else None
    ideas = []
    for i in range(min(count, len(ANGLES))):
        index = (start + i) % len(ANGLES)
        angle = ANGLES[index][0]
        hook, _ = _hook(facts, index)
        article = "An" if angle[0] in "aeiou" else "A"
        middle = f", shows {claim}" if claim else ""
        pitch = (
            f"{article} {angle} ad for {facts.name}. It opens on \u201c{hook}\u201d{middle} "
            f"and ends on \u201c{_action(facts, facts.name)}\u201d."
        )
        ideas.append(
            {
                "angle": angle,
                "title": capital(shorten(_first(ANGLES[index][1], _slots(facts)), 120)),
                "pitch": pitch,
            }
        )
    return ideas


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", clean(text)) if s]


def _visual(facts: BriefFacts, colour: str, index: int, count: int) -> str:
    package = PACKAGES[facts.kind]
    name = facts.name
    if index == count - 1:
        return f"The {package} of {name} centred on a {colour} backdrop, the call to action below"
    if index == 0:
        return f"A {colour} backdrop in slow motion, the {package} of {name} sliding into view"
    if index == 1:
        return f"Hero shot of the {package} of {name}, soft light on {colour}, slow push-in"
    about = f", {phrase(facts.benefits[0], 7)}" if facts.benefits else ""
    return f"{capital(name)} up close on {colour}{about}"


def scenes_for(brief: Brief, script: JSON) -> list[JSON]:
    """Four scenes of 3 s: a headline of at most 40 characters and a visual each."""
    facts = read_brief(brief)
    lines = [str(x) for x in script.get("lines") or _sentences(str(script.get("text", "")))]
    headlines = [str(x) for x in script.get("headlines") or []]
    while len(lines) > SCENE_COUNT:  # fold extra sentences into the last scene
        lines[-2:] = [f"{lines[-2]} {lines[-1]}"]
    lines = lines or [f"Meet {facts.name}."]
    named = palette_for(brief, seed(brief.title, "palette")).named
    colour = named[0] if named else "bold gradient"
    duration = AD_SECONDS / len(lines)
    scenes = []
    for i, line in enumerate(lines):
        headline = headlines[i] if i < len(headlines) else line.rstrip(".!")
        visual = _visual(facts, colour, i, len(lines))
        scenes.append(
            {
                "index": i,
                "headline": shorten(headline) or shorten(facts.name),
                "line": line,
                "visual": f"{visual}.",
                "duration_s": round(duration, 3),
                "count": len(lines),
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
