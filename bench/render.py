"""Render a 12-second 9:16 ad with the local providers and time every media step.

Usage: python bench/render.py [--title T] [--brief B]
Prints: per-step wall and CPU times (this process and its ffmpeg and espeak children), the
render ratio (wall time of the media steps / video length; the goal is at most 1.0), the CPU
ratio (the same in CPU seconds, which the other work on a shared machine moves far less) and
the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

from aytada_es.adapters.assets import AssetStore
from aytada_es.providers.base import Brief, Call
from aytada_es.providers.local import local_providers
from aytada_es.providers.local.ffmpeg import probe


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have exited."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def main(title: str, text: str) -> None:
    with tempfile.TemporaryDirectory(prefix="aytada-bench-") as tmp:
        assets = AssetStore(Path(tmp))
        p = local_providers(assets)
        brief = Brief(uuid.uuid4(), title, "9:16", text)
        call = Call("bench")
        times: dict[str, tuple[float, float]] = {}

        async def step(name: str, work):  # type: ignore[no-untyped-def]
            start, cpu = time.perf_counter(), cpu_seconds()
            result = await work
            times[name] = (time.perf_counter() - start, cpu_seconds() - cpu)
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
        wall = sum(w for w, _ in times.values())
        cpu = sum(c for _, c in times.values())
        print(f"{'step':>10}   wall      CPU")
        for name, (seconds, used) in times.items():
            print(f"{name:>10}: {seconds:6.2f} s {used:6.2f} s")
        length = info.duration_s
        print(f"{'total':>10}: {wall:6.2f} s {cpu:6.2f} s for {length:.2f} s of {info.size} video")
        print(f"render ratio: {wall / length:.2f} (goal <= 1.0), CPU ratio {cpu / length:.2f}")
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--title", default="Acme Trail Boots")
    parser.add_argument("--brief", default="Waterproof boots for weekends.")
    args = parser.parse_args()
    asyncio.run(main(args.title, args.brief))
