"""The captions stage, tested as its author would: with the aytada-es stage kit's fixtures only."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

from aytada_captions import __version__
from aytada_captions.stage import CaptionsStage
from aytada_captions.subtitles import cues
from PIL import Image, ImageChops, ImageStat

from aytada_es.domain.project import Project
from aytada_es.providers.local import ffmpeg
from aytada_es.testing import Start


def frame_at(video: Path, second: float, out: Path) -> Image.Image:
    """The video's frame at `second`, as an image."""
    command = [ffmpeg.executable(), "-v", "error", "-y", "-ss", f"{second}", "-i", str(video)]
    subprocess.run([*command, "-frames:v", "1", str(out)], check=True)
    return Image.open(out).convert("RGB")


def test_the_script_is_timed_sentence_by_sentence_over_the_whole_video() -> None:
    timed = cues("Tired of waiting?  Meet Fizz. Try it today!", 12.0)

    assert [c.text for c in timed] == ["Tired of waiting?", "Meet Fizz.", "Try it today!"]
    assert timed[0].start_s == 0 and timed[-1].end_s == 12.0
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(timed))
    assert timed[0].end_s - timed[0].start_s > timed[1].end_s - timed[1].start_s  # longer text


async def test_an_ad_gets_its_script_burnt_in_and_costs_two_credits(
    aytada_start: Start, tmp_path: Path
) -> None:
    run = await aytada_start(CaptionsStage, providers="local", scale=0.2)
    owner = run.user(credits=1000)
    project_id = run.autopilot_project(owner, format="1:1")

    completed = await run.until_event(project_id, "AddOnCompleted", timeout_s=120)

    (captioned,) = completed.assets
    project = run.project(project_id)
    assert captioned["kind"] == "captioned_video" and project.final_video is not None
    info = ffmpeg.probe(run.asset_path(captioned))
    assert info.video == "h264" and info.audio == "aac" and info.size == (216, 216)
    assert abs(info.duration_s - ffmpeg.probe(run.asset_path(project.final_video)).duration_s) < 0.2
    # The subtitles are in the picture: the bottom of a frame changed, the top did not.
    original = frame_at(run.asset_path(project.final_video), 1.0, tmp_path / "a.png")
    burnt = frame_at(run.asset_path(captioned), 1.0, tmp_path / "b.png")
    top, bottom = (0, 0, 216, 60), (0, 150, 216, 200)
    assert _difference(original.crop(bottom), burnt.crop(bottom)) > 40
    assert _difference(original.crop(top), burnt.crop(top)) < 8
    (record,) = [
        e
        for e in run.events(project_id)
        if isinstance(e, Project.GenerationRecorded) and e.step == "captions"
    ]
    assert (record.stage_version, record.credits, record.outcome) == (__version__, 2, "succeeded")
    audit = run.audit(project_id)
    assert audit["passed"] and audit["reconciliation"]["still_reserved"] == 0


async def test_a_republished_trigger_neither_captions_nor_charges_again(
    aytada_start: Start,
) -> None:
    run = await aytada_start(CaptionsStage, providers="local", scale=0.2)
    project_id = run.autopilot_project(run.user(credits=1000), format="1:1")
    await run.until_event(project_id, "AddOnCompleted", timeout_s=120)
    before = run.event_types(project_id)

    assert await run.republish(project_id, "VideoStitched") == 1
    await run.until_consumed("captions")

    assert run.event_types(project_id) == before


async def test_a_final_video_that_is_no_video_fails_at_once_and_releases_the_credits(
    aytada_start: Start,
) -> None:
    run = await aytada_start(CaptionsStage)  # instant: placeholder files
    owner = run.user(credits=1000)
    project_id = run.autopilot_project(owner)

    failed = await run.until_event(project_id, "AddOnFailed")

    assert (failed.code, failed.attempts) == ("invalid_output", 1)
    assert run.project(project_id).addon("captions")["state"] == "failed"
    assert run.audit(project_id)["passed"]
    assert run.studio.account(owner).reserved == 0


def _difference(a: Image.Image, b: Image.Image) -> float:
    """The mean difference of two images' pixels, 0 to 255."""
    mean: float = ImageStat.Stat(ImageChops.difference(a, b).convert("L")).mean[0]
    return mean
