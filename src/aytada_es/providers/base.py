"""The provider interfaces the stages call, one per generation step.

A provider set is chosen by `AYTADA_PROVIDERS`. Each method does one generation and
returns plain data (JSON-able dicts; assets as records from the `AssetStore`). A failure is
raised as one of these, whose `failure_code` tells the person what happened:

    ProviderError                 retryable: unavailable, a 5xx, a timeout
    ├── RateLimited               retryable: the provider asked us to slow down
    └── PermanentProviderError    trying again cannot fix it: the stage fails the step at once
        └── InvalidOutput         the provider answered something we cannot use

A provider class may declare `limit_key = "name"`: its calls then wait for the limits
`AYTADA_LIMIT_<NAME>_*`, shared by every stage worker (`providers/limited.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from ..domain.failures import FailureCode

JSON = dict[str, Any]


class ProviderError(Exception):
    """A provider call failed; the stage may try again."""

    failure_code = FailureCode.PROVIDER_UNAVAILABLE


class RateLimited(ProviderError):
    """The provider refused the call for now; `retry_after_s` is when it said to come back."""

    failure_code = FailureCode.RATE_LIMITED

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentProviderError(ProviderError):
    """A provider call failed in a way that trying again cannot fix."""

    failure_code = FailureCode.PROVIDER_REJECTED


class InvalidOutput(PermanentProviderError):
    """The provider answered, but with something the step cannot use."""

    failure_code = FailureCode.INVALID_OUTPUT


@dataclass(frozen=True)
class Brief:
    """What every provider may know about the project it works for."""

    project_id: UUID
    title: str
    format: str
    brief: str


async def _forget(_: str) -> None:
    return None


@dataclass(frozen=True)
class Call:
    """One paid provider call: its idempotency key, and what an interrupted attempt left.

    `resume_id` is the remote job id (a Shotstack render id) that an earlier attempt
    recorded before it was interrupted: poll that job instead of starting a new one.
    Call `record_id` as soon as the remote side gives you such an id.
    """

    key: str
    resume_id: str | None = None
    record_id: Callable[[str], Awaitable[None]] = field(default=_forget)


class IdeasProvider(Protocol):
    async def ideas(self, brief: Brief, count: int, call: Call) -> list[JSON]: ...


class ScriptProvider(Protocol):
    async def script(self, brief: Brief, idea: JSON | None, call: Call) -> JSON: ...


class ScenesProvider(Protocol):
    async def scenes(self, brief: Brief, script: JSON, call: Call) -> list[JSON]: ...


class ClipProvider(Protocol):
    async def clip(self, brief: Brief, scene: JSON, call: Call) -> JSON: ...


class VoiceoverProvider(Protocol):
    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> JSON: ...


class StitchingProvider(Protocol):
    async def stitch(
        self, brief: Brief, clips: list[JSON], voiceover: JSON | None, call: Call
    ) -> tuple[JSON, JSON]: ...


class ImagesProvider(Protocol):
    async def images(self, brief: Brief, scenes: list[JSON], call: Call) -> list[JSON]:
        """Library images of the project: a product shot, a banner and a flyer."""
        ...


@dataclass(frozen=True)
class Providers:
    """The provider of every step, with the name recorded in generation records."""

    name: str
    ideas: IdeasProvider
    script: ScriptProvider
    scenes: ScenesProvider
    clips: ClipProvider
    voiceover: VoiceoverProvider
    stitching: StitchingProvider
    images: ImagesProvider | None = None
    billed: bool = True  # whose calls cost money, so they go through the call ledger
