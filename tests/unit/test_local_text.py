"""The offline text generator: filled slots, sized copy, the same for the same brief."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from aytada_es.providers.base import Brief
from aytada_es.providers.local.text import (
    ANGLES,
    MAX_HEADLINE,
    MAX_WORDS,
    MIN_WORDS,
    ideas_for,
    scenes_for,
    script_for,
    short_name,
)

PROJECT = uuid.UUID(int=7)
words = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs", "Cc")), max_size=40
)
titles = st.lists(words, min_size=1, max_size=8).map(" ".join).filter(lambda t: t.strip())
briefs = st.text(max_size=400)
formats = st.sampled_from(("9:16", "16:9", "1:1", "4:5"))


def clean_text(text: str, name: str = "") -> None:
    """No unfilled slot, stray space or doubled punctuation outside the user's own name."""
    if name:  # the user's own name, as written or capitalised at the start of a sentence
        text = text.replace(name, "Name").replace(name[0].upper() + name[1:], "Name")
    assert "{" not in text and "}" not in text
    assert "  " not in text
    assert text == text.strip()
    assert ".." not in text and " ." not in text and " ," not in text


@settings(max_examples=300, deadline=None)
@given(titles, briefs, formats, st.integers(1, len(ANGLES)))
def test_ideas_are_distinct_filled_angles(title: str, text: str, fmt: str, count: int) -> None:
    ideas = ideas_for(Brief(PROJECT, title, fmt, text), count)
    name = short_name(title)
    assert len(ideas) == count
    assert len({i["angle"] for i in ideas}) == count
    for idea in ideas:
        clean_text(idea["title"], name)
        ours = f"{idea['angle']} ad for {name}."
        assert ours in idea["pitch"] and idea["pitch"].startswith(("A ", "An "))
        clean_text(idea["pitch"][: idea["pitch"].index(ours) + len(ours)], name)


@settings(max_examples=300, deadline=None)
@given(titles, briefs, formats, st.integers(0, len(ANGLES)))
def test_script_fits_twelve_seconds_and_scenes_fit_the_screen(
    title: str, text: str, fmt: str, pick: int
) -> None:
    brief = Brief(PROJECT, title, fmt, text)
    idea = ideas_for(brief, len(ANGLES))[pick - 1] if pick else None
    script = script_for(brief, idea)
    name = short_name(title)
    clean_text(script["text"], name)
    assert MIN_WORDS <= len(script["text"].split()) <= MAX_WORDS == 32
    assert script["words"] == len(script["text"].split())
    assert script["text"][0].isupper() or not script["text"][0].isalpha()
    assert script["text"][-1] in ".!?"
    scenes = scenes_for(brief, script)
    assert len(scenes) == 4
    assert sum(s["duration_s"] for s in scenes) == 12
    for i, scene in enumerate(scenes):
        assert scene["index"] == i
        assert 0 < len(scene["headline"]) <= MAX_HEADLINE
        clean_text(scene["headline"], name)
        clean_text(scene["visual"], name)
        clean_text(scene["line"], name)


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


def test_short_name_keeps_whole_words() -> None:
    assert short_name("Acme   Super  Boots") == "Acme Super Boots"
    assert short_name("The Incredibly Long Product Name Of Doom") == "The Incredibly Long"
    assert short_name("X" * 50) == "X" * 22
    assert short_name("{{weird}} name") == "weird name"
    assert short_name("...") == "our product"
