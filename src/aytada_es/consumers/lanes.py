"""Continuous dispatch: one lane per project, lanes side by side, offsets committed behind them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeAlias

from aiokafka import ConsumerRecord, TopicPartition

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


class _Partition:
    """One partition's offsets: those fetched and not yet handled, in fetch order."""

    __slots__ = ("committed", "done", "next", "unfinished")

    def __init__(self) -> None:
        self.unfinished: deque[int] = deque()
        self.done: set[int] = set()
        self.next: int | None = None
        self.committed: int | None = None

    def committable(self) -> int | None:
        return self.unfinished[0] if self.unfinished else self.next


class Ledger:
    """Which offsets of each partition may be committed: up to the first not yet handled.

    A message fetched is either passed over (done at once) or taken (done when handled);
    a partition's commit never goes past a message taken and not handled, whatever the
    order lanes finish in. Revoked partitions are forgotten, their late handlings ignored.
    """

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _Partition] = {}
        self.buffered = 0

    def passed(self, tp: TopicPartition, offset: int) -> None:
        """Fetched and nothing to do: committable once the messages before it are."""
        self._partition(tp).next = offset + 1

    def next_offset(self, tp: TopicPartition) -> int | None:
        """The offset after the last one fetched from `tp` (None: nothing fetched yet)."""
        partition = self._partitions.get(tp)
        return None if partition is None else partition.next

    def taken(self, tp: TopicPartition, offset: int) -> object:
        """Fetched for a lane; the token to give `handled`."""
        partition = self._partition(tp)
        partition.unfinished.append(offset)
        partition.next = offset + 1
        self.buffered += 1
        return partition

    def handled(self, token: object, offset: int) -> None:
        """A taken message was handled (under the assignment `token` comes from)."""
        assert isinstance(token, _Partition)
        if token not in self._partitions.values():
            return  # revoked meanwhile: its offsets are another member's now
        token.done.add(offset)
        self.buffered -= 1
        while token.unfinished and token.unfinished[0] in token.done:
            token.done.discard(token.unfinished.popleft())

    def to_commit(self) -> dict[TopicPartition, int]:
        """The offsets that moved since the last commit."""
        moved = {}
        for tp, partition in self._partitions.items():
            offset = partition.committable()
            if offset is not None and offset != partition.committed:
                moved[tp] = offset
        return moved

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if (partition := self._partitions.get(tp)) is not None:
                partition.committed = offset

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions revoked: nothing more is committed for them."""
        for tp in partitions:
            partition = self._partitions.pop(tp, None)
            if partition is not None:
                self.buffered -= len(partition.unfinished) - len(partition.done)

    def _partition(self, tp: TopicPartition) -> _Partition:
        partition = self._partitions.get(tp)
        if partition is None:
            partition = self._partitions[tp] = _Partition()
        return partition


class Lanes:
    """Each project's messages in order, in a lane of its own; lanes run side by side.

    A lane is a task that lives while its project has messages waiting. What a handler
    raises stops every lane (the runner re-raises it): the message stays unhandled and
    uncommitted, and comes again.
    """

    def __init__(self, handle: Callable[[Record], Awaitable[bool]], ledger: Ledger) -> None:
        self._handle = handle
        self._ledger = ledger
        self._lanes: dict[bytes | None, deque[tuple[Record, object]]] = {}
        self._tasks: dict[bytes | None, asyncio.Task[None]] = {}
        self.progressed = asyncio.Event()  # set when a handling acted, failed or a lane ended
        self.acted = False
        self.failure: BaseException | None = None

    def take(self, record: Record) -> None:
        """Queue `record` in its project's lane, starting the lane if it is idle."""
        token = self._ledger.taken(TopicPartition(record.topic, record.partition), record.offset)
        lane = self._lanes.get(record.key)
        if lane is not None:
            lane.append((record, token))
            return
        self._lanes[record.key] = deque([(record, token)])
        self._tasks[record.key] = asyncio.create_task(self._run(record.key))

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget the queued messages of `partitions`; those being handled finish."""
        gone = set(partitions)
        for lane in self._lanes.values():
            first = lane[0]  # being handled now
            kept = [q for q in list(lane)[1:] if _tp(q[0]) not in gone]
            lane.clear()
            lane.append(first)
            lane.extend(kept)

    @property
    def busy(self) -> int:
        """How many lanes have work."""
        return len(self._lanes)

    async def finish(self, grace_s: float) -> None:
        """Let each lane finish the message it is on within `grace_s`, then cancel it.

        The messages queued behind, and those cancelled, are not committed: they come again.
        """
        for lane in self._lanes.values():
            while len(lane) > 1:
                lane.pop()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=grace_s)
        await self.cancel()

    async def cancel(self) -> None:
        """Stop every lane now, mid-message."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, key: bytes | None) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                record, token = lane[0]
                acted = await self._handle(record)
                lane.popleft()
                self._ledger.handled(token, record.offset)
                if acted:
                    self.acted = True
                    self.progressed.set()
        except Exception as e:
            self.failure = e
            self.progressed.set()
        finally:
            del self._lanes[key]
            del self._tasks[key]


def _tp(record: Record) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)
