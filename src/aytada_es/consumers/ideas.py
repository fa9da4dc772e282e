"""Ideas: ad concepts from the brief."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import Step
from ..providers.base import InvalidOutput
from .context import StageContext
from .steps import StepOutput, StepStage, brief_of, call_key


class IdeasStage(StepStage):
    name = "ideas"
    step = Step.IDEAS
    reacts_to = frozenset({"IdeasRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        assert project.request is not None
        count = int(project.request["params"]["count"])
        brief = brief_of(project)
        ideas = await ctx.once(
            call_key(project, version, self.step),
            lambda call: ctx.providers.ideas.ideas(brief, count, call),
        )
        if not ideas:
            raise InvalidOutput("the provider returned no ideas")
        return StepOutput({"ideas": ideas[:count]}, units=len(ideas[:count]))
