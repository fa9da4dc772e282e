"""The six built-in steps of the pipeline share this: act once per request, record, charge."""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from ..domain.failures import FailureCode
from ..domain.project import JSON, Project
from ..domain.steps import Step
from ..domain.storable import output_problem
from ..kafka.envelope import Envelope
from ..providers.base import Brief
from ..providers.limited import calls_for
from .context import StageContext, StepAbandoned
from .stage import Done, Failed, Outcome, Stage, outcome_of


@dataclass(frozen=True)
class StepOutput:
    """A step's result and the units it really used (what it is charged for)."""

    result: JSON
    units: int


class StepStage(Stage):
    """A step of the pipeline: handles the project's current request once, then charges it.

    Set `step` and implement `generate`. A message whose request is no longer the project's
    current one (a repeat, a cancel, a delete) is done at once; work in flight is abandoned as
    soon as its request is withdrawn; success records the generation and the result and charges
    the real cost; when the runner gives up, the failure is recorded and the reservation
    released.
    """

    step: ClassVar[Step]

    @abstractmethod
    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        """Do the generation for the project's current request."""

    async def handle(self, envelope: Envelope, ctx: StageContext) -> Outcome:
        if await ctx.settled(envelope, self.step):
            return Done()  # settled before (a republished request): no need to load the project
        project = await ctx.project(envelope.project_id, at_least=envelope.version)
        if not project.is_current(self.step, envelope.version):
            return Done()  # handled already (a repeated message), cancelled or superseded
        step, version = self.step, envelope.version
        try:
            with calls_for(str(project.owner_id)):  # the fair order at limited providers
                output = await ctx.while_current(
                    lambda p: p.is_current(step, version),
                    project.id,
                    self.generate(project, version, ctx),
                )
        except StepAbandoned:
            return Done()
        except Exception as e:
            return outcome_of(e)
        problem = output_problem(output.result, path="result")
        if problem is not None:
            return Failed(FailureCode.INVALID_OUTPUT, f"InvalidOutput: {problem}")
        await ctx.command(
            ctx.studio.complete_step,
            project.id,
            step=step,
            version=version,
            result=output.result,
            generation=ctx.generation(self.version, output.units),
            actor=f"stage:{self.name}",
        )
        return Done()

    async def give_up(self, envelope: Envelope, failed: Failed, ctx: StageContext) -> bool:
        await ctx.command(
            ctx.studio.fail_step,
            envelope.project_id,
            step=self.step,
            version=envelope.version,
            code=failed.code,
            error=failed.reason,
            generation=ctx.generation(self.version, 0),
            actor=f"stage:{self.name}",
        )
        return True


def call_key(project: Project, version: int, step: Step | str, item: str = "") -> str:
    """The idempotency key of one provider call for one request."""
    return f"{project.id}/{version}/{step}" + (f"/{item}" if item else "")


def brief_of(project: Project) -> Brief:
    return Brief(project.id, project.title, project.format, project.brief)


def seconds(scenes: list[JSON]) -> int:
    return math.ceil(sum(float(s.get("duration_s", 0)) for s in scenes))
