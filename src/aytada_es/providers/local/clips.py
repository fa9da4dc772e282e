"""A clip per scene: a Ken Burns zoom and pan over the scene's still, its words on top, in H.264."""

from __future__ import annotations

import asyncio
import functools
import io
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from ...adapters.assets import AssetStore
from ..base import JSON, Brief, Call
from . import ffmpeg
from .formats import FPS, frame_size
from .images import still
from .overlay import bands, overlay, veiled

ZOOM = 0.08
WORKERS = 2
PRESET = "veryfast"
FADE_FRAMES = 9  # the words fade in over the first 0.3 s

Band = tuple[tuple[int, int, int, int], Image.Image, Image.Image]


def _ease(t: float) -> float:
    return t * t * (3 - 2 * t) * 0.35 + t * 0.65


def _faded(words: list[Band], i: int) -> list[Band]:
    if i >= FADE_FRAMES:
        return words
    share = (i + 1) / (FADE_FRAMES + 1)
    return [(box, rgb, alpha.point(lambda v: int(v * share))) for box, rgb, alpha in words]


def ken_burns(
    image: Image.Image, frames: int, index: int, words: list[Band] | None = None
) -> Iterator[bytes]:
    """RGB frames zooming in (or out, by scene) and drifting over `image`, sub-pixel smooth.

    `words` (from `overlay.bands`) stay still over the moving picture, fading in at the start.
    """
    width, height = image.size
    zoom_in = index % 2 == 0
    drift_x = (-1, 1, 1, -1)[index % 4]
    drift_y = (1, -1, 1, -1)[(index // 2) % 4]

    def frame(i: int) -> bytes:
        t = _ease(i / max(frames - 1, 1))
        zoom = 1 + ZOOM * (t if zoom_in else 1 - t)
        w, h = width / zoom, height / zoom
        cx = width / 2 + drift_x * (width - w) / 2 * (t - 0.5) * 0.9
        cy = height / 2 + drift_y * (height - h) / 2 * (t - 0.5) * 0.9
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        moved = image.resize(image.size, Image.Resampling.BILINEAR, box=box)
        for place, rgb, alpha in _faded(words or [], i):
            moved.paste(rgb, place, alpha)
        return moved.tobytes()

    # Pillow's resize releases the GIL: two workers keep the encoder fed.
    with ThreadPoolExecutor(WORKERS) as pool:
        ahead: deque[Future[bytes]] = deque()
        for i in range(frames):
            ahead.append(pool.submit(frame, i))
            if len(ahead) > WORKERS * 2:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


class LocalClips:
    """One H.264 clip per scene, at the format's size and 30 fps."""

    limit_key = "ffmpeg"  # AYTADA_LIMIT_FFMPEG_*
    limit_per_machine = True  # the CPUs of this machine, shared by its stage workers

    def __init__(self, assets: AssetStore, scale: float = 1.0) -> None:
        self.assets = assets
        self.scale = scale

    def _render(self, brief: Brief, scene: JSON, out: Path, abandoned: threading.Event) -> None:
        size = frame_size(brief.format, self.scale)
        record = scene.get("still")
        if isinstance(record, dict) and record.get("id"):
            image = Image.open(io.BytesIO(self.assets.read(str(record["id"])))).convert("RGB")
            if image.size != size:
                image = image.resize(size, Image.Resampling.LANCZOS)
        else:
            image = still(brief, scene, size)
        image, words = veiled(image), bands(overlay(brief, scene, size))
        frames = max(1, round(float(scene.get("duration_s", 3)) * FPS))
        ffmpeg.encode_frames(
            ken_burns(image, frames, int(scene.get("index", 0)), words),
            out,
            size,
            FPS,
            PRESET,
            abandoned,
        )

    async def clip(self, brief: Brief, scene: JSON, call: Call) -> JSON:
        with tempfile.TemporaryDirectory(prefix="aytada-clip-") as tmp:
            out = Path(tmp) / "clip.mp4"
            await ffmpeg.in_thread(functools.partial(self._render, brief, scene, out))
            content = await asyncio.to_thread(out.read_bytes)
        asset = await asyncio.to_thread(
            self.assets.put, content, kind="clip", content_type="video/mp4"
        )
        return {
            **asset,
            "scene": scene.get("index", 0),
            "duration_s": float(scene.get("duration_s", 3)),
        }
