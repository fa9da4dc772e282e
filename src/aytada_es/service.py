"""What the web edge is given of the system it serves, so that it never loads the rest of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .adapters.assets import AssetStore
from .application import Studio
from .config import Settings
from .metrics import Metrics
from .projections import ReadModels


class Parts(Protocol):
    """The parts a process runs besides the web edge (relay, stages, projections, broker)."""

    def health(self) -> dict[str, bool]:
        """Which parts are up: their task runs and is not waiting to restart."""

    async def broker_answers(self) -> bool:
        """Whether the Kafka broker answers a metadata request in time."""


@dataclass(frozen=True)
class Service:
    """The studio's commands, the read models, the assets, the settings, health and metrics."""

    settings: Settings
    studio: Studio
    read_models: ReadModels
    assets: AssetStore
    metrics: Metrics
    parts: Parts
    # The other roles this process runs (none in `worker web`); `parts` answers for them.
    roles: tuple[str, ...] = ()
