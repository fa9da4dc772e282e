"""Frame sizes of the ad formats, and the frame rate of the local renders."""

from __future__ import annotations

FPS = 30
SIZES = {"9:16": (1080, 1920), "16:9": (1920, 1080), "1:1": (1080, 1080), "4:5": (1080, 1350)}


def frame_size(format: str, scale: float = 1.0) -> tuple[int, int]:
    """The format's size in pixels, optionally scaled (kept even for yuv420p)."""
    width, height = SIZES.get(format, SIZES["9:16"])
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
