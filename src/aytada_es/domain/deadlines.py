"""How long a step may stay active before it is failed with `timed_out`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# What the cloud providers can legitimately take, with room for the stage's retries and a
# queue: an LLM answers in seconds, ElevenLabs in under a minute, a Shotstack render in minutes
# (one per clip, then the final one).
DEFAULT_DEADLINES_S: Mapping[str, float] = MappingProxyType(
    {
        "ideas": 120.0,
        "script": 120.0,
        "scenes": 120.0,
        "video": 900.0,
        "voiceover": 300.0,
        "stitching": 900.0,
    }
)
# Any other billed step (a plug-in's add-on).
DEFAULT_DEADLINE_S = 600.0
# A week: longer is surely a mistake in the setting.
MAX_DEADLINE_S = 7 * 24 * 3600.0


def deadline_problem(seconds: float) -> str | None:
    """Why a deadline cannot be used, or None (0 means the step has none)."""
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DEADLINE_S:
        return f"seconds from 0 (no deadline) to {MAX_DEADLINE_S:.0f}, not {seconds!r}"
    return None


@dataclass(frozen=True)
class Deadlines:
    """Each step's deadline in seconds from its request; 0 means no deadline."""

    by_step: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DEADLINES_S))
    default_s: float = DEFAULT_DEADLINE_S

    def __post_init__(self) -> None:
        for step, seconds in {**self.by_step, "default": self.default_s}.items():
            problem = deadline_problem(seconds)
            if problem is not None:
                raise ValueError(f"the deadline of {step}: {problem}")

    def of(self, step: str) -> float | None:
        """The step's deadline in seconds, or None when it has none."""
        seconds = self.by_step.get(step, self.default_s)
        return seconds or None
