"""The relay's envelopes, written without the models, read back exactly as the models describe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from aytada_es.kafka.envelope import AccountEnvelope, Envelope, envelope_bytes
from aytada_es.notation import event_id, event_id_text, jsonable

names = st.text(min_size=1, max_size=8)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.uuids()
    | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)
fields = st.fixed_dictionaries(
    {
        "event_id": st.uuids(),
        "position": st.integers(1, 2**62),
        "version": st.integers(1, 2**31),
        "type": st.from_regex(r"[A-Z][A-Za-z0-9]{0,30}", fullmatch=True),
        "occurred_at": st.datetimes(timezones=st.just(UTC)),
        "data": st.dictionaries(names, values, max_size=6),
    }
)


@given(fields=fields, project=st.uuids())
def test_a_project_envelope_reads_back_as_the_model_built_from_the_same_values(
    fields: dict[str, Any], project: UUID
) -> None:
    value = envelope_bytes("project_id", project, **fields)
    read = Envelope.from_bytes(value)
    assert read == Envelope(project_id=project, **{**fields, "data": jsonable(fields["data"])})
    assert read.key == str(project).encode()


@given(fields=fields, account=st.uuids())
def test_an_account_envelope_reads_back_as_its_model(fields: dict[str, Any], account: UUID) -> None:
    value = envelope_bytes("account_id", account, **fields)
    read = AccountEnvelope.model_validate_json(value)
    assert read == AccountEnvelope(
        account_id=account, **{**fields, "data": jsonable(fields["data"])}
    )


def ideas_requested(data: dict[str, Any]) -> bytes:
    """The envelope of project 1's event 3 at position 7, an IdeasRequested holding `data`."""
    return envelope_bytes(
        "project_id",
        UUID(int=1),
        event_id=UUID(int=2),
        position=7,
        version=3,
        type="IdeasRequested",
        occurred_at=datetime(2026, 11, 29, 21, 0, tzinfo=UTC),
        data=data,
    )


def test_fields_come_in_the_contract_order() -> None:
    assert ideas_requested({"count": 3}) == (
        b'{"event_id":"00000000-0000-0000-0000-000000000002","position":7,'
        b'"project_id":"00000000-0000-0000-0000-000000000001","version":3,'
        b'"type":"IdeasRequested","occurred_at":"2026-11-29T21:00:00+00:00","data":{"count":3}}'
    )


def test_values_orjson_refuses_are_written_as_before() -> None:
    data = {"big": 2**70, "lone": "\ud800", "text": "café"}
    assert json.loads(ideas_requested(data))["data"] == data


@given(aggregate=st.uuids(), version=st.integers(1, 2**62))
def test_the_relays_event_id_is_the_uuid5_every_reader_computes(
    aggregate: UUID, version: int
) -> None:
    assert event_id_text(str(aggregate), version) == str(event_id(aggregate, version))
