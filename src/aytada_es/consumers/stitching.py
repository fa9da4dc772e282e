"""Stitching: clips and voiceover merged into the final ad, with a thumbnail."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import Step
from .context import StageContext
from .steps import StepOutput, StepStage, brief_of, call_key


class StitchingStage(StepStage):
    name = "stitching"
    step = Step.STITCHING
    reacts_to = frozenset({"StitchingRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        clips = sorted(project.clips, key=lambda c: int(c["scene"]))
        brief, voiceover = brief_of(project), project.voiceover
        video, thumbnail = await ctx.once(
            call_key(project, version, self.step),
            lambda call: ctx.providers.stitching.stitch(brief, clips, voiceover, call),
        )
        return StepOutput({"video": video, "thumbnail": thumbnail}, units=1)
