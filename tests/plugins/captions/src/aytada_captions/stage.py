"""Captions: once an ad is stitched, its script is burnt into the final video as subtitles."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from aytada_es.consumers.addons import AddOnOutput, AddOnStage
from aytada_es.consumers.context import StageContext
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Price
from aytada_es.providers.base import InvalidOutput, ProviderError
from aytada_es.providers.local import ffmpeg

from . import __version__
from .subtitles import cues, drawn


class CaptionsStage(AddOnStage):
    """Burns the project's script into its final video, one sentence at a time."""

    name = "captions"  # its consumer group: aytada.stage.captions; its step in the audit
    version = __version__  # written into every generation record it makes
    reacts_to = frozenset({"VideoStitched"})  # the trigger: the final video exists
    records: ClassVar[dict[str, str]] = {"captioned_video": "Captioned video"}
    price = Price("video", 2)  # 2 credits per captioned video

    def estimate_units(self, project: Project) -> int:
        return 1  # one video: 2 credits are reserved before the work starts

    async def generate(self, project: Project, ctx: StageContext) -> AddOnOutput:
        video, script = project.final_video, project.script
        if video is None or script is None or not str(script.get("text", "")).strip():
            raise InvalidOutput("the project has no final video or no script to caption")
        source = ctx.assets.path(str(video["id"]))
        try:
            info = await ctx.call(ffmpeg.probe, source)  # ffmpeg -i, blocking: off the loop
        except ProviderError as e:
            raise InvalidOutput(f"the final video cannot be read: {e}") from e
        if info.size is None or info.duration_s <= 0:
            raise InvalidOutput("the final video has no picture to caption")
        work = Path(await ctx.call(tempfile.mkdtemp, prefix="aytada-captions-"))
        try:
            captioned = await self._burn(source, str(script["text"]), info, work, ctx)
            content = await ctx.call(captioned.read_bytes)
        finally:
            await ctx.call(shutil.rmtree, work, ignore_errors=True)
        asset = await ctx.store_asset(content, kind="captioned_video", content_type="video/mp4")
        return AddOnOutput([{**asset, "duration_s": round(info.duration_s, 3)}], units=1)

    async def _burn(
        self, source: Path, text: str, info: ffmpeg.MediaInfo, work: Path, ctx: StageContext
    ) -> Path:
        """Overlay each sentence's PNG while it is spoken; the sound is copied as it is."""
        assert info.size is not None
        timed = cues(text, info.duration_s)
        args = ["-i", str(source)]
        chain, last = [], "0:v"
        for i, cue in enumerate(timed, start=1):
            png = work / f"cue-{i}.png"
            await ctx.call(png.write_bytes, await ctx.call(drawn, cue, info.size))
            args += ["-i", str(png)]
            between = f"between(t,{cue.start_s:.3f},{cue.end_s:.3f})"
            chain.append(f"[{last}][{i}:v]overlay=x=(W-w)/2:y=H-h-H/12:enable='{between}'[v{i}]")
            last = f"v{i}"
        out = work / "captioned.mp4"
        args += ["-filter_complex", ";".join(chain), "-map", f"[{last}]", "-map", "0:a?"]
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
        args += ["-c:a", "copy", "-movflags", "+faststart", str(out)]
        # A child of the event loop's thread: killed when the add-on is abandoned (a delete).
        await ffmpeg.run(*args)
        return out
