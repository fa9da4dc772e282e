"""`in_thread`: a cancelled caller does not go on while its thread still runs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aytada_es._waiting import in_thread

pytestmark = pytest.mark.asyncio


async def test_a_cancel_waits_for_the_thread_to_end_before_it_is_raised() -> None:
    started, ended = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        time.sleep(0.3)
        ended.set()
        return "done"

    task = asyncio.create_task(in_thread(work))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended.is_set()  # plain `asyncio.to_thread` would raise here with the work running


async def test_it_returns_what_the_work_returns() -> None:
    assert await in_thread(sum, [1, 2, 3]) == 6
