"""Render a 12-second 9:16 ad with the local providers and time every media step.

Usage: python bench/render.py
Prints: per-step wall times and the render ratio (wall time of the media steps / video length;
the goal is at most 1.0).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aytada_es.adapters.assets import AssetStore
from aytada_es.providers.base import Brief, Call
from aytada_es.providers.local import local_providers
from aytada_es.providers.local.ffmpeg import probe


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="aytada-bench-") as tmp:
        assets = AssetStore(Path(tmp))
        p = local_providers(assets)
        brief = Brief(uuid.uuid4(), "Acme Trail Boots", "9:16", "Waterproof boots for weekends.")
        call = Call("bench")
        times: dict[str, float] = {}

        async def step(name: str, work):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            result = await work
            times[name] = time.perf_counter() - start
            return result

        ideas = await step("ideas", p.ideas.ideas(brief, 3, call))
        script = await step("script", p.script.script(brief, ideas[0], call))
        scenes = await step("scenes", p.scenes.scenes(brief, script, call))
        assert p.images is not None
        images = await step("images", p.images.images(brief, scenes, call))
        for image in images:
            if image["kind"] == "scene_still":
                scenes[image["scene"]]["still"] = image
        clips = []
        for scene in scenes:
            clips.append(await step(f"clip {scene['index']}", p.clips.clip(brief, scene, call)))
        length = sum(float(s["duration_s"]) for s in scenes)
        voice = await step("voiceover", p.voiceover.voiceover(brief, script["text"], length, call))
        video, _ = await step("stitching", p.stitching.stitch(brief, clips, voice, call))
        info = probe(assets.path(video["id"]))
        total = sum(times.values())
        for name, seconds in times.items():
            print(f"{name:>10}: {seconds:6.2f} s")
        print(f"{'total':>10}: {total:6.2f} s for {info.duration_s:.2f} s of {info.size} video")
        print(f"render ratio: {total / info.duration_s:.2f} (goal <= 1.0)")


if __name__ == "__main__":
    asyncio.run(main())
