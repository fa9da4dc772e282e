"""Webhooks, as a stage: each status change of a project becomes deliveries in the outbox of
every endpoint its owner registered for it; the deliverer (aytada_es/deliverer.py) sends them."""

from __future__ import annotations

import json
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


class WebhookStage(Stage):
    """Records a delivery per subscribed endpoint of each status change; never waits on one."""

    name = "webhooks"
    reacts_to = STATUS_EVENTS

    def __init__(self) -> None:
        self._webhooks: Webhooks | None = None

    async def handle(self, envelope: Envelope, ctx: StageContext) -> Done:
        webhooks = self._webhooks
        if webhooks is None:
            webhooks = self._webhooks = await ctx.call(Webhooks, ctx.database())
        latest = await ctx.project(envelope.project_id, at_least=envelope.version)
        # Endpoints registered after the event hear nothing of it (the log may come again).
        occurred = envelope.occurred_at.timestamp()
        endpoints = await ctx.call(webhooks.subscribers, latest.owner_id, occurred)
        if not endpoints or envelope.version < 2:
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
