"""Scenes: the script broken into visual scenes, each with a still; and the library images."""

from __future__ import annotations

from ..domain.project import JSON, Project
from ..domain.steps import MAX_SCENE_SECONDS, MAX_SCENES, Step
from ..providers.base import InvalidOutput
from .context import StageContext
from .steps import StepOutput, StepStage, brief_of, call_key


class ScenesStage(StepStage):
    name = "scenes"
    step = Step.SCENES
    reacts_to = frozenset({"ScenesRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        assert project.script is not None
        brief, script = brief_of(project), project.script
        scenes: list[JSON] = await ctx.once(
            call_key(project, version, self.step),
            lambda call: ctx.providers.scenes.scenes(brief, script, call),
        )
        if not 1 <= len(scenes) <= MAX_SCENES:
            raise InvalidOutput(f"the provider returned {len(scenes)} scenes (1 to {MAX_SCENES})")
        for i, scene in enumerate(scenes):
            scene["index"] = i
            scene["duration_s"] = min(float(scene.get("duration_s", 3)), MAX_SCENE_SECONDS)
        images_provider = ctx.providers.images
        if images_provider is not None:
            images: list[JSON] = await ctx.once(
                call_key(project, version, self.step, "images"),
                lambda call: images_provider.images(brief, scenes, call),
            )
            for image in images:
                if image.get("kind") == "scene_still" and 0 <= image.get("scene", -1) < len(scenes):
                    scenes[image["scene"]]["still"] = image
            # Before the scenes are recorded: a render (autopilot) may start at once.
            await ctx.command(
                ctx.studio.add_assets, project.id, assets=images, actor=f"stage:{self.name}"
            )
        return StepOutput({"scenes": scenes}, units=len(scenes))
