"""Waiting with a timeout: a cancel that lands as the wait ends still cancels."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aytada_es._waiting import Doorbell, wait_or_timeout


async def cancelled_as_the_event_is_set(wait: Callable[[asyncio.Event], Awaitable[None]]) -> bool:
    event = asyncio.Event()
    task = asyncio.create_task(wait(event))
    await asyncio.sleep(0)  # the task is waiting now
    event.set()
    task.cancel()  # in the same loop turn: the race that left a killed relay running
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


async def test_a_cancel_landing_as_the_event_is_set_gets_through() -> None:
    # Python 3.11's asyncio.wait_for(event.wait(), 10) returns normally here instead.
    assert await cancelled_as_the_event_is_set(lambda e: wait_or_timeout(e, 10))


async def test_the_wait_ends_at_the_timeout_or_when_set() -> None:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await wait_or_timeout(event, 0.05)
    assert 0.04 <= loop.time() - began < 1
    loop.call_later(0.01, event.set)
    began = loop.time()
    await wait_or_timeout(event, 10)
    assert loop.time() - began < 1


async def test_a_doorbell_rung_before_anyone_waits_wakes_the_first_wait() -> None:
    # A save between a relay's empty read and its first wait rang nobody: the relay slept its
    # whole poll interval (60 s in a test that failed under load).
    bell, stop = Doorbell(), asyncio.Event()
    await asyncio.to_thread(bell.ring)  # from the saving thread, before any wait
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await bell.wait(stop, 10)
    assert loop.time() - began < 1
    assert not await bell.wait(stop, 0.05)  # the ring is used up: the next one sleeps
    loop.call_later(0.01, bell.ring)
    assert await bell.wait(stop, 10)
