"""Webhooks in the domain's words: the event types a user subscribes to, and the retry schedule."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

COMPLETED, FAILED, STATUS_CHANGED = "project.completed", "project.failed", "project.status_changed"
EVENT_TYPES = (COMPLETED, FAILED, STATUS_CHANGED)
# Standard Webhooks' schedule after the first attempt; its last wait repeats (docs/webhooks.md).
STANDARD_RETRY_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
GIVE_UP_S = 72 * 3600.0
_WEBHOOK_IDS = uuid.UUID("6f1c2a8e-52a4-4d0b-9a43-3b1f1f0c7e21")


def webhook_types(before: str | None, after: str) -> list[str]:
    """The webhook event types a project's status change from `before` to `after` makes."""
    if before is None or before == after:
        return []
    types = [STATUS_CHANGED]
    if after == "completed":
        types.append(COMPLETED)
    elif after == "failed":
        types.append(FAILED)
    return types


def webhook_id(endpoint_id: object, event_id: object, event_type: str) -> str:
    """The `webhook-id` of one event's delivery to one endpoint: the same on every attempt."""
    return "msg_" + uuid.uuid5(_WEBHOOK_IDS, f"{endpoint_id}/{event_id}/{event_type}").hex


@dataclass(frozen=True)
class RetrySchedule:
    """When a failed delivery is tried again: each wait in turn, the last one repeating, until
    `give_up_s` have passed since the first attempt; then the delivery has failed."""

    waits_s: tuple[float, ...] = STANDARD_RETRY_S
    give_up_s: float = GIVE_UP_S

    def next_attempt(
        self, attempts: int, first_attempt_at: datetime, now: datetime
    ) -> datetime | None:
        """After `attempts` failed attempts, when the next one is due; None: give up."""
        if (now - first_attempt_at).total_seconds() >= self.give_up_s:
            return None
        wait = self.waits_s[min(max(attempts, 1), len(self.waits_s)) - 1]
        return now + timedelta(seconds=wait)
