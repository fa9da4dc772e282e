"""The final ad: clips joined without re-encoding, the voiceover as AAC, and a thumbnail."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from ...adapters.assets import AssetStore
from ..base import JSON, Brief, Call, ProviderError
from . import ffmpeg

THUMBNAIL_WIDTH = 540


class LocalStitching:
    """Concatenates the clips, muxes the voiceover, and grabs a JPEG thumbnail."""

    limit_key = "ffmpeg"  # AYTADA_LIMIT_FFMPEG_*
    limit_per_machine = True  # the CPUs of this machine, shared by its stage workers

    def __init__(self, assets: AssetStore) -> None:
        self.assets = assets

    async def stitch(
        self, brief: Brief, clips: list[JSON], voiceover: JSON | None, call: Call
    ) -> tuple[JSON, JSON]:
        if not clips:
            raise ProviderError("nothing to stitch: no clips")
        with tempfile.TemporaryDirectory(prefix="aytada-stitch-") as tmp:
            work = Path(tmp)
            listing = work / "clips.txt"
            listing.write_text("".join(f"file '{self.assets.path(str(c['id']))}'\n" for c in clips))
            video, thumbnail = work / "ad.mp4", work / "thumbnail.jpg"
            args = ["-f", "concat", "-safe", "0", "-i", str(listing)]
            if voiceover is not None:
                args += ["-i", str(self.assets.path(str(voiceover["id"])))]
            else:
                args += ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono"]
            args += ["-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k"]
            args += ["-ar", "44100", "-shortest", "-movflags", "+faststart", str(video)]
            length = sum(float(c.get("duration_s", 3)) for c in clips)
            args += ["-map", "0:v", "-ss", f"{min(0.5, length / 4):.3f}", "-frames:v", "1"]
            args += ["-vf", f"scale={THUMBNAIL_WIDTH}:-2", "-q:v", "3", str(thumbnail)]
            await ffmpeg.run(*args)
            video_bytes, thumbnail_bytes = video.read_bytes(), thumbnail.read_bytes()
        put = self.assets.put
        final = await asyncio.to_thread(
            put, video_bytes, kind="final_video", content_type="video/mp4"
        )
        thumb = await asyncio.to_thread(
            put, thumbnail_bytes, kind="thumbnail", content_type="image/jpeg"
        )
        return final, thumb
