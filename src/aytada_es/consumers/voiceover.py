"""Voiceover: the script spoken, fitted to the video's length."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import Step
from .base import StageContext, StepOutput, StepStage, brief_of


class VoiceoverStage(StepStage):
    name = "voiceover"
    step = Step.VOICEOVER
    reacts_to = frozenset({"VoiceoverRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        assert project.script is not None
        text = str(project.script["text"])
        asset = await ctx.providers.voiceover.voiceover(
            brief_of(project), text, project.video_duration_s
        )
        return StepOutput({"asset": asset}, units=len(text))
