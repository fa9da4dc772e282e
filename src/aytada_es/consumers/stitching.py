"""Stitching: clips and voiceover merged into the final ad, with a thumbnail."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import Step
from .base import StageContext, StepOutput, StepStage, brief_of


class StitchingStage(StepStage):
    name = "stitching"
    step = Step.STITCHING
    reacts_to = frozenset({"StitchingRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        clips = sorted(project.clips, key=lambda c: int(c["scene"]))
        video, thumbnail = await ctx.providers.stitching.stitch(
            brief_of(project), clips, project.voiceover
        )
        return StepOutput({"video": video, "thumbnail": thumbnail}, units=1)
