"""Voiceover: the script spoken, fitted to the video's length."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import Step
from .context import StageContext
from .steps import StepOutput, StepStage, brief_of, call_key


class VoiceoverStage(StepStage):
    name = "voiceover"
    step = Step.VOICEOVER
    reacts_to = frozenset({"VoiceoverRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        assert project.script is not None
        text = str(project.script["text"])
        brief, duration_s = brief_of(project), project.video_duration_s
        asset = await ctx.once(
            call_key(project, version, self.step),
            lambda call: ctx.providers.voiceover.voiceover(brief, text, duration_s, call),
        )
        return StepOutput({"asset": asset}, units=len(text))
