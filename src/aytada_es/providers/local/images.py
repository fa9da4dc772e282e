"""Scene stills and library images drawn with Pillow: the product staged in its colours."""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageDraw

from ...adapters.assets import AssetStore
from ..base import JSON, Brief, Call
from .brief_facts import read_brief
from .formats import frame_size
from .overlay import button
from .product import package, palette, picture, product_shot
from .text import capital, headline_of, script_for, shorten
from .typesetting import block, fit_text, font, gradient, pill

FLYER_FALLBACKS = ("Made with care", "Ready when you are", "Yours today")


def still(brief: Brief, scene: JSON, size: tuple[int, int], count: int = 4) -> Image.Image:
    """One scene's still: its picture, without type (the clip and the cloud set their own)."""
    return picture(brief, int(scene.get("index", 0)), count, size)


def banner(brief: Brief, size: tuple[int, int]) -> Image.Image:
    """A banner: the product's picture, its name, the hook and a call to action."""
    colours = palette(brief)
    width, height = size
    unit = min(width, height)
    image = picture(brief, 1, 4, size).convert("RGBA")
    veil = Image.new("RGBA", size, (*colours.top, 0))
    ImageDraw.Draw(veil).rectangle((0, 0, width, int(height * 0.42)), fill=(*colours.top, 150))
    image = Image.alpha_composite(image, veil)
    draw = ImageDraw.Draw(image)
    name = read_brief(brief).name
    name_size, name_lines = fit_text(name, int(width * 0.86), unit // 8, 2)
    y = block(draw, name_lines, name_size, (width // 2, int(height * 0.14)), colours.ink)
    hook = str(script_for(brief, None)["headlines"][0])
    hook_size, hook_lines = fit_text(hook, int(width * 0.8), unit // 16, 2)
    block(draw, hook_lines, hook_size, (width // 2, y + int(unit * 0.08)), colours.accent)
    pill(draw, button(brief), (width // 2, int(height * 0.92)), unit // 22, colours.accent)
    return image.convert("RGB")


def flyer(brief: Brief, size: tuple[int, int]) -> Image.Image:
    """A flyer: a header with the name, the product, the brief's claims, a call to action."""
    facts, colours = read_brief(brief), palette(brief)
    width, height = size
    unit = min(width, height)
    image = Image.new("RGBA", size, (*colours.backdrop, 255))
    header = gradient((width, int(height * 0.3)), colours.top, colours.bottom, angle=60)
    image.paste(header, (0, 0))
    draw = ImageDraw.Draw(image)
    name_size, lines = fit_text(facts.name, int(width * 0.84), unit // 9, 2)
    block(draw, lines, name_size, (width // 2, int(height * 0.15)), (255, 255, 255))
    item = package(facts, colours, int(height * 0.3))
    item = (
        item.resize((min(item.width, width // 3), item.height)) if item.width > width // 3 else item
    )
    image.alpha_composite(item, (int(width * 0.94) - item.width, int(height * 0.36)))
    claims = [headline_of(b) for b in facts.benefits[:2]]
    if facts.audience:
        claims.append(shorten(f"Made for {facts.audience}"))
    claims += [c for c in FLYER_FALLBACKS if c not in claims]
    item_size = unit // 24
    for i, claim in enumerate(claims[:3]):
        y = int(height * (0.42 + 0.1 * i))
        cx, r = int(width * 0.1), int(item_size * 0.7)
        draw.ellipse((cx - r, y - r, cx + r, y + r), fill=colours.top)
        draw.line(
            (cx - r // 2, y, cx - r // 8, y + r // 2, cx + r // 2, y - r // 2),
            fill=colours.accent,
            width=max(3, r // 5),
        )
        claim_size, wrapped = fit_text(capital(claim), int(width * 0.56) - cx, item_size, 2)
        for k, line in enumerate(wrapped):
            draw.text(
                (int(width * 0.16), y + int((k - (len(wrapped) - 1) / 2) * claim_size * 1.2)),
                line,
                font=font(claim_size),
                fill=(30, 30, 40),
                anchor="lm",
                stroke_width=1,
                stroke_fill=(30, 30, 40),
            )
    pill(draw, button(brief), (width // 2, int(height * 0.86)), unit // 20, colours.accent)
    return image.convert("RGB")


def png(image: Image.Image) -> bytes:
    """The image as PNG bytes (fast compression: these are working files)."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class LocalImages:
    """A still per scene and the project's product shot, banner and flyer."""

    limit_key = "ffmpeg"  # CPU-bound as ffmpeg is: the same slots (AYTADA_LIMIT_FFMPEG_*)
    limit_per_machine = True  # the CPUs of this machine, shared by its stage workers

    def __init__(self, assets: AssetStore, scale: float = 1.0) -> None:
        self.assets = assets
        self.scale = scale

    def _render(self, brief: Brief, scenes: list[JSON]) -> list[tuple[str, int | None, bytes]]:
        size = frame_size(brief.format, self.scale)
        made: list[tuple[str, int | None, bytes]] = []
        for scene in scenes:
            made.append(
                ("scene_still", int(scene["index"]), png(still(brief, scene, size, len(scenes))))
            )
        made.append(("product_shot", None, png(product_shot(brief, size))))
        made.append(("banner", None, png(banner(brief, size))))
        made.append(("flyer", None, png(flyer(brief, size))))
        return made

    async def images(self, brief: Brief, scenes: list[JSON], call: Call) -> list[JSON]:
        made = await asyncio.to_thread(self._render, brief, scenes)
        records = []
        for kind, scene, content in made:
            record = await asyncio.to_thread(
                self.assets.put, content, kind=kind, content_type="image/png"
            )
            records.append(record if scene is None else {**record, "scene": scene})
        return records
