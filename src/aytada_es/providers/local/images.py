"""Scene stills and library images drawn with Pillow: gradients, shapes and large type."""

from __future__ import annotations

import asyncio
import io
from functools import cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ...adapters.assets import AssetStore
from ..base import JSON, Brief, Call
from .formats import frame_size
from .text import script_for, seed, short_name

RGB = tuple[int, int, int]
# (top, bottom, accent, ink): dark gradients with a bright accent, white ink.
PALETTES: tuple[tuple[RGB, RGB, RGB, RGB], ...] = (
    ((35, 20, 90), (190, 40, 120), (255, 190, 60), (255, 255, 255)),
    ((10, 40, 80), (20, 150, 160), (255, 120, 90), (255, 255, 255)),
    ((25, 25, 35), (90, 40, 160), (80, 220, 200), (255, 255, 255)),
    ((120, 20, 40), (240, 110, 50), (255, 230, 120), (255, 255, 255)),
    ((10, 70, 50), (40, 170, 110), (250, 240, 140), (255, 255, 255)),
    ((30, 30, 80), (60, 120, 230), (255, 160, 200), (255, 255, 255)),
)
BENEFITS = ("Saves time every day", "Simple from the first minute", "Results you can see")


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled TrueType font at `size` pixels."""
    loaded = ImageFont.load_default(size=size)
    assert isinstance(loaded, ImageFont.FreeTypeFont)
    return loaded


def palette(brief: Brief) -> tuple[RGB, RGB, RGB, RGB]:
    """The project's colours, chosen by its title."""
    return PALETTES[seed(brief.title, "palette") % len(PALETTES)]


def gradient(size: tuple[int, int], top: RGB, bottom: RGB, angle: int = 0) -> Image.Image:
    """A smooth two-colour gradient, tilted by `angle` degrees."""
    mask = Image.linear_gradient("L")
    if angle:
        mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False).crop(
            (48, 48, 208, 208)
        )
    mask = mask.resize(size, Image.Resampling.BICUBIC)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def shapes(image: Image.Image, accent: RGB, key: int) -> Image.Image:
    """Soft translucent circles and a ring in the accent colour over the background."""
    width, height = image.size
    small = (max(width // 4, 1), max(height // 4, 1))
    layer = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    sw, sh = small
    for i in range(3):
        k = (key >> (i * 5)) & 31
        r = int(min(sw, sh) * (0.25 + 0.02 * (k % 8)))
        cx = int(sw * (0.1 + 0.8 * ((k * 7 + i * 3) % 10) / 9))
        cy = int(sh * (0.08 + 0.84 * ((k * 3 + i * 5) % 10) / 9))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*accent, 46 + 10 * i))
    r = int(min(sw, sh) * 0.32)
    cx, cy = int(sw * 0.85), int(sh * 0.12)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(255, 255, 255, 70), width=3)
    layer = layer.filter(ImageFilter.GaussianBlur(2)).resize(image.size, Image.Resampling.BILINEAR)
    return Image.alpha_composite(image.convert("RGBA"), layer)


def wrap(text: str, size: int, width: int) -> list[str]:
    """Words of `text` in lines no wider than `width` at font `size`."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font(size).getlength(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def fit_text(text: str, width: int, start: int, max_lines: int) -> tuple[int, list[str]]:
    """The largest font size (from `start` down) that sets `text` in `max_lines` lines."""
    size = start
    while size > 12:
        lines = wrap(text, size, width)
        if len(lines) <= max_lines and all(font(size).getlength(x) <= width for x in lines):
            return size, lines
        size = int(size * 0.9)
    return size, wrap(text, size, width)


def block(
    draw: ImageDraw.ImageDraw, lines: list[str], size: int, centre: tuple[int, int], ink: RGB
) -> int:
    """Centred lines with a soft shadow and a heavier stroke; return the block's bottom."""
    line_height = int(size * 1.18)
    top = centre[1] - line_height * len(lines) // 2
    bold = max(1, size // 36)
    for i, line in enumerate(lines):
        x, y = centre[0], top + i * line_height
        shadow = max(2, size // 20)
        draw.text((x + shadow, y + shadow), line, font=font(size), fill=(0, 0, 0, 110), anchor="ma")
        draw.text(
            (x, y), line, font=font(size), fill=ink, anchor="ma", stroke_width=bold, stroke_fill=ink
        )
    return top + line_height * len(lines)


def pill(
    draw: ImageDraw.ImageDraw, text: str, centre: tuple[int, int], size: int, colour: RGB
) -> None:
    """A rounded call-to-action button with dark text."""
    width = int(font(size).getlength(text)) + size * 2
    height = int(size * 1.9)
    x, y = centre[0] - width // 2, centre[1] - height // 2
    draw.rounded_rectangle((x, y, x + width, y + height), radius=height // 2, fill=colour)
    draw.text(
        centre,
        text,
        font=font(size),
        fill=(20, 20, 30),
        anchor="mm",
        stroke_width=1,
        stroke_fill=(20, 20, 30),
    )


def still(brief: Brief, scene: JSON, size: tuple[int, int], count: int = 4) -> Image.Image:
    """One scene's still: gradient, shapes, the product's name, the headline, progress dots."""
    top, bottom, accent, ink = palette(brief)
    index = int(scene.get("index", 0))
    width, height = size
    unit = min(width, height)
    image = shapes(
        gradient(size, top, bottom, angle=(index * 35) % 180), accent, seed(brief.title, index)
    )
    draw = ImageDraw.Draw(image)
    name = short_name(brief.title)
    draw.text(
        (width // 2, int(height * 0.07)),
        name.upper(),
        font=font(unit // 22),
        fill=accent,
        anchor="ma",
    )
    headline = str(scene.get("headline") or name)
    text_size, lines = fit_text(headline, int(width * 0.84), unit // 8, 4)
    bottom_y = block(draw, lines, text_size, (width // 2, int(height * 0.46)), ink)
    bar = int(unit * 0.18)
    draw.rounded_rectangle(
        (
            width // 2 - bar // 2,
            bottom_y + unit // 40,
            width // 2 + bar // 2,
            bottom_y + unit // 40 + max(unit // 90, 3),
        ),
        radius=4,
        fill=accent,
    )
    if index == count - 1:
        pill(draw, "Try it today", (width // 2, int(height * 0.78)), unit // 20, accent)
    dot, gap = max(unit // 90, 3), max(unit // 30, 10)
    left = width // 2 - gap * (count - 1) // 2
    for i in range(count):
        cx, cy = left + i * gap, int(height * 0.93)
        fill = (*accent, 255) if i == index else (255, 255, 255, 90)
        draw.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=fill)
    return image.convert("RGB")


def product_shot(brief: Brief, size: tuple[int, int]) -> Image.Image:
    """The product as a lit package on a soft backdrop, its name on the front."""
    top, bottom, accent, ink = palette(brief)
    width, height = size
    unit = min(width, height)
    image = gradient(size, (240, 240, 246), (200, 204, 216)).convert("RGBA")
    floor = Image.new("RGBA", (width // 4, height // 4), (0, 0, 0, 0))
    ImageDraw.Draw(floor).ellipse(
        (width // 8 - unit // 10, height // 4 * 0.74, width // 8 + unit // 10, height // 4 * 0.79),
        fill=(0, 0, 0, 90),
    )
    floor = floor.filter(ImageFilter.GaussianBlur(4)).resize(size, Image.Resampling.BILINEAR)
    image = Image.alpha_composite(image, floor)
    box_w, box_h = int(unit * 0.5), int(unit * 0.66)
    x, y = (width - box_w) // 2, int(height * 0.76) - box_h
    body = gradient((box_w, box_h), top, bottom, angle=20).convert("RGBA")
    mask = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (0, 0, box_w - 1, box_h - 1), radius=unit // 25, fill=255
    )
    image.paste(body, (x, y), mask)
    draw = ImageDraw.Draw(image)
    name = short_name(brief.title)
    text_size, lines = fit_text(name, int(box_w * 0.8), unit // 12, 3)
    block(draw, lines, text_size, (width // 2, y + box_h // 2), ink)
    draw.rectangle(
        (
            x + box_w // 4,
            y + box_h * 3 // 4,
            x + box_w * 3 // 4,
            y + box_h * 3 // 4 + max(unit // 120, 2),
        ),
        fill=accent,
    )
    return image.convert("RGB")


def banner(brief: Brief, size: tuple[int, int]) -> Image.Image:
    """A banner: the name, the hook and a call to action."""
    top, bottom, accent, ink = palette(brief)
    width, height = size
    unit = min(width, height)
    image = shapes(gradient(size, top, bottom, angle=135), accent, seed(brief.title, "banner"))
    draw = ImageDraw.Draw(image)
    name = short_name(brief.title)
    name_size, name_lines = fit_text(name, int(width * 0.86), unit // 6, 2)
    y = block(draw, name_lines, name_size, (width // 2, int(height * 0.36)), ink)
    hook = str(script_for(brief, None)["headlines"][0])
    hook_size, hook_lines = fit_text(hook, int(width * 0.8), unit // 16, 2)
    block(draw, hook_lines, hook_size, (width // 2, y + int(unit * 0.1)), accent)
    pill(
        draw,
        f"Get {name}" if len(name) < 16 else "Get it now",
        (width // 2, int(height * 0.8)),
        unit // 20,
        accent,
    )
    return image.convert("RGB")


def flyer(brief: Brief, size: tuple[int, int]) -> Image.Image:
    """A flyer: a coloured header with the name, three benefits, a call to action."""
    top, bottom, accent, _ = palette(brief)
    width, height = size
    unit = min(width, height)
    image = Image.new("RGBA", size, (248, 247, 244, 255))
    header = gradient((width, int(height * 0.34)), top, bottom, angle=60)
    image.paste(header, (0, 0))
    draw = ImageDraw.Draw(image)
    name = short_name(brief.title)
    name_size, lines = fit_text(name, int(width * 0.84), unit // 8, 2)
    block(draw, lines, name_size, (width // 2, int(height * 0.17)), (255, 255, 255))
    item_size = unit // 20
    for i, benefit in enumerate(BENEFITS):
        y = int(height * (0.45 + 0.11 * i))
        cx, r = int(width * 0.14), int(item_size * 0.7)
        draw.ellipse((cx - r, y - r, cx + r, y + r), fill=top)
        draw.line(
            (cx - r // 2, y, cx - r // 8, y + r // 2, cx + r // 2, y - r // 2),
            fill=accent,
            width=max(3, r // 5),
        )
        draw.text(
            (int(width * 0.22), y),
            benefit,
            font=font(item_size),
            fill=(30, 30, 40),
            anchor="lm",
            stroke_width=1,
            stroke_fill=(30, 30, 40),
        )
    pill(
        draw,
        f"Try {name} today" if len(name) < 14 else "Try it today",
        (width // 2, int(height * 0.86)),
        unit // 20,
        accent,
    )
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
