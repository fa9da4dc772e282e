"""How stored events and their values are written outside the store: on Kafka, in the API, in
audits. Below everything that shows them, so none of them borrows from another."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

_EVENTS = uuid5(NAMESPACE_URL, "aytada-es:events")


_EVENTS_BYTES = _EVENTS.bytes


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """The same stored event always has the same id, however often it is published."""
    return uuid5(_EVENTS, f"{aggregate_id}:{version}")


def event_id_text(aggregate_id: str, version: int) -> str:
    """`str(event_id(...))` of an aggregate id given as text, as fast as a relay needs it."""
    # uuid5 is sha1 over namespace and name, with version (5) and variant bits set.
    name = _EVENTS_BYTES + f"{aggregate_id}:{version}".encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
