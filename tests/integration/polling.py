"""Waiting in tests: for a condition, and for the messages on a topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer


async def wait_for(check: Callable[[], bool], timeout_s: float = 60, what: str = "") -> float:
    """Wait until `check` (run in a thread) holds; how long it took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if await asyncio.to_thread(check):
            return time.monotonic() - began
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def line_with(process: asyncio.subprocess.Process, text: str) -> str:
    """The first line of the process's output holding `text` (within 60 s)."""
    assert process.stdout is not None
    async with asyncio.timeout(60):
        while line := (await process.stdout.readline()).decode():
            if text in line:
                return line
    raise AssertionError(f"exited with {await process.wait()} before printing {text!r}")


async def read_topic(
    broker: str, topics: str | list[str], expect: int, timeout_s: float = 20, linger_s: float = 0
) -> list[Any]:
    """The topics' records from the start, until `expect` of them came or the time ran out;
    then `linger_s` longer, for repeats."""
    consumer = AIOKafkaConsumer(
        *([topics] if isinstance(topics, str) else topics),
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expect and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        if linger_s:
            for batch in (await consumer.getmany(timeout_ms=int(linger_s * 1000))).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records
