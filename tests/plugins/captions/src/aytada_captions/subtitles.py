"""Subtitles: the script cut into sentences, timed over the video, each drawn as a PNG."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_LINES = 3


@dataclass(frozen=True)
class Cue:
    """One sentence and when it is on screen."""

    text: str
    start_s: float
    end_s: float


def cues(script: str, length_s: float) -> list[Cue]:
    """The script's sentences in order, each shown for its share of the text's length."""
    sentences = [s for s in _SENTENCE_END.split(" ".join(script.split())) if s]
    total = sum(len(s) for s in sentences)
    timed, start = [], 0.0
    for sentence in sentences:
        end = start + length_s * len(sentence) / total
        timed.append(Cue(sentence, round(start, 3), round(end, 3)))
        start = end
    return timed


def drawn(cue: Cue, frame: tuple[int, int]) -> bytes:
    """The cue as a transparent PNG as wide as the frame: white type on a translucent band."""
    width, height = frame
    size = max(10, round(min(width, height) * 0.055))
    lines = _wrapped(cue.text, size, int(width * 0.9))
    while len(lines) > MAX_LINES and size > 10:
        size = max(10, int(size * 0.85))
        lines = _wrapped(cue.text, size, int(width * 0.9))
    line_height, padding = round(size * 1.25), max(2, size // 3)
    band = Image.new("RGBA", (width, line_height * len(lines) + 2 * padding), (0, 0, 0, 150))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text(
            (width // 2, padding + i * line_height),
            line,
            font=_font(size),
            fill=(255, 255, 255, 255),
            anchor="ma",
            stroke_width=max(1, size // 16),
            stroke_fill=(0, 0, 0, 255),
        )
    out = io.BytesIO()
    band.save(out, format="PNG")
    return out.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's own TrueType font: no fontconfig, no system fonts needed.
    return ImageFont.load_default(size=size)


def _wrapped(text: str, size: int, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and _font(size).getlength(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines
