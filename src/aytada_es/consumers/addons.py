"""Billed steps of plug-in stages: run once per trigger, charged at the price they declare."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from ..domain.failures import FailureCode
from ..domain.project import JSON, Project
from ..domain.steps import Price
from ..domain.storable import output_problem
from ..kafka.envelope import Envelope
from ..providers.limited import calls_for
from .context import StageContext, StepAbandoned
from .stage import Done, Failed, Outcome, Stage, outcome_of


@dataclass(frozen=True)
class AddOnOutput:
    """What an add-on made: the asset records it stored, and the units it is charged for."""

    assets: list[JSON]
    units: int


class AddOnStage(Stage):
    """A billed step a plug-in adds to a project, after an event of the pipeline.

    Declare `name`, `version`, `reacts_to` (the trigger, e.g. `{"VideoStitched"}`), `records`
    (every asset kind it stores, with its label) and `price` (a `Price`: credits per unit);
    implement `generate`, and `estimate_units` when one unit is not the most it can use.

    For each trigger event the base class, once per version of the trigger, reserves
    `price.cost(estimate_units(project))` from the owner's balance (when the balance cannot
    cover it the add-on is skipped, and the project says so), calls `generate`, checks what it
    returns, records the assets and a generation record with `version`, and charges the
    real cost, never more than the reservation. A repeated trigger does nothing; a delete
    meanwhile abandons the work and releases the reservation; when the runner gives up, the
    failure is recorded and the reservation released.
    """

    price: ClassVar[Price]

    def estimate_units(self, project: Project) -> int:
        """The most units `generate` can use for this project (what is reserved)."""
        return 1

    @abstractmethod
    async def generate(self, project: Project, ctx: StageContext) -> AddOnOutput:
        """Make the add-on's files for the project (off the event loop when it blocks)."""

    async def handle(self, envelope: Envelope, ctx: StageContext) -> Outcome:
        trigger = await ctx.project(envelope.project_id, at_least=envelope.version)
        version = await ctx.command(
            ctx.studio.request_addon,
            trigger.id,
            step=self.name,
            trigger_version=envelope.version,
            estimate=self.price.cost(self.estimate_units(trigger)),
            stage_version=self.version,
            actor=self.actor,
        )
        if version is None:
            return Done()  # acted on already, skipped, or deleted
        project = await ctx.project(trigger.id, at_least=version)
        step = self.name
        try:
            with calls_for(str(project.owner_id)):  # the fair order at limited providers
                output = await ctx.while_current(
                    lambda p: p.is_current_addon(step, version),
                    project.id,
                    self.generate(project, ctx),
                )
        except StepAbandoned:
            return Done()
        except Exception as e:
            return outcome_of(e)
        problem = self._problem(output)
        if problem is not None:
            return Failed(FailureCode.INVALID_OUTPUT, f"InvalidOutput: {problem}")
        await ctx.command(
            ctx.studio.complete_addon,
            project.id,
            step=step,
            version=version,
            price=self.price,
            assets=output.assets,
            generation=ctx.generation(self.version, output.units),
            actor=self.actor,
        )
        return Done()

    async def give_up(self, envelope: Envelope, failed: Failed, ctx: StageContext) -> bool:
        project = await ctx.project(envelope.project_id, at_least=envelope.version)
        addon = project.addon(self.name)
        if addon is None or addon["state"] != "requested":
            return True  # nothing waits for it any more
        await ctx.command(
            ctx.studio.fail_addon,
            project.id,
            step=self.name,
            version=int(addon["version"]),
            code=failed.code,
            error=failed.reason,
            generation=ctx.generation(self.version, 0),
            actor=self.actor,
        )
        return True

    @property
    def actor(self) -> str:
        return f"stage:{self.name}"

    def _problem(self, output: AddOnOutput) -> str | None:
        for asset in output.assets:
            if asset.get("kind") not in self.records:
                return f"an asset of kind {asset.get('kind')!r}, not one of {sorted(self.records)}"
        if isinstance(output.units, bool) or not isinstance(output.units, int):
            return "units must be a whole number"
        return output_problem(output.assets, path="assets")
