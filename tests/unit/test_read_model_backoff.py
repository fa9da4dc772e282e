"""The back-off of a stopped read model: 1 s doubling to 60 s, each wait shortened at random."""

from __future__ import annotations

from aytada_es.projections import Backoff


def test_the_wait_doubles_from_one_second_to_at_most_a_minute_with_jitter() -> None:
    backoff = Backoff()
    for attempts, full in ((1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (50, 60), (10_000, 60)):
        waits = {backoff.delay(attempts) for _ in range(200)}
        assert all(0.75 * full <= w <= full for w in waits), (attempts, min(waits), max(waits))
        assert len(waits) > 100  # jitter: read models stopped together retry apart
