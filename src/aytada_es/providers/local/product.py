"""The product drawn as its package (can, bottle, cup, ...) and the pictures it stands in."""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw, ImageFilter

from ..base import Brief
from .brief_facts import BriefFacts, read_brief, words
from .palette import COLOURS, Palette, palette_for
from .text import seed
from .typesetting import RGB, block, fit_text, gradient

# Height over width of each package.
SHAPES = {
    "can": 1.75,
    "bottle": 2.3,
    "cup": 1.3,
    "jar": 1.05,
    "tube": 2.3,
    "phone": 2.0,
    "box": 1.3,
}
CITRUS = {"lime": "lime", "limes": "lime", "lemon": "yellow", "lemons": "yellow"}
CITRUS |= {"orange": "orange", "oranges": "orange", "grapefruit": "pink", "citrus": "yellow"}
BUBBLES = frozenset(
    ["fizzy", "sparkling", "soda", "bubbles", "bubbly", "water", "seltzer", "cola", "tonic", "fizz"]
)
BEANS = frozenset(
    ["coffee", "espresso", "cocoa", "latte", "mocha", "brew", "cacao", "beans", "cappuccino"]
)
LEAVES = frozenset(
    [
        "mint",
        "tea",
        "herbal",
        "herb",
        "herbs",
        "leaf",
        "leaves",
        "forest",
        "garden",
        "eco",
        "plant",
        "plants",
        "natural",
        "organic",
        "matcha",
        "vegan",
        "green",
        "fresh",
    ]
)
# Where the product stands in each scene: (centre x, centre y, height) as parts of the frame.
STAGING = ((0.66, 0.7, 0.42), (0.5, 0.64, 0.5), (0.3, 0.66, 0.44), (0.5, 0.63, 0.4))
WHITE: RGB = (255, 255, 255)


def palette(brief: Brief) -> Palette:
    """The project's colours (from what its brief names)."""
    return palette_for(brief, seed(brief.title, "palette"))


def _profile(values: list[int], size: tuple[int, int]) -> Image.Image:
    line = Image.new("L", (len(values), 1))
    line.putdata(values)
    return line.resize(size, Image.Resampling.BILINEAR)


def _round(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Light from the left: a highlight and darker edges, as on a cylinder."""
    steps = [i / 63 for i in range(64)]
    dark = [int(120 * (abs(x - 0.36) / (0.64 if x > 0.36 else 0.36)) ** 2) for x in steps]
    light = [int(110 * max(0.0, 1 - abs(x - 0.24) / 0.07)) for x in steps]
    shade = Image.new("RGBA", image.size, (0, 0, 0, 0))
    black, white = (
        Image.new("RGBA", image.size, (0, 0, 0, 255)),
        Image.new("RGBA", image.size, WHITE),
    )
    shade.paste(black, (0, 0), _profile(dark, image.size))
    shade.paste(white, (0, 0), _profile(light, image.size))
    shade.putalpha(Image.composite(shade.getchannel("A"), Image.new("L", image.size, 0), mask))
    return Image.alpha_composite(image, shade)


def _label(draw: ImageDraw.ImageDraw, name: str, box: tuple[int, int, int, int], ink: RGB) -> None:
    x0, y0, x1, y1 = box
    size, lines = fit_text(name.upper(), int((x1 - x0) * 0.86), max((y1 - y0) // 4, 8), 4)
    line_height = int(size * 1.18)
    while len(lines) * line_height > (y1 - y0) * 0.9 and size > 10:
        size, lines = fit_text(name.upper(), int((x1 - x0) * 0.86), int(size * 0.85), 4)
        line_height = int(size * 1.18)
    block(draw, lines, size, ((x0 + x1) // 2, (y0 + y1) // 2), ink)


def package(facts: BriefFacts, colours: Palette, height: int) -> Image.Image:
    """The product's package, `height` pixels tall (48 at least), on a transparent ground."""
    height = max(height, 48)
    width = max(int(height / SHAPES[facts.kind]), 8)
    w, h = width, height
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    body = gradient((w, h), colours.bottom, colours.top).convert("RGBA")
    mask = Image.new("L", (w, h), 0)
    shape = ImageDraw.Draw(mask)
    pale, deep, accent = colours.backdrop, colours.top, colours.accent
    kind = facts.kind
    if kind == "can":
        shape.rounded_rectangle((0, int(h * 0.05), w - 1, int(h * 0.96)), radius=w // 10, fill=255)
        image.paste(body, (0, 0), mask)
        draw = ImageDraw.Draw(image)
        for y0, y1 in ((0, int(h * 0.07)), (int(h * 0.93), h - 1)):
            draw.rounded_rectangle(
                (w // 25, y0, w - w // 25, y1), radius=w // 12, fill=(200, 204, 210)
            )
        _label(draw, facts.name, (0, int(h * 0.22), w, int(h * 0.7)), WHITE)
        draw.rectangle((w // 5, int(h * 0.74), w - w // 5, int(h * 0.75) + 2), fill=accent)
    elif kind in ("bottle", "jar"):
        neck = (0.38, 0.62) if kind == "bottle" else (0.1, 0.9)
        cap_h = 0.1 if kind == "bottle" else 0.18
        shape.rounded_rectangle(
            (int(w * neck[0]), int(h * cap_h * 0.8), int(w * neck[1]), int(h * 0.3)),
            radius=4,
            fill=255,
        )
        shoulder = 0.2 if kind == "bottle" else cap_h
        shape.rounded_rectangle((0, int(h * shoulder), w - 1, h - 1), radius=w // 6, fill=255)
        image.paste(body, (0, 0), mask)
        draw = ImageDraw.Draw(image)
        cap = (int(w * (neck[0] - 0.03)), 0, int(w * (neck[1] + 0.03)), int(h * cap_h))
        draw.rounded_rectangle(cap, radius=max(w // 30, 2), fill=accent)
        label = (int(w * 0.04), int(h * 0.42), int(w * 0.96), int(h * 0.84))
        draw.rectangle(label, fill=pale)
        _label(draw, facts.name, label, deep)
    elif kind == "cup":
        shape.polygon(
            [
                (int(w * 0.05), int(h * 0.1)),
                (int(w * 0.95), int(h * 0.1)),
                (int(w * 0.8), h - 1),
                (int(w * 0.2), h - 1),
            ],
            fill=255,
        )
        image.paste(Image.new("RGBA", (w, h), (*pale, 255)), (0, 0), mask)
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle((0, 0, w - 1, int(h * 0.13)), radius=w // 20, fill=deep)
        sleeve = Image.new("L", (w, h), 0)
        ImageDraw.Draw(sleeve).rectangle((0, int(h * 0.34), w, int(h * 0.74)), fill=255)
        image.paste(body, (0, 0), Image.composite(sleeve, Image.new("L", (w, h), 0), mask))
        _label(
            draw, facts.name, (int(w * 0.14), int(h * 0.36), int(w * 0.86), int(h * 0.72)), WHITE
        )
    elif kind == "tube":
        shape.polygon(
            [
                (int(w * 0.06), int(h * 0.04)),
                (int(w * 0.94), int(h * 0.04)),
                (int(w * 0.72), int(h * 0.88)),
                (int(w * 0.28), int(h * 0.88)),
            ],
            fill=255,
        )
        image.paste(body, (0, 0), mask)
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, w - 1, int(h * 0.05)), fill=deep)
        draw.rounded_rectangle(
            (int(w * 0.3), int(h * 0.86), int(w * 0.7), h - 1), radius=6, fill=accent
        )
        _label(draw, facts.name, (int(w * 0.2), int(h * 0.2), int(w * 0.8), int(h * 0.6)), WHITE)
    elif kind == "phone":
        shape.rounded_rectangle((0, 0, w - 1, h - 1), radius=w // 8, fill=255)
        image.paste(Image.new("RGBA", (w, h), (22, 24, 30, 255)), (0, 0), mask)
        screen = (int(w * 0.06), int(h * 0.03), int(w * 0.94), int(h * 0.97))
        sw, sh = screen[2] - screen[0], screen[3] - screen[1]
        image.paste(gradient((sw, sh), colours.top, colours.bottom).convert("RGBA"), screen[:2])
        draw = ImageDraw.Draw(image)
        _label(draw, facts.name, (screen[0], int(h * 0.08), screen[2], int(h * 0.3)), WHITE)
        for i in range(3):
            y = int(h * (0.36 + 0.14 * i))
            card = (screen[0] + sw // 10, y, screen[2] - sw // 10, y + int(h * 0.1))
            draw.rounded_rectangle(card, radius=max(w // 30, 2), fill=(255, 255, 255, 200))
            dot, inset = int(h * 0.1), max(int(h * 0.015), 1)
            draw.ellipse(
                (card[0] + inset, y + inset, card[0] + dot - inset, y + dot - inset), fill=accent
            )
        draw.rounded_rectangle(
            (screen[0] + sw // 4, int(h * 0.82), screen[2] - sw // 4, int(h * 0.9)),
            radius=int(h * 0.04),
            fill=accent,
        )
        return image
    else:
        shape.rounded_rectangle((0, 0, w - 1, h - 1), radius=w // 14, fill=255)
        image.paste(
            gradient((w, h), colours.top, colours.bottom, angle=20).convert("RGBA"), (0, 0), mask
        )
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, int(h * 0.12), w - 1, int(h * 0.14)), fill=(*deep, 255))
        _label(draw, facts.name, (0, int(h * 0.22), w, int(h * 0.72)), WHITE)
        draw.rectangle((w // 4, int(h * 0.8), w * 3 // 4, int(h * 0.8) + 3), fill=accent)
        return image
    return _round(image, mask)


def _props(facts: BriefFacts) -> list[tuple[str, RGB]]:
    found: list[tuple[str, RGB]] = []
    lowered = [w.lower() for w in words(f"{facts.name} {facts.text}")]
    citrus = next((CITRUS[w] for w in lowered if w in CITRUS), None)
    if citrus:
        found.append(("slices", COLOURS[citrus]))
    if BUBBLES & set(lowered):
        found.append(("bubbles", WHITE))
    if BEANS & set(lowered):
        found.append(("beans", (75, 45, 25)))
    if LEAVES & set(lowered) and len(found) < 2:
        found.append(("leaves", COLOURS["green"]))
    return found[:2]


def _slice(draw: ImageDraw.ImageDraw, x: int, y: int, r: int, colour: RGB, turn: float) -> None:

    rim = tuple(int(c * 0.7) for c in colour)
    flesh = tuple(min(255, int(c * 0.6 + 255 * 0.4)) for c in colour)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=(*rim, 235))
    inner = int(r * 0.9)
    draw.ellipse((x - inner, y - inner, x + inner, y + inner), fill=(250, 250, 235, 240))
    pulp = int(r * 0.8)
    draw.ellipse((x - pulp, y - pulp, x + pulp, y + pulp), fill=(*flesh, 245))
    for k in range(8):
        a = turn + k * math.pi / 4
        draw.line(
            (x, y, x + int(math.cos(a) * pulp), y + int(math.sin(a) * pulp)),
            fill=(250, 250, 235, 220),
            width=max(2, r // 14),
        )


def _scatter(image: Image.Image, kind: str, colour: RGB, rng: random.Random, unit: int) -> None:
    draw = ImageDraw.Draw(image, "RGBA")  # blends each shape over the picture
    width, height = image.size
    count = {"slices": 5, "bubbles": 26, "beans": 14, "leaves": 9}[kind]
    for _ in range(count):
        x, y = int(rng.random() * width), int(rng.random() * height)
        if kind == "slices":
            _slice(draw, x, y, int(unit * (0.07 + rng.random() * 0.07)), colour, rng.random())
        elif kind == "bubbles":
            r = int(unit * (0.008 + rng.random() * 0.025))
            draw.ellipse(
                (x - r, y - r, x + r, y + r), outline=(255, 255, 255, 150), width=max(2, r // 5)
            )
        elif kind == "beans":
            r = int(unit * (0.025 + rng.random() * 0.02))
            draw.ellipse((x - r, y - int(r * 0.7), x + r, y + int(r * 0.7)), fill=(*colour, 235))
            draw.arc(
                (x - r, y - r, x + r, y + r // 3),
                200,
                340,
                fill=(35, 20, 10, 220),
                width=max(2, r // 6),
            )
        else:
            r = int(unit * (0.04 + rng.random() * 0.04))
            leaf = Image.new("RGBA", (r * 2, r), (0, 0, 0, 0))
            ImageDraw.Draw(leaf).ellipse((0, 0, r * 2 - 1, r - 1), fill=(*colour, 225))
            leaf = leaf.rotate(rng.random() * 180, expand=True, resample=Image.Resampling.BICUBIC)
            image.paste(leaf, (max(x - r, 0), max(y - r, 0)), leaf)


def _glow(image: Image.Image, centre: tuple[float, float], colour: RGB, strength: int) -> None:
    """A soft round light of `colour` on the picture."""
    small = (max(image.width // 8, 1), max(image.height // 8, 1))
    mask = Image.new("L", small, 0)
    cx, cy = centre[0] * small[0], centre[1] * small[1]
    r = min(small) * 0.45
    ImageDraw.Draw(mask).ellipse((cx - r, cy - r, cx + r, cy + r), fill=strength)
    mask = mask.filter(ImageFilter.GaussianBlur(r / 2.5)).resize(
        image.size, Image.Resampling.BILINEAR
    )
    image.paste(colour, (0, 0, image.width, image.height), mask)


def _stand(image: Image.Image, item: Image.Image, centre: tuple[int, int]) -> None:
    """Put the package on the picture with a soft shadow below it."""
    w, h = item.size
    x, y = centre[0] - w // 2, centre[1] - h // 2
    sw, sh = max(w // 4, 4), max(h // 16, 4)
    shadow = Image.new("RGBA", (sw * 2, sh * 3), (0, 0, 0, 0))
    ImageDraw.Draw(shadow).ellipse((sw // 2, sh, sw * 3 // 2, sh * 2), fill=(0, 0, 0, 140))
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(sh // 3, 1)))
    shadow = shadow.resize((w * 2, max(h * 3 // 14, 1)), Image.Resampling.BILINEAR)
    image.paste(shadow, (max(x - w // 2, 0), max(y + h - shadow.height // 2, 0)), shadow)
    image.paste(item, (max(x, 0), max(y, 0)), item)


def picture(brief: Brief, index: int, count: int, size: tuple[int, int]) -> Image.Image:
    """A scene's still: the product staged over a backdrop in its palette, with its props."""
    facts, colours = read_brief(brief), palette(brief)
    width, height = size
    unit = min(width, height)
    image = gradient(size, colours.top, colours.bottom, angle=(index * 35) % 180)
    role = 3 if index == count - 1 and count > 1 else min(index, 2)
    x, y, tall = STAGING[role]
    _glow(image, (x, y - 0.05), colours.accent, 110)
    rng = random.Random(seed(brief.title, brief.brief, "props", index))
    props = _props(facts) or [("circles", colours.accent)]
    for kind, colour in props:
        if kind == "circles":
            draw = ImageDraw.Draw(image, "RGBA")
            for _ in range(4):
                r = int(unit * (0.12 + rng.random() * 0.15))
                cx, cy = int(rng.random() * width), int(rng.random() * height)
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*colour, 40))
        else:
            _scatter(image, kind, colour, rng, unit)
    item = package(facts, colours, int(min(height * tall, width * 0.5 * SHAPES[facts.kind])))
    _stand(image, item, (int(width * x), int(height * y)))
    return image


def product_shot(brief: Brief, size: tuple[int, int]) -> Image.Image:
    """The product as its package, lit on a pale backdrop of its own colour."""
    facts, colours = read_brief(brief), palette(brief)
    width, height = size
    pale = tuple(max(0, c - 40) for c in colours.backdrop)
    image = gradient(size, colours.backdrop, (pale[0], pale[1], pale[2]))
    _glow(image, (0.5, 0.45), WHITE, 160)
    item = package(facts, colours, int(min(height * 0.62, width * 0.6 * SHAPES[facts.kind])))
    _stand(image, item, (width // 2, int(height * 0.5)))
    return image
