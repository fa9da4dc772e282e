"""The generation steps of the pipeline, the status each runs in, and what each costs.

The six steps of the pipeline are the contract's status machine and live here. A plug-in stage
adds a billed step of its own (an add-on, run after the step that triggers it) by declaring its
`Price`; the application passes that price to the project's add-on commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from .status import Status


class Step(StrEnum):
    IDEAS = "ideas"
    SCRIPT = "script"
    SCENES = "scenes"
    VIDEO = "video"
    VOICEOVER = "voiceover"
    STITCHING = "stitching"


@dataclass(frozen=True)
class Price:
    """What a step costs: `credits_per_unit` credits per `units_per_charge` units of `unit`."""

    unit: str
    credits_per_unit: int
    units_per_charge: int = 1

    def __post_init__(self) -> None:
        if self.credits_per_unit < 0 or self.units_per_charge < 1:
            raise ValueError(f"a price needs credits >= 0 per units >= 1, not {self}")

    def cost(self, units: int) -> int:
        """Credits for the units a step really used."""
        return math.ceil(max(units, 0) / self.units_per_charge) * self.credits_per_unit


@dataclass(frozen=True)
class StepSpec:
    """How one step runs: its active status, where success leads, and its price."""

    step: Step
    status: Status
    request_event: str
    next_step: Step | None  # requested at once on success (render runs with no stop)
    done_status: Status | None  # where success lands when there is no next step
    unit: str
    credits_per_unit: int
    units_per_charge: int = 1  # e.g. one charge per 100 voiceover characters

    @property
    def price(self) -> Price:
        return Price(self.unit, self.credits_per_unit, self.units_per_charge)

    def cost(self, units: int) -> int:
        """Credits for the units a step really used."""
        return self.price.cost(units)


SPECS: dict[Step, StepSpec] = {
    s.step: s
    for s in (
        StepSpec(
            Step.IDEAS,
            Status.GENERATING_IDEAS,
            "IdeasRequested",
            None,
            Status.IDEAS_READY,
            "idea",
            1,
        ),
        StepSpec(
            Step.SCRIPT,
            Status.GENERATING_SCRIPT,
            "ScriptRequested",
            None,
            Status.SCRIPT_READY,
            "script",
            2,
        ),
        StepSpec(
            Step.SCENES,
            Status.GENERATING_SCENES,
            "ScenesRequested",
            None,
            Status.SCENES_READY,
            "scene",
            1,
        ),
        StepSpec(
            Step.VIDEO,
            Status.GENERATING_VIDEO,
            "VideoRequested",
            Step.VOICEOVER,
            None,
            "clip second",
            1,
        ),
        StepSpec(
            Step.VOICEOVER,
            Status.GENERATING_VOICEOVER,
            "VoiceoverRequested",
            Step.STITCHING,
            None,
            "character",
            1,
            units_per_charge=100,
        ),
        StepSpec(
            Step.STITCHING,
            Status.STITCHING,
            "StitchingRequested",
            None,
            Status.COMPLETED,
            "render",
            5,
        ),
    )
}

STEP_OF_STATUS: dict[Status, Step] = {spec.status: spec.step for spec in SPECS.values()}

MAX_IDEAS = 5
DEFAULT_IDEAS = 3
MAX_SCENES = 6
MAX_SCENE_SECONDS = 6
# Estimates for text not yet written: the longest script a 12-30 s ad takes.
MAX_SCRIPT_CHARACTERS = 600


def chain(step: Step) -> list[Step]:
    """The step and every step it leads to with no stop (render: video, voiceover, stitching)."""
    steps = [step]
    while (following := SPECS[steps[-1]].next_step) is not None:
        steps.append(following)
    return steps
