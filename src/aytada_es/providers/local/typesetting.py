"""Type and simple shapes for the local images: fitted lines, shadowed blocks, buttons."""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled TrueType font at `size` pixels."""
    loaded = ImageFont.load_default(size=max(size, 1))
    assert isinstance(loaded, ImageFont.FreeTypeFont)
    return loaded


def gradient(size: tuple[int, int], top: RGB, bottom: RGB, angle: int = 0) -> Image.Image:
    """A smooth two-colour gradient, tilted by `angle` degrees."""
    mask = Image.linear_gradient("L")
    if angle:
        mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False).crop(
            (48, 48, 208, 208)
        )
    mask = mask.resize(size, Image.Resampling.BICUBIC)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


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
