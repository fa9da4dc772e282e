"""An autopilot project becomes a real, watchable MP4 with speech, offline, through the broker."""

from __future__ import annotations

import asyncio
import time

import pytest

from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.providers.local import local_providers
from aytada_es.providers.local.ffmpeg import probe

pytestmark = pytest.mark.kafka


async def test_an_autopilot_project_renders_a_real_ad_with_local_providers(
    settings: Settings, broker: str
) -> None:
    system = bootstrap(settings, bootstrap_servers=broker)
    system.providers = local_providers(system.assets, scale=0.25)  # small frames, same steps
    try:
        studio = system.studio
        owner = studio.open_account("alice", credits=1000)[0].id
        project = studio.create_project(
            owner,
            title="Sunrise Cold Brew",
            format="9:16",
            brief="Smooth cold brew coffee, ready in the fridge.",
            autopilot=True,
            actor="user:alice",
        )
        async with system.running():
            deadline = time.monotonic() + 120
            while studio.project(project.id).status != "completed":
                assert studio.project(project.id).status != "failed", studio.project(
                    project.id
                ).failure
                assert time.monotonic() < deadline, "the ad did not render in time"
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.3)
            images = system.read_models.images.images_of(owner)
        done = studio.project(project.id)
        assert done.final_video is not None and done.thumbnail is not None
        info = probe(system.assets.path(done.final_video["id"]))
        assert info.video is not None and "h264" in info.video
        assert info.audio is not None and "aac" in info.audio
        assert abs(info.duration_s - done.video_duration_s) < 0.6
        assert done.thumbnail["content_type"] == "image/jpeg"
        kinds = {i["kind"] for i in images}
        assert kinds == {"scene_still", "product_shot", "banner", "flyer"}
        assert done.reconciliation().consistent and done.still_reserved == 0
    finally:
        system.close()
