"""Scenes: the script broken into visual scenes."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import MAX_SCENE_SECONDS, MAX_SCENES, Step
from .base import StageContext, StepOutput, StepStage, brief_of, call_key


class ScenesStage(StepStage):
    name = "scenes"
    step = Step.SCENES
    reacts_to = frozenset({"ScenesRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        assert project.script is not None
        brief, script = brief_of(project), project.script
        scenes = await ctx.once(
            call_key(project, version, self.step),
            lambda call: ctx.providers.scenes.scenes(brief, script, call),
        )
        if not 1 <= len(scenes) <= MAX_SCENES:
            raise ValueError(f"the provider returned {len(scenes)} scenes (1 to {MAX_SCENES})")
        for i, scene in enumerate(scenes):
            scene["index"] = i
            scene["duration_s"] = min(float(scene.get("duration_s", 3)), MAX_SCENE_SECONDS)
        return StepOutput({"scenes": scenes}, units=len(scenes))
