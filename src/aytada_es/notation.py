"""How stored events and their values are written outside the store: on Kafka, in the API, in
audits. Below everything that shows them, so none of them borrows from another."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

_EVENTS = uuid5(NAMESPACE_URL, "aytada-es:events")


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """The same stored event always has the same id, however often it is published."""
    return uuid5(_EVENTS, f"{aggregate_id}:{version}")


def jsonable(value: Any) -> Any:
    """Domain values as JSON: UUIDs and datetimes as strings."""
    return json.loads(json.dumps(value, default=json_default))


def json_default(value: Any) -> Any:
    """What `json.dumps` writes for the domain's values that JSON has no type for."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC, as cards show times: `2025-05-01T09:30:00.250000Z`."""
    if moment.tzinfo is not UTC:  # stored times come back in UTC: no copy for them
        moment = moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")
