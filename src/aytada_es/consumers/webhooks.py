"""Webhooks, as a stage: each status change of a project becomes deliveries in the outbox of
every endpoint its owner registered for it; the deliverer (aytada_es/deliverer.py) sends them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..adapters.webhooks import Webhooks
from ..domain.webhooks import webhook_id, webhook_types
from ..kafka.envelope import Envelope
from ..notation import utc_iso
from ..projections import project_card
from .context import StageContext
from .stage import Done, Stage

# Every project event that may change its status (credit and record events never do).
STATUS_EVENTS = frozenset(
    {
        "IdeasRequested",
        "ScriptRequested",
        "ScenesRequested",
        "VideoRequested",
        "VoiceoverRequested",
        "StitchingRequested",
        "IdeasGenerated",
        "ScriptGenerated",
        "ScenesGenerated",
        "ClipRendered",
        "VideoGenerated",
        "VoiceoverGenerated",
        "VideoStitched",
        "StepFailed",
        "StepCancelled",
        "StepRetried",
        "AutopilotPaused",
        "ProjectDeleted",
        "ProjectRestored",
    }
)


class EndpointDirectory:
    """Every live endpoint, read once for all the lookups that wait together.

    A lookup is answered by a read that began after it was asked, so it sees every endpoint
    registered before its event; lanes handling events side by side share one read instead
    of each paying for a query of its own (one per status change was a fifth of the
    pipeline's CPU).
    """

    def __init__(self, read: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        self._read = read
        self._lock = asyncio.Lock()
        self._started = 0  # reads begun
        self._answered = 0  # the number of the last read that finished
        self._endpoints: list[dict[str, Any]] = []

    async def of(self, owner_id: str, created_by: float) -> list[dict[str, Any]]:
        """The owner's endpoints registered by `created_by` (an event's time)."""
        return [e for e in await self.registered_by(created_by) if e["owner_id"] == owner_id]

    async def registered_by(self, created_by: float) -> list[dict[str, Any]]:
        """Every user's endpoints registered by `created_by` (an event's time)."""
        asked = self._started
        async with self._lock:
            if self._answered <= asked:  # no read began after this lookup: read now
                self._started += 1
                number = self._started
                self._endpoints = await self._read()
                self._answered = number
            endpoints = self._endpoints
        return [e for e in endpoints if e["created_at"] <= created_by]


class WebhookStage(Stage):
    """Records a delivery per subscribed endpoint of each status change; never waits on one."""

    name = "webhooks"
    reacts_to = STATUS_EVENTS

    def __init__(self) -> None:
        self._webhooks: Webhooks | None = None
        self._directory: EndpointDirectory | None = None

    async def handle(self, envelope: Envelope, ctx: StageContext) -> Done:
        webhooks = self._webhooks
        if webhooks is None:
            webhooks = self._webhooks = await ctx.call(Webhooks, ctx.database())
        directory = self._directory
        if directory is None:
            directory = self._directory = EndpointDirectory(
                lambda: ctx.call(webhooks.live_endpoints)
            )
        # Endpoints registered after the event hear nothing of it (the log may come again).
        occurred = envelope.occurred_at.timestamp()
        registered = await directory.registered_by(occurred)
        if not registered or envelope.version < 2:
            return Done()  # nobody to tell: the project need not be loaded (a replay is cheap)
        latest = await ctx.project(envelope.project_id, at_least=envelope.version)
        owner = str(latest.owner_id)
        endpoints = [e for e in registered if e["owner_id"] == owner]
        if not endpoints:
            return Done()
        after = await ctx.project_at(envelope.project_id, envelope.version)
        before = await ctx.project_at(envelope.project_id, envelope.version - 1)
        types = webhook_types(str(before.status), str(after.status))
        if not types:
            return Done()
        card = project_card(after)
        deliveries: list[dict[str, Any]] = []
        for endpoint in endpoints:
            for event_type in types:
                if event_type not in endpoint["events"]:
                    continue
                body = {
                    "type": event_type,
                    "timestamp": utc_iso(envelope.occurred_at),
                    "data": card,
                }
                deliveries.append(
                    {
                        "webhook_id": webhook_id(endpoint["id"], envelope.event_id, event_type),
                        "endpoint_id": endpoint["id"],
                        "event_id": str(envelope.event_id),
                        "event_type": event_type,
                        "project_id": str(envelope.project_id),
                        "body": json.dumps(body, separators=(",", ":")),
                        "created_at": occurred,
                    }
                )
        if deliveries:
            await ctx.call(webhooks.record, deliveries)
        return Done()
