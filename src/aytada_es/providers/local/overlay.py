"""A scene's words over its picture: the name, the headline, the call to action, progress dots."""

from __future__ import annotations

from PIL import Image, ImageDraw

from ..base import JSON, Brief
from .brief_facts import phrase, read_brief
from .product import palette
from .text import ACTION_VERB, capital, shorten
from .typesetting import block, fit_text, font, pill

SCRIM_ALPHA = 150
STRIP = 8  # rows looked at together when finding the layer's bands


def veiled(picture: Image.Image) -> Image.Image:
    """The picture darkened from the top edge down, so white type reads on any still."""
    width, height = picture.size
    reach = max(int(height * (0.5 if width > height else 0.42)), 1)
    ramp = Image.linear_gradient("L").resize((1, reach))
    ramp = ramp.point(lambda v: SCRIM_ALPHA - v * SCRIM_ALPHA // 255).resize((width, reach))
    out = picture.copy()
    out.paste((0, 0, 0), (0, 0, width, reach), ramp)
    return out


def overlay(brief: Brief, scene: JSON, size: tuple[int, int]) -> Image.Image:
    """The scene's type on a transparent layer of the frame's size (set it on `veiled`)."""
    facts, colours = read_brief(brief), palette(brief)
    index = int(scene.get("index", 0))
    count = max(int(scene.get("count", 4)), index + 1)
    width, height = size
    unit = min(width, height)
    tall = height > width * 1.3  # 9:16 has room for three lines; 4:5, 1:1 and 16:9 for two
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    tag = max(unit // 24, 1)
    draw.text(
        (width // 2, int(height * 0.06)),
        shorten(facts.name, 48).upper(),
        font=font(tag),
        fill=colours.accent,
        anchor="ma",
    )
    headline = str(scene.get("headline") or facts.name)
    start, most = (unit // 9, 3) if tall else (unit // 11, 2)
    text_size, lines = fit_text(headline, int(width * 0.84), start, most)
    top = int(height * 0.06) + tag * 2  # below the name
    centre = top + int(text_size * 1.18) * len(lines) // 2
    bottom_y = block(draw, lines, text_size, (width // 2, centre), colours.ink)
    bar = int(unit * 0.16)
    top_y = bottom_y + unit // 40
    draw.rounded_rectangle(
        (width // 2 - bar // 2, top_y, width // 2 + bar // 2, top_y + max(unit // 90, 3)),
        radius=4,
        fill=colours.accent,
    )
    if index == count - 1:
        pill(draw, button(brief), (width // 2, int(height * 0.88)), unit // 22, colours.accent)
    dot, gap = max(unit // 110, 3), max(unit // 34, 10)
    left = width // 2 - gap * (count - 1) // 2
    for i in range(count):
        cx, cy = left + i * gap, int(height * 0.965)
        fill = (*colours.accent, 255) if i == index else (255, 255, 255, 120)
        draw.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=fill)
    return image


def button(brief: Brief) -> str:
    """The call to action's first words, for a button."""
    facts = read_brief(brief)
    if facts.action:
        return capital(phrase(facts.action, 3))
    verb = ACTION_VERB.get(facts.kind, "Get")
    return f"{verb} {facts.name}" if len(facts.name) <= 16 else f"{verb} it today"


def bands(layer: Image.Image) -> list[tuple[tuple[int, int, int, int], Image.Image, Image.Image]]:
    """The layer's inked boxes, a band of rows each, as (box, RGB, alpha): cheap to paste."""
    alpha = layer.getchannel("A")
    strips = [
        (y, min(y + STRIP, layer.height))
        for y in range(0, layer.height, STRIP)
        if alpha.crop((0, y, layer.width, min(y + STRIP, layer.height))).getbbox()
    ]
    merged: list[tuple[int, int]] = []
    for top, bottom in strips:
        if merged and merged[-1][1] == top:
            merged[-1] = (merged[-1][0], bottom)
        else:
            merged.append((top, bottom))
    found = []
    for top, bottom in merged:
        inked = alpha.crop((0, top, layer.width, bottom)).getbbox()
        assert inked is not None
        box = (inked[0], top, inked[2], bottom)  # only the columns that hold type
        part = layer.crop(box)
        found.append((box, part.convert("RGB"), part.getchannel("A")))
    return found
