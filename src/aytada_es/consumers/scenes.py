"""Scenes: the script broken into visual scenes."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import MAX_SCENE_SECONDS, MAX_SCENES, Step
from .base import StageContext, StepOutput, StepStage, brief_of


class ScenesStage(StepStage):
    name = "scenes"
    step = Step.SCENES
    reacts_to = frozenset({"ScenesRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        assert project.script is not None
        scenes = await ctx.providers.scenes.scenes(brief_of(project), project.script)
        if not 1 <= len(scenes) <= MAX_SCENES:
            raise ValueError(f"the provider returned {len(scenes)} scenes (1 to {MAX_SCENES})")
        for i, scene in enumerate(scenes):
            scene["index"] = i
            scene["duration_s"] = min(float(scene.get("duration_s", 3)), MAX_SCENE_SECONDS)
        return StepOutput({"scenes": scenes}, units=len(scenes))
