"""The generation steps of the pipeline, the status each runs in, and what each costs."""

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

    def cost(self, units: int) -> int:
        """Credits for the units a step really used."""
        return math.ceil(max(units, 0) / self.units_per_charge) * self.credits_per_unit


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
