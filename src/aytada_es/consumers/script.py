"""Script: the ad's words, from the chosen idea (or the brief alone)."""

from __future__ import annotations

from ..domain.project import Project
from ..domain.steps import Step
from ..providers.base import InvalidOutput
from .context import StageContext
from .steps import StepOutput, StepStage, brief_of, call_key


class ScriptStage(StepStage):
    name = "script"
    step = Step.SCRIPT
    reacts_to = frozenset({"ScriptRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        assert project.request is not None
        index = project.request["params"].get("idea")
        idea = project.ideas[index] if index is not None else None
        brief = brief_of(project)
        script = await ctx.once(
            call_key(project, version, self.step),
            lambda call: ctx.providers.script.script(brief, idea, call),
        )
        if not str(script.get("text", "")).strip():
            raise InvalidOutput("the provider returned an empty script")
        return StepOutput({"script": {**script, "idea_index": index}}, units=1)
