"""The local providers end to end: a real 12 s 9:16 ad checked with ffmpeg, images, voiceover."""

from __future__ import annotations

import subprocess
import uuid
import wave
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from aytada_es.adapters.assets import AssetStore
from aytada_es.providers.base import JSON, Brief, Call, Providers
from aytada_es.providers.local import local_providers
from aytada_es.providers.local.ffmpeg import executable, probe
from aytada_es.providers.local.formats import SIZES

CALL = Call("test")
LIME = Brief(
    uuid.UUID(int=43),
    "Fizzy Lime Sparkling Water",
    "9:16",
    "A zero-sugar sparkling water with real lime juice for health-conscious young adults.",
)
COFFEE = Brief(
    uuid.UUID(int=44), "Sunrise Cold Brew", "9:16", "Smooth cold brew coffee, ready in the fridge."
)


def brief(fmt: str = "9:16") -> Brief:
    return Brief(uuid.UUID(int=42), "Acme Trail Boots", fmt, "Waterproof boots for weekends.")


def frame(video: Path, at_s: float, tmp: Path) -> Image.Image:
    """One frame of the video, grabbed with ffmpeg as PNG."""
    png = tmp / "frame.png"
    grab = ["-loglevel", "error", "-y", "-ss", str(at_s), "-i", str(video), "-frames:v", "1"]
    subprocess.run([executable(), *grab, str(png)], check=True)
    with Image.open(png) as image:
        return image.convert("RGB")


def frame_variance(video: Path, at_s: float, tmp: Path) -> float:
    """The pixel variance of one frame."""
    return float(sum(ImageStat.Stat(frame(video, at_s, tmp)).var))


def hue_shares(image: Image.Image) -> tuple[float, float]:
    """Of the image's coloured pixels, the share that is green and the share that is brown."""
    data = image.convert("HSV").tobytes()
    coloured = [
        (h * 360 / 255, v / 255)
        for h, s, v in zip(data[0::3], data[1::3], data[2::3], strict=True)
        if s > 64 and v > 40
    ]
    assert len(coloured) > len(data) // 3 // 10, "hardly any colour at all"
    green = sum(1 for h, _ in coloured if 70 <= h <= 170)
    brown = sum(1 for h, v in coloured if 10 <= h <= 50 and v < 0.7)
    return green / len(coloured), brown / len(coloured)


def difference(a: Image.Image, b: Image.Image) -> float:
    """The mean difference of two pictures' grey levels (0 to 255), seen at 27 x 48."""
    small = [i.convert("L").resize((27, 48), Image.Resampling.BOX) for i in (a, b)]
    return float(ImageStat.Stat(ImageChops.difference(*small)).mean[0])


def lower_half(image: Image.Image) -> Image.Image:
    """Where a still shows below its words."""
    return image.crop((0, image.height // 2, image.width, image.height * 9 // 10))


async def stills_for(p: Providers, b: Brief) -> tuple[list[JSON], list[JSON]]:
    """The scenes of the brief with their stills attached, and every image made."""
    scenes = await p.scenes.scenes(b, await p.script.script(b, None, CALL), CALL)
    assert p.images is not None
    images = await p.images.images(b, scenes, CALL)
    for image in images:
        if image["kind"] == "scene_still":
            scenes[image["scene"]]["still"] = image
    return scenes, images


def ffmpeg_says(media: Path) -> str:
    """What `ffmpeg -i` prints about a file."""
    command = [executable(), "-hide_banner", "-i", str(media)]
    return subprocess.run(command, capture_output=True, text=True, check=False).stderr


async def test_a_twelve_second_vertical_ad_end_to_end(tmp_path: Path) -> None:
    assets = AssetStore(tmp_path / "assets")
    p = local_providers(assets)
    b = brief()
    ideas = await p.ideas.ideas(b, 3, CALL)
    script = await p.script.script(b, ideas[0], CALL)
    scenes = await p.scenes.scenes(b, script, CALL)
    assert len(scenes) == 4
    assert p.images is not None
    images = await p.images.images(b, scenes, CALL)
    for image in images:
        if image["kind"] == "scene_still":
            scenes[image["scene"]]["still"] = image
    clips = [await p.clips.clip(b, scene, CALL) for scene in scenes]
    first = probe(assets.path(clips[0]["id"]))
    assert (first.video, first.size) == ("h264", (1080, 1920))
    assert first.duration_s == pytest.approx(3.0, abs=0.05)
    voice = await p.voiceover.voiceover(b, script["text"], 12.0, CALL)
    video, thumbnail = await p.stitching.stitch(b, clips, voice, CALL)
    assert (video["kind"], thumbnail["kind"]) == ("final_video", "thumbnail")
    info = probe(assets.path(video["id"]))
    assert info.video == "h264" and info.size == (1080, 1920)
    assert info.audio == "aac"
    assert info.duration_s == pytest.approx(12.0, abs=0.5)
    assert frame_variance(assets.path(video["id"]), 7.5, tmp_path) > 100
    assert "yuv420p" in ffmpeg_says(assets.path(video["id"]))
    with Image.open(assets.path(thumbnail["id"])) as thumb:
        assert thumb.format == "JPEG" and thumb.width == 540


@pytest.mark.parametrize("fmt", list(SIZES))
async def test_images_are_at_the_format_size(tmp_path: Path, fmt: str) -> None:
    assets = AssetStore(tmp_path)
    p = local_providers(assets)
    b = brief(fmt)
    scenes = await p.scenes.scenes(b, await p.script.script(b, None, CALL), CALL)
    assert p.images is not None
    images = await p.images.images(b, scenes, CALL)
    kinds = [i["kind"] for i in images]
    assert kinds == ["scene_still"] * 4 + ["product_shot", "banner", "flyer"]
    assert [i["scene"] for i in images[:4]] == [0, 1, 2, 3]
    for record in images:
        with Image.open(assets.path(record["id"])) as image:
            assert image.size == SIZES[fmt]
            assert sum(ImageStat.Stat(image.convert("RGB")).var) > 100


async def test_a_small_clip_renders_its_own_still_when_none_is_given(tmp_path: Path) -> None:
    assets = AssetStore(tmp_path)
    p = local_providers(assets, scale=0.25)
    scene = {"index": 1, "headline": "Save time", "visual": "x", "duration_s": 1.5}
    clip = await p.clips.clip(brief("1:1"), scene, CALL)
    info = probe(assets.path(clip["id"]))
    assert (info.video, info.size) == ("h264", (270, 270))
    assert info.duration_s == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize("length", [6.0, 12.0])
async def test_the_voiceover_fits_the_video(tmp_path: Path, length: float) -> None:
    assets = AssetStore(tmp_path)
    p = local_providers(assets)
    script = await p.script.script(brief(), None, CALL)
    voice = await p.voiceover.voiceover(brief(), script["text"], length, CALL)
    with wave.open(str(assets.path(voice["id"]))) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(length, abs=0.01)
        samples = w.readframes(w.getnframes())
    assert any(samples[len(samples) // 2 : len(samples) // 2 + 4000])  # speech mid-way


async def test_the_same_brief_gives_the_same_text(tmp_path: Path) -> None:
    p, q = local_providers(AssetStore(tmp_path / "a")), local_providers(AssetStore(tmp_path / "b"))
    b = brief()
    assert await p.ideas.ideas(b, 3, CALL) == await q.ideas.ideas(b, 3, CALL)
    script = await p.script.script(b, None, CALL)
    assert script == await q.script.script(b, None, CALL)
    assert await p.scenes.scenes(b, script, CALL) == await q.scenes.scenes(b, script, CALL)


async def test_temp_files_are_cleaned_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assets = AssetStore(tmp_path / "assets")
    p = local_providers(assets, scale=0.2)
    scene = {"index": 0, "headline": "Hi", "visual": "x", "duration_s": 0.5}
    clip = await p.clips.clip(brief("1:1"), scene, CALL)
    voice = await p.voiceover.voiceover(brief(), "Hello there.", 1.0, CALL)
    await p.stitching.stitch(brief("1:1"), [clip], voice, CALL)
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_lime_brief_is_green_and_a_coffee_brief_brown(tmp_path: Path) -> None:
    assets = AssetStore(tmp_path)
    p = local_providers(assets, scale=0.25)
    _, lime = await stills_for(p, LIME)
    _, coffee = await stills_for(p, COFFEE)
    for record in lime:
        with Image.open(assets.path(record["id"])) as image:
            green, brown = hue_shares(image)
        assert green > 0.8 and brown < 0.05, (record["kind"], green, brown)
    for record in coffee:
        with Image.open(assets.path(record["id"])) as image:
            green, brown = hue_shares(image)
        assert brown > 0.8 and green < 0.05, (record["kind"], green, brown)


async def test_a_clip_moves_over_its_still_with_the_words_on_top(tmp_path: Path) -> None:
    assets = AssetStore(tmp_path / "assets")
    p = local_providers(assets, scale=0.25)
    scenes, _ = await stills_for(p, LIME)
    clip = await p.clips.clip(LIME, scenes[1], CALL)
    middle = frame(assets.path(clip["id"]), 1.5, tmp_path)
    last = frame(assets.path(clip["id"]), 2.95, tmp_path)  # scene 1 zooms out onto the still
    with Image.open(assets.path(scenes[1]["still"]["id"])) as still:
        own = still.convert("RGB")
    with Image.open(assets.path(scenes[3]["still"]["id"])) as other:
        another = other.convert("RGB")
    flat = Image.new("RGB", own.size, tuple(int(c) for c in ImageStat.Stat(own).mean))
    below = difference(lower_half(last), lower_half(own))
    assert below < 4  # below the words, the last frame is the still itself
    assert difference(lower_half(middle), lower_half(last)) > 1  # which the clip moved over
    assert below * 5 < difference(lower_half(last), lower_half(flat))  # not a flat slide
    assert below * 5 < difference(lower_half(last), lower_half(another))  # nor another still
    assert sum(ImageStat.Stat(middle).var) > 1000
    words = middle.crop((0, 0, middle.width, middle.height // 3)).convert("L")
    assert words.histogram()[235:] != [0] * 21  # white type over the still's top
    assert sum(words.histogram()[235:]) > 2 * sum(
        own.crop((0, 0, own.width, own.height // 3)).convert("L").histogram()[235:]
    )


async def test_the_same_brief_renders_the_same_files(tmp_path: Path) -> None:
    made = []
    for store in ("a", "b"):
        p = local_providers(AssetStore(tmp_path / store), scale=0.2)
        scenes, images = await stills_for(p, COFFEE)
        short = {**scenes[3], "duration_s": 0.5}
        clip = await p.clips.clip(COFFEE, short, CALL)
        made.append([(r["kind"], r["id"]) for r in [*images, clip]])  # the id is the SHA-256
    assert made[0] == made[1]
    assert len({asset for _, asset in made[0]}) == len(made[0])  # and every file is its own
