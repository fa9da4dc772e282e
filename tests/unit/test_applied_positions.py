"""Waiting for read models to apply a position: woken by the runner, or by looking again."""

from __future__ import annotations

import asyncio
import threading
import time

from aytada_es.projections.applied import AppliedPositions


class Tracked:
    """Positions as the table holds them; counts how often they are read."""

    def __init__(self, **positions: int) -> None:
        self.positions = dict(positions)
        self.reads = 0
        self.looked = threading.Event()

    def __call__(self) -> dict[str, int]:
        self.reads += 1
        self.looked.set()
        return dict(self.positions)


async def test_a_position_already_applied_answers_after_one_look() -> None:
    tracked = Tracked(videos=7, credits=3)
    applied = AppliedPositions(tracked, poll_s=60)
    assert await applied.reach(7, ["videos"], timeout_s=5)
    assert tracked.reads == 1


async def test_every_named_read_model_must_have_applied_it() -> None:
    applied = AppliedPositions(Tracked(videos=9, credits=3), poll_s=0.01)
    began = time.monotonic()
    assert not await applied.reach(5, ["videos", "credits"], timeout_s=0.2)
    assert 0.2 <= time.monotonic() - began < 1.0


async def test_the_runner_advancing_wakes_a_wait_at_once_from_its_thread() -> None:
    tracked = Tracked(videos=1)
    applied = AppliedPositions(tracked, poll_s=60)  # no look again: only a wake-up can end it
    waiting = asyncio.create_task(applied.reach(5, ["videos"], timeout_s=10))
    assert await asyncio.to_thread(tracked.looked.wait, 5)  # the wait has looked once

    def runner_commits_a_batch() -> None:
        tracked.positions["videos"] = 5
        applied.advanced()

    began = time.monotonic()
    threading.Thread(target=runner_commits_a_batch).start()
    assert await waiting
    assert time.monotonic() - began < 1.0


async def test_without_a_runner_here_a_wait_looks_again_every_poll() -> None:
    tracked = Tracked(videos=1)
    applied = AppliedPositions(tracked, poll_s=0.02)
    waiting = asyncio.create_task(applied.reach(5, ["videos"], timeout_s=10))
    assert await asyncio.to_thread(tracked.looked.wait, 5)
    tracked.positions["videos"] = 6  # another process applied it; nobody calls advanced()
    assert await waiting
    assert tracked.reads >= 2


async def test_a_wait_that_ends_leaves_nothing_registered() -> None:
    applied = AppliedPositions(Tracked(videos=0), poll_s=0.01)
    assert not await applied.reach(1, ["videos"], timeout_s=0.05)
    assert await AppliedPositions(Tracked(videos=2)).reach(1, ["videos"], timeout_s=1)
    assert applied._waits == set()
    applied.advanced()  # with nobody waiting: nothing to do, nothing fails
