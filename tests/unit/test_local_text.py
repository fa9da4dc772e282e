"""The offline text generator: copy in the brief's own words, sized to 12 s, the same every time."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aytada_es.providers.base import Brief
from aytada_es.providers.local.brief_facts import read_brief
from aytada_es.providers.local.text import (
    ANGLES,
    MAX_HEADLINE,
    MAX_WORDS,
    MIN_WORDS,
    ideas_for,
    scenes_for,
    script_for,
)

PROJECT = uuid.UUID(int=7)
words = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs", "Cc")), max_size=40
)
titles = st.lists(words, min_size=1, max_size=8).map(" ".join).filter(lambda t: t.strip())
briefs = st.text(max_size=400)
formats = st.sampled_from(("9:16", "16:9", "1:1", "4:5"))
# What the first offline ads said whatever the brief was (issue 15).
OLD_GENERIC = (
    "without the hassle",
    "no learning curve",
    "Thousands of people",
    "saves you time every single day",
    "hard to put down",
    "Get more done",
)
LIME = Brief(
    PROJECT,
    "Fizzy Lime Sparkling Water",
    "9:16",
    "A zero-sugar sparkling water with real lime juice for health-conscious young adults. "
    "Fun and energetic. Grab a can at your local store.",
)


def clean_text(text: str, name: str = "") -> None:
    """No unfilled slot, stray space or doubled punctuation outside the user's own name."""
    if name:
        text = text.replace(name, "Name").replace(name[0].upper() + name[1:], "Name")
    assert "{" not in text and "}" not in text
    assert "  " not in text
    assert text == text.strip()
    assert ".." not in text and " ." not in text and " ," not in text


@settings(max_examples=300, deadline=None)
@given(titles, briefs, formats, st.integers(1, len(ANGLES)))
def test_ideas_are_distinct_filled_angles(title: str, text: str, fmt: str, count: int) -> None:
    brief = Brief(PROJECT, title, fmt, text)
    ideas = ideas_for(brief, count)
    name = read_brief(brief).name
    assert len(ideas) == count
    assert len({i["angle"] for i in ideas}) == count
    for idea in ideas:
        assert "{" not in idea["title"] and "}" not in idea["title"]
        ours = f"{idea['angle']} ad for {name}."
        assert ours in idea["pitch"] and idea["pitch"].startswith(("A ", "An "))


@settings(max_examples=300, deadline=None)
@given(titles, briefs, formats, st.integers(0, len(ANGLES)))
def test_script_fits_twelve_seconds_and_scenes_fit_the_screen(
    title: str, text: str, fmt: str, pick: int
) -> None:
    brief = Brief(PROJECT, title, fmt, text)
    idea = ideas_for(brief, len(ANGLES))[pick - 1] if pick else None
    script = script_for(brief, idea)
    name = read_brief(brief).name
    clean_text(script["text"], name)
    assert MIN_WORDS <= len(script["text"].split()) <= MAX_WORDS == 32
    assert script["words"] == len(script["text"].split())
    assert script["text"][-1] in ".!?"
    scenes = scenes_for(brief, script)
    assert len(scenes) == 4
    assert sum(s["duration_s"] for s in scenes) == 12
    for i, scene in enumerate(scenes):
        assert scene["index"] == i and scene["count"] == 4
        assert 0 < len(scene["headline"]) <= MAX_HEADLINE
        assert "{" not in scene["headline"] + scene["visual"] + scene["line"]


@settings(max_examples=100, deadline=None)
@given(titles, briefs)
def test_same_brief_same_text(title: str, text: str) -> None:
    first, second = Brief(PROJECT, title, "9:16", text), Brief(uuid.uuid4(), title, "1:1", text)
    assert ideas_for(first, 3) == ideas_for(second, 3)
    assert script_for(first, None) == script_for(second, None)
    assert scenes_for(first, script_for(first, None)) == scenes_for(
        second, script_for(second, None)
    )


def test_scenes_from_a_foreign_script_fold_into_four() -> None:
    brief = Brief(PROJECT, "Acme Boots", "9:16", "")
    script = {"text": "One. Two two. Three three three. Four. Five five. Six."}
    scenes = scenes_for(brief, script)
    assert [s["line"] for s in scenes][:3] == ["One.", "Two two.", "Three three three."]
    assert scenes[3]["line"] == "Four. Five five. Six."
    assert all(len(s["headline"]) <= MAX_HEADLINE for s in scenes)


@pytest.mark.parametrize("pick", range(len(ANGLES) + 1))
def test_every_angle_speaks_of_this_brief(pick: int) -> None:
    idea = ideas_for(LIME, len(ANGLES))[pick - 1] if pick else None
    script = script_for(LIME, idea)
    text = script["text"]
    assert "Fizzy Lime Sparkling Water" in text  # the whole name, never cut short
    assert "health-conscious young adults" in text or "zero-sugar sparkling water" in text
    assert script["lines"][-1] == "Grab a can at your local store!"  # the brief's own action
    assert not [p for p in OLD_GENERIC if p.lower() in text.lower()]
    assert any("Fizzy Lime Sparkling Water" in h for h in script["headlines"])


@pytest.mark.parametrize(
    ("title", "text", "wanted"),
    [
        (
            "Acme Trail Boots",
            "Waterproof boots for weekends.",
            ("Acme Trail Boots", "Waterproof boots", "weekends"),
        ),
        (
            "Sunrise Cold Brew",
            "Smooth cold brew coffee, ready in the fridge. Perfect for early risers.",
            ("Sunrise Cold Brew", "Smooth cold brew coffee", "early risers"),
        ),
        (
            "Q3 campaign",
            "Introducing Nimbus Notes, the note app for students. Download it free today!",
            ("Nimbus Notes", "students", "Download it free today"),
        ),
        (
            "Launch",
            "Benefit: never lose a sock again\nAudience: busy parents\nCTA: Order at sockly.com",
            ("never lose a sock again", "busy parents", "Order at sockly.com"),
        ),
    ],
)
def test_copy_carries_the_briefs_benefit_audience_and_action(
    title: str, text: str, wanted: tuple[str, ...]
) -> None:
    brief = Brief(PROJECT, title, "9:16", text)
    for idea in (None, *ideas_for(brief, 3)):
        script = script_for(brief, idea)
        copy = script["text"]
        for words in wanted:
            assert words.lower() in copy.lower(), (words, copy)
        assert not [p for p in OLD_GENERIC if p.lower() in copy.lower()]
        assert re.search(r"\b(today|now|order|download|grab|get|shop)\b", script["lines"][-1], re.I)


def test_a_brief_without_an_action_gets_one_for_its_kind_of_product() -> None:
    can = script_for(Brief(PROJECT, "Lime Fizz", "9:16", "Sparkling lime soda."), None)
    app = script_for(Brief(PROJECT, "Nimbus Notes", "9:16", "A note app for students."), None)
    assert can["lines"][-1] == "Grab Lime Fizz today."
    assert app["lines"][-1] == "Download Nimbus Notes today."
