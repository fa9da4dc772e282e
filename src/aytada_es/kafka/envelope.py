"""The message every stored event becomes on Kafka (docs/api.md §5)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..notation import json_default

# The event type, also as a header, so a consumer can pass over what it does not react to
# without decoding it.
TYPE_HEADER = "event-type"


class Envelope(BaseModel):
    """`{"event_id", "position", "project_id", "version", "type", "occurred_at", "data"}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    position: int = Field(ge=1)
    project_id: UUID
    version: int = Field(ge=1)
    type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Z][A-Za-z0-9]*$")
    occurred_at: datetime
    data: dict[str, Any]

    @property
    def key(self) -> bytes:
        return str(self.project_id).encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, value: bytes | None) -> Envelope:
        """Decode and validate; raises pydantic.ValidationError or ValueError."""
        if value is None:
            raise ValueError("empty message")
        return cls.model_validate_json(value)


class AccountEnvelope(BaseModel):
    """The same envelope for account events (topic aytada.account-events), keyed by account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    position: int
    account_id: UUID
    version: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]

    @property
    def key(self) -> bytes:
        return str(self.account_id).encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def envelope_bytes(
    id_field: str,
    aggregate_id: UUID | str,
    *,
    event_id: UUID | str,
    position: int,
    version: int,
    type: str,
    occurred_at: datetime,
    data: Mapping[str, Any],
) -> bytes:
    """An envelope's JSON written straight from stored values, as the models would write it.

    The relay publishes what the store holds and validated when it was saved; validating each
    one again on the way out cost more than the rest of publishing it. Consumers still
    validate every message with `Envelope.from_bytes`.
    """
    envelope = {
        "event_id": str(event_id),
        "position": position,
        id_field: str(aggregate_id),
        "version": version,
        "type": type,
        "occurred_at": occurred_at.isoformat(),
        "data": data,
    }
    try:  # orjson writes ids and times as `json_default` does, and the same JSON otherwise
        return orjson.dumps(envelope, default=json_default)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate
        return json.dumps(envelope, default=json_default, separators=(",", ":")).encode()
