"""Errors that repeat by the thousand are logged at most once a second, with how many were not."""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass

import pytest

from aytada_es.repeats import RepeatFilter, Repeats, quiet_loop_errors

ACCEPT = "socket.accept() out of system resource"


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_one_loop_error_is_logged_once_a_second_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    loop = asyncio.new_event_loop()
    try:
        quiet_loop_errors(loop, Repeats(clock=clock))
        emfile = OSError(errno.EMFILE, "Too many open files")
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for _ in range(1000):
                loop.call_exception_handler({"message": ACCEPT, "exception": emfile})
            loop.call_exception_handler({"message": "another error", "exception": ValueError()})
            clock.now += 0.5
            loop.call_exception_handler({"message": ACCEPT, "exception": emfile})
            clock.now += 0.5
            loop.call_exception_handler({"message": ACCEPT, "exception": emfile})
    finally:
        loop.close()
    assert [r.getMessage() for r in caplog.records] == [
        ACCEPT,
        "another error",
        f"{ACCEPT} (1000 more like it since the last one were not logged)",
    ]
    assert all(r.exc_info for r in caplog.records), "each logged one keeps its traceback"


def test_uvicorns_repeated_warnings_pass_once_a_second_and_access_lines_always(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("test.uvicorn.error")
    quiet = RepeatFilter(Repeats(clock=clock))
    logger.addFilter(quiet)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            for port in range(50):
                logger.warning("Exceeded concurrency limit.")
                logger.info('%s - "WebSocket %s" [accepted]', f"127.0.0.1:{port}", "/ws/videos")
            clock.now += 1.0
            logger.warning("Exceeded concurrency limit.")
    finally:
        logger.removeFilter(quiet)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Exceeded concurrency limit.",
        "Exceeded concurrency limit. (49 more like it since the last one were not logged)",
    ]
    assert sum(r.levelno == logging.INFO for r in caplog.records) == 50


def test_many_kinds_of_errors_do_not_grow_the_memory_without_bound() -> None:
    clock = Clock()
    repeats = Repeats(clock=clock)
    for second in range(5):
        clock.now += 1.0
        for kind in range(900):
            repeats.admit((second, kind))
    assert len(repeats._logged_at) <= 1000
