"""The webhooks stage's endpoint directory: one read for lookups that wait together, never a
read older than the lookup."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aytada_es.consumers.webhooks import EndpointDirectory

pytestmark = pytest.mark.asyncio


class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.reads = 0

    async def read(self) -> list[dict[str, Any]]:
        self.reads += 1
        await asyncio.sleep(0.01)
        return list(self.rows)


async def test_lookups_asked_together_share_one_read_and_filter_by_owner_and_time() -> None:
    table = Table()
    table.rows = [
        {"id": "a", "owner_id": "alice", "created_at": 10.0},
        {"id": "b", "owner_id": "bob", "created_at": 10.0},
        {"id": "late", "owner_id": "alice", "created_at": 99.0},
    ]
    directory = EndpointDirectory(table.read)
    first = asyncio.create_task(directory.of("alice", 50.0))
    await asyncio.sleep(0)  # the first read is under way: the next ten share the one after it
    rest = await asyncio.gather(*(directory.of("alice", 50.0) for _ in range(10)))
    assert [e["id"] for e in await first] == ["a"]
    assert all([e["id"] for e in found] == ["a"] for found in rest)
    assert table.reads == 2


async def test_an_endpoint_added_before_a_lookup_is_always_seen() -> None:
    table = Table()
    directory = EndpointDirectory(table.read)
    assert await directory.of("alice", 50.0) == []
    table.rows.append({"id": "new", "owner_id": "alice", "created_at": 20.0})
    assert [e["id"] for e in await directory.of("alice", 50.0)] == ["new"]
