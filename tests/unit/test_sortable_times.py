"""Times as the read models store them: text order is time order, as strftime wrote them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from aytada_es.notation import utc_iso
from aytada_es.projections.videos import _sortable

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30)), timezone(timedelta(0))])


@given(st.datetimes(timezones=ZONES))
def test_a_sortable_time_is_what_strftime_writes(moment: datetime) -> None:
    assert _sortable(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(st.datetimes(timezones=ZONES))
def test_a_utc_time_is_written_as_before(moment: datetime) -> None:
    assert utc_iso(moment) == moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
