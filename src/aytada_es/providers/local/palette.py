"""The ad's colours, from what the brief names: colour words first, then things of known colour."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

from ..base import Brief
from .brief_facts import clean, words

RGB = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "red": (210, 40, 45),
    "crimson": (190, 20, 60),
    "scarlet": (230, 40, 30),
    "maroon": (120, 25, 40),
    "burgundy": (120, 25, 45),
    "orange": (245, 130, 30),
    "amber": (240, 165, 20),
    "coral": (250, 115, 90),
    "peach": (250, 170, 130),
    "yellow": (245, 205, 40),
    "gold": (215, 170, 50),
    "golden": (215, 170, 50),
    "green": (40, 170, 70),
    "lime": (120, 200, 40),
    "mint": (110, 210, 160),
    "olive": (120, 130, 40),
    "emerald": (20, 160, 100),
    "sage": (140, 170, 120),
    "teal": (20, 140, 140),
    "turquoise": (40, 200, 200),
    "cyan": (30, 190, 220),
    "aqua": (40, 200, 210),
    "blue": (40, 100, 210),
    "navy": (25, 40, 110),
    "indigo": (70, 50, 160),
    "purple": (130, 50, 170),
    "violet": (140, 70, 200),
    "lavender": (165, 140, 215),
    "lilac": (190, 150, 210),
    "magenta": (210, 40, 150),
    "pink": (240, 110, 170),
    "rose": (225, 90, 120),
    "brown": (120, 75, 40),
    "chocolate": (100, 55, 30),
    "tan": (190, 150, 100),
    "beige": (215, 195, 160),
    "ivory": (240, 235, 215),
    "white": (235, 235, 235),
    "silver": (180, 185, 195),
    "grey": (120, 125, 130),
    "gray": (120, 125, 130),
    "charcoal": (55, 60, 65),
    "black": (25, 25, 30),
}
# Things whose colour everyone knows, with how strongly they set the tone (a lime in
# "lime sparkling water" outweighs the water).
THINGS: dict[str, tuple[str, int]] = {
    **dict.fromkeys(("lime", "limes", "kiwi", "matcha", "avocado", "pistachio"), ("lime", 3)),
    **dict.fromkeys(("lemon", "lemons", "banana", "bananas", "pineapple"), ("yellow", 3)),
    **dict.fromkeys(("sunshine", "sunny", "sun", "sunflower", "honey"), ("amber", 2)),
    **dict.fromkeys(
        ("orange", "oranges", "mango", "tangerine", "apricot", "pumpkin"), ("orange", 3)
    ),
    **dict.fromkeys(("sunset", "sunrise", "fire", "flame", "autumn", "fall"), ("orange", 1)),
    **dict.fromkeys(("strawberry", "cherry", "cherries", "raspberry", "tomato"), ("red", 3)),
    **dict.fromkeys(
        ("chili", "chilli", "apple", "apples", "ruby", "love", "valentine"), ("red", 2)
    ),
    **dict.fromkeys(("watermelon", "flamingo", "bubblegum", "blossom"), ("pink", 3)),
    **dict.fromkeys(
        ("grape", "grapes", "plum", "blackcurrant", "eggplant", "amethyst"), ("purple", 3)
    ),
    **dict.fromkeys(("blueberry", "blueberries", "sapphire", "denim", "jeans"), ("blue", 3)),
    **dict.fromkeys(("ocean", "sea", "marine", "wave", "waves", "surf", "sky"), ("blue", 2)),
    **dict.fromkeys(("ice", "icy", "arctic", "frost", "frosty", "winter", "glacier"), ("cyan", 2)),
    **dict.fromkeys(("water", "aqua", "hydration", "rain", "pool"), ("aqua", 1)),
    **dict.fromkeys(("night", "midnight", "space", "galaxy"), ("navy", 2)),
    **dict.fromkeys(("mint", "menthol", "eucalyptus", "spearmint"), ("mint", 3)),
    **dict.fromkeys(
        ("forest", "leaf", "leaves", "garden", "herbal", "herb", "herbs"), ("green", 2)
    ),
    **dict.fromkeys(("eco", "plant", "plants", "vegan", "organic", "spring", "pine"), ("green", 1)),
    **dict.fromkeys(("coffee", "espresso", "latte", "mocha", "cocoa", "cappuccino"), ("brown", 3)),
    **dict.fromkeys(("brew", "chocolate", "cacao", "caramel", "toffee", "cinnamon"), ("brown", 2)),
    **dict.fromkeys(
        ("wood", "wooden", "leather", "earth", "soil", "trail", "hiking"), ("brown", 1)
    ),
    **dict.fromkeys(("sand", "desert", "beach", "oat", "oats", "almond", "vanilla"), ("beige", 1)),
    **dict.fromkeys(("lavender",), ("lavender", 3)),
    **dict.fromkeys(("rose", "roses"), ("rose", 2)),
    **dict.fromkeys(("wine", "merlot", "beetroot"), ("burgundy", 3)),
    **dict.fromkeys(("snow", "milk", "coconut", "pearl", "cotton", "cream"), ("ivory", 1)),
    **dict.fromkeys(("luxury", "premium", "champagne"), ("gold", 1)),
    **dict.fromkeys(("steel", "metal", "chrome", "titanium"), ("silver", 1)),
    **dict.fromkeys(("charcoal", "coal", "graphite"), ("charcoal", 2)),
}
COLOUR_WEIGHT, TITLE_BONUS = 4, 2
# (top, bottom, accent, ink) when the brief names no colour: chosen by the title.
DEFAULTS: tuple[tuple[RGB, RGB, RGB, RGB], ...] = (
    ((35, 20, 90), (190, 40, 120), (255, 190, 60), (255, 255, 255)),
    ((10, 40, 80), (20, 150, 160), (255, 120, 90), (255, 255, 255)),
    ((25, 25, 35), (90, 40, 160), (80, 220, 200), (255, 255, 255)),
    ((30, 30, 80), (60, 120, 230), (255, 160, 200), (255, 255, 255)),
)


@dataclass(frozen=True)
class Palette:
    """A dark and a mid shade of the main colour, a light accent, white ink, a pale backdrop."""

    top: RGB
    bottom: RGB
    accent: RGB
    ink: RGB
    backdrop: RGB
    named: tuple[str, ...] = ()


def named_colours(title: str, brief: str) -> list[str]:
    """The colour names the brief points at, strongest first (title words count double)."""
    scores: dict[str, tuple[int, int]] = {}
    order = 0
    for bonus, text in ((TITLE_BONUS, title), (0, brief)):
        for word in words(clean(text)):
            lowered = word.lower()
            lowered = lowered[:-2] if lowered.endswith(("'s", "\u2019s")) else lowered
            hits = [(lowered, COLOUR_WEIGHT)] if lowered in COLOURS else []
            if lowered in THINGS:
                hits = [(THINGS[lowered][0], max([THINGS[lowered][1]] + [w for _, w in hits]))]
            for colour, weight in hits:
                score, first = scores.get(colour, (0, order))
                scores[colour] = (score + weight + bonus, first)
                order += 1
    return sorted(scores, key=lambda c: (-scores[c][0], scores[c][1]))


def _shade(colour: RGB, lightness: float, saturation: float | None = None) -> RGB:
    h, _, s = colorsys.rgb_to_hls(*(c / 255 for c in colour))
    if saturation is not None:
        s = min(s, saturation)
    r, g, b = colorsys.hls_to_rgb(h, lightness, s)
    return round(r * 255), round(g * 255), round(b * 255)


def _lightness(colour: RGB) -> float:
    return colorsys.rgb_to_hls(*(c / 255 for c in colour))[1]


def palette_for(brief: Brief, seed: int) -> Palette:
    """The brief's palette; a default chosen by `seed` when it names no colour."""
    named = named_colours(brief.title, brief.brief)
    if not named:
        top, bottom, accent, ink = DEFAULTS[seed % len(DEFAULTS)]
        return Palette(top, bottom, accent, ink, _shade(bottom, 0.93))
    main = COLOURS[named[0]]
    light = _lightness(main)
    # Dark and pale colours (coffee, cream) keep their own depth; the others get a rich range.
    top = _shade(main, min(0.16, light * 0.6))
    bottom = _shade(main, min(max(light, 0.3), 0.5))
    second = next((COLOURS[c] for c in named[1:] if COLOURS[c] != main), None)
    accent = _shade(second, 0.72) if second is not None else _shade(main, 0.82, 0.9)
    if named[0] in ("white", "ivory", "beige", "silver"):
        top, bottom = _shade(main, 0.35, 0.3), _shade(main, 0.62, 0.3)
    return Palette(top, bottom, accent, (255, 255, 255), _shade(main, 0.92), tuple(named[:3]))
