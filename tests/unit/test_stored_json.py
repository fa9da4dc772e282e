"""Stored events' JSON read with orjson gives exactly what the library's own decoder gives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from hypothesis import given
from hypothesis import strategies as st

from aytada_es.adapters.stored_json import StoredJSON


def _pair() -> tuple[JSONTranscoder, StoredJSON]:
    library, ours = JSONTranscoder(), StoredJSON()
    app = Application[UUID]()
    app.register_transcodings(library)
    app.register_transcodings(ours)
    return library, ours


LIBRARY, OURS = _pair()
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson refuses those, the fallback reads them
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # lone surrogates too, written escaped
    | st.uuids()
    | st.datetimes(timezones=st.just(UTC))
    | st.decimals(allow_nan=False, allow_infinity=False)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    # NaN is not equal to itself; compare its repr instead.
    return repr(a) == repr(b) and type(a) is type(b)


@given(st.dictionaries(st.text(), _VALUES, max_size=6))
def test_any_stored_state_decodes_to_the_same_values(state: dict[str, Any]) -> None:
    data = LIBRARY.encode(state)
    assert _same(OURS.decode(data), LIBRARY.decode(data))
    assert OURS.encode(state) == data  # written byte for byte as before: the chain seals it


def test_typed_values_nested_in_lists_and_objects_come_back_typed() -> None:
    moment, id = datetime(2026, 12, 5, 21, 0, tzinfo=UTC), UUID(int=7)
    state = {"timestamp": moment, "assets": [{"id": id, "price": Decimal("1.50")}], "n": 2**70}
    decoded = OURS.decode(LIBRARY.encode(state))
    assert decoded == state
    assert type(decoded["assets"][0]["id"]) is UUID and decoded["n"] == 2**70


def test_an_unknown_type_fails_as_the_library_fails() -> None:
    data = b'{"at":{"_type_":"moon_phase","_data_":"full"}}'
    for transcoder in (LIBRARY, OURS):
        with pytest.raises(TranscodingNotRegisteredError):
            transcoder.decode(data)
    with pytest.raises(ValueError):
        OURS.decode(b'{"broken":')
