"""The provider interfaces the stages call, one per generation step.

A provider set is chosen by `AYTADA_PROVIDERS`. Each method does one generation and
returns plain data (JSON-able dicts; assets as records from the `AssetStore`). A provider
raises `ProviderError` for a failure worth retrying and `PermanentProviderError` for one
that is not (bad credentials, a malformed answer): the stage fails the step at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

JSON = dict[str, Any]


class ProviderError(Exception):
    """A provider call failed; the stage may try again."""


class PermanentProviderError(ProviderError):
    """A provider call failed in a way that trying again cannot fix."""


@dataclass(frozen=True)
class Brief:
    """What every provider may know about the project it works for."""

    project_id: UUID
    title: str
    format: str
    brief: str


class IdeasProvider(Protocol):
    async def ideas(self, brief: Brief, count: int) -> list[JSON]: ...


class ScriptProvider(Protocol):
    async def script(self, brief: Brief, idea: JSON | None) -> JSON: ...


class ScenesProvider(Protocol):
    async def scenes(self, brief: Brief, script: JSON) -> list[JSON]: ...


class ClipProvider(Protocol):
    async def clip(self, brief: Brief, scene: JSON) -> JSON: ...


class VoiceoverProvider(Protocol):
    async def voiceover(self, brief: Brief, text: str, duration_s: float) -> JSON: ...


class StitchingProvider(Protocol):
    async def stitch(
        self, brief: Brief, clips: list[JSON], voiceover: JSON | None
    ) -> tuple[JSON, JSON]: ...


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
