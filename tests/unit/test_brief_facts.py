"""Reading a brief offline: the whole product name, who it is for, what it does, its colours."""

from __future__ import annotations

import colorsys
import uuid

import pytest

from aytada_es.providers.base import Brief
from aytada_es.providers.local.brief_facts import product_name, read_brief
from aytada_es.providers.local.palette import named_colours, palette_for

PROJECT = uuid.UUID(int=3)


@pytest.mark.parametrize(
    ("title", "brief", "name"),
    [
        ("Fizzy Lime Sparkling Water", "", "Fizzy Lime Sparkling Water"),
        (
            "The Incredibly Long Product Name Of Doom",
            "",
            "The Incredibly Long Product Name Of Doom",
        ),
        ("A Very Long Title For A Product That Goes On", "", "A Very Long Title For A Product"),
        ("Acme Trail Boots ad", "Waterproof boots.", "Acme Trail Boots"),
        ('Launch video for "Ocean Breeze Shampoo"', "", "Ocean Breeze Shampoo"),
        ("Spring campaign", "Meet \u201cBlue Harbour Gin\u201d, a dry gin.", "Blue Harbour Gin"),
        ("Summer ad for Fizzy Lime Sparkling Water", "", "Fizzy Lime Sparkling Water"),
        ("Q3 campaign", "Introducing Nimbus Notes, the note app.", "Nimbus Notes"),
        (
            "Summer promo: Fizzy Lime",
            "Introducing Fizzy Lime Sparkling Water.",
            "Fizzy Lime Sparkling Water",
        ),
        ("Sunrise Cold Brew \u2013 TikTok teaser", "", "Sunrise Cold Brew"),
        ("Ad", "Product: Sockly Smart Socks\nAudience: runners", "Sockly Smart Socks"),
        ("Black Friday sale \u2013 Acme Boots", "", "Acme Boots"),
        ("Launch of Nimbus Notes 2.0", "", "Nimbus Notes 2.0"),
        ("Black Harbour Gin", "", "Black Harbour Gin"),
        ("{{weird}} name", "", "weird name"),
        ("...", "", "our product"),
    ],
)
def test_the_product_name_is_whole(title: str, brief: str, name: str) -> None:
    assert product_name(title, brief) == name


def test_a_brief_is_read_into_its_parts() -> None:
    facts = read_brief(
        Brief(
            PROJECT,
            "Sunrise Cold Brew",
            "9:16",
            "Smooth cold brew coffee, ready in the fridge. Tired of bitter instant coffee? "
            "Perfect for early risers. Tone: calm. Call to action: Order at sunrise.coffee",
        )
    )
    assert facts.benefits[:2] == ("Smooth cold brew coffee", "ready in the fridge")
    assert (facts.audience, facts.problem) == ("early risers", "bitter instant coffee")
    assert (facts.action, facts.tone, facts.kind) == ("Order at sunrise.coffee", "calm", "bottle")


def test_a_price_or_a_pronoun_is_no_audience() -> None:
    for text in ("Yours for 20% off.", "Made for you.", "Great for the first time."):
        assert read_brief(Brief(PROJECT, "Acme", "9:16", text)).audience is None


def test_words_for_the_maker_are_not_copy() -> None:
    facts = read_brief(
        Brief(
            PROJECT, "Nimbus Notes", "9:16", "Make it fun. Highlight the offline sync. Energetic."
        )
    )
    assert facts.benefits == ("offline sync",)
    assert facts.tone == "lively"


def hue_of(rgb: tuple[int, int, int]) -> float:
    return colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[0] * 360


@pytest.mark.parametrize(
    ("title", "brief", "first", "hues"),
    [
        ("Fizzy Lime Sparkling Water", "", "lime", (70, 150)),
        ("Sunrise Cold Brew", "Smooth cold brew coffee.", "brown", (15, 45)),
        ("Lemon Drop", "Fresh lemonade.", "yellow", (40, 65)),
        ("Deep Blue", "An ocean of calm.", "blue", (200, 240)),
        ("Acme", "Our new red sneakers with a lime sole.", "red", (345, 360)),
    ],
)
def test_the_palette_follows_what_the_brief_names(
    title: str, brief: str, first: str, hues: tuple[int, int]
) -> None:
    assert named_colours(title, brief)[0] == first
    colours = palette_for(Brief(PROJECT, title, "9:16", brief), 0)
    for shade in (colours.top, colours.bottom):
        assert hues[0] <= hue_of(shade) <= hues[1] or (hues[1] == 360 and hue_of(shade) < 10)


def test_a_brief_that_names_no_colour_gets_a_default_by_its_title() -> None:
    one = palette_for(Brief(PROJECT, "Nimbus Notes", "9:16", "A note app."), 1)
    assert one.named == () and one == palette_for(Brief(PROJECT, "Nimbus Notes", "1:1", ""), 1)
