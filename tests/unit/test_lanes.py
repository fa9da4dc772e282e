"""Lanes and their offsets: a project's messages in order, projects side by side, and a commit
that never passes a message not yet handled, whatever order the lanes finish in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from aytada_es.consumers.lanes import Lanes, Ledger
from integration.polling import wait_for

TP = TopicPartition("events", 0)


def record(offset: int, key: bytes, partition: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="events",
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=b"",
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=0,
        headers=[],
    )


# ---- the ledger -----------------------------------------------------------------------------

fetches = st.lists(st.booleans(), min_size=1, max_size=60)  # per offset: taken (or passed over)


@settings(max_examples=300, deadline=None)
@given(taken_or_not=fetches, data=st.data())
def test_a_commit_stops_at_the_first_message_not_handled(
    taken_or_not: list[bool], data: st.DataObject
) -> None:
    ledger = Ledger()
    start = data.draw(st.integers(0, 1000), label="first offset")
    tokens = {}
    for i, taken in enumerate(taken_or_not):
        if taken:
            tokens[start + i] = ledger.taken(TP, start + i)
        else:
            ledger.passed(TP, start + i)
    taken_offsets = sorted(tokens)
    order = data.draw(st.permutations(taken_offsets), label="the order lanes finish in")
    handled = order[: data.draw(st.integers(0, len(order)), label="how many finished")]
    committed_so_far = None
    for offset in handled:
        ledger.handled(tokens[offset], offset)
        moved = ledger.to_commit()
        if TP in moved:
            assert committed_so_far is None or moved[TP] > committed_so_far
            committed_so_far = moved[TP]
            ledger.committed(moved)
    unfinished = [o for o in taken_offsets if o not in set(handled)]
    expected = unfinished[0] if unfinished else start + len(taken_or_not)
    final = ledger.to_commit().get(TP, committed_so_far)
    assert final == expected
    assert ledger.buffered == len(unfinished)
    assert all(final <= o for o in unfinished)  # nothing unfinished is ever committed past


def test_nothing_moved_means_nothing_to_commit() -> None:
    ledger = Ledger()
    token = ledger.taken(TP, 5)
    assert ledger.to_commit() == {TP: 5}
    ledger.committed({TP: 5})
    assert ledger.to_commit() == {}
    ledger.handled(token, 5)
    assert ledger.to_commit() == {TP: 6}


def test_a_revoked_partition_is_never_committed_and_its_late_handlings_are_ignored() -> None:
    ledger = Ledger()
    other = TopicPartition("events", 1)
    old = ledger.taken(TP, 10)
    ledger.taken(TP, 11)
    ledger.passed(other, 3)
    ledger.forget([TP])
    assert ledger.to_commit() == {other: 4}
    assert ledger.buffered == 0
    # The partition comes back (re-read from the last commit): the old handling counts nothing.
    new = ledger.taken(TP, 10)
    ledger.handled(old, 10)
    assert ledger.to_commit()[TP] == 10
    assert ledger.buffered == 1
    ledger.handled(new, 10)
    assert ledger.to_commit()[TP] == 11


# ---- the lanes ------------------------------------------------------------------------------


class Gates:
    """A handler that waits, per project, for the test to open its gate; remembers the order."""

    def __init__(self) -> None:
        self.started: list[tuple[bytes | None, int]] = []
        self.finished: list[tuple[bytes | None, int]] = []
        self.gates: dict[bytes | None, asyncio.Event] = {}
        self.failing: set[int] = set()

    def gate(self, key: bytes) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    async def __call__(self, r: ConsumerRecord[bytes, bytes]) -> bool:
        self.started.append((r.key, r.offset))
        await self.gate(r.key or b"").wait()
        if r.offset in self.failing:
            raise RuntimeError(f"cannot handle {r.offset}")
        self.finished.append((r.key, r.offset))
        return True


async def until(check: Callable[[], bool]) -> None:
    await wait_for(check, timeout_s=5, what="the lanes")


async def test_a_project_waits_for_no_other_and_its_own_messages_keep_their_order() -> None:
    ledger, gates = Ledger(), Gates()
    lanes = Lanes(gates, ledger)
    for offset in range(12):  # A's slow messages
        lanes.take(record(offset, b"A"))
    lanes.take(record(12, b"B"))
    gates.gate(b"B").set()
    await until(lambda: (b"B", 12) in gates.finished)
    assert gates.started == [(b"A", 0), (b"B", 12)]  # A's second waits for its first
    assert ledger.to_commit() == {TP: 0}  # B is done, but A's first is not: commit nothing past it
    gates.gate(b"A").set()
    await until(lambda: lanes.busy == 0)
    assert [o for k, o in gates.finished if k == b"A"] == list(range(12))
    assert ledger.to_commit() == {TP: 13} and ledger.buffered == 0


async def test_finishing_lets_each_lane_end_its_message_and_leaves_the_rest_uncommitted() -> None:
    ledger, gates = Ledger(), Gates()
    lanes = Lanes(gates, ledger)
    for offset, key in enumerate([b"A", b"A", b"B", b"A"]):
        lanes.take(record(offset, key))
    await until(lambda: len(gates.started) == 2)
    finishing = asyncio.create_task(lanes.finish(grace_s=30))
    gates.gate(b"A").set()
    gates.gate(b"B").set()
    await finishing
    assert sorted(gates.finished) == [(b"A", 0), (b"B", 2)]
    assert ledger.to_commit() == {TP: 1}


async def test_a_handler_that_raises_stops_its_lane_and_its_message_is_not_committed() -> None:
    ledger, gates = Ledger(), Gates()
    gates.failing.add(1)
    lanes = Lanes(gates, ledger)
    for offset, key in enumerate([b"A", b"A", b"A", b"B"]):
        lanes.take(record(offset, key))
    gates.gate(b"A").set()
    gates.gate(b"B").set()
    await until(lambda: lanes.failure is not None and lanes.busy == 0)
    assert (b"A", 2) not in gates.started  # the lane stopped at its failure
    assert ledger.to_commit() == {TP: 1}


async def test_dropping_a_revoked_partition_keeps_only_what_is_being_handled() -> None:
    ledger, gates = Ledger(), Gates()
    lanes = Lanes(gates, ledger)
    lanes.take(record(0, b"A"))
    lanes.take(record(1, b"A"))
    lanes.take(record(0, b"C", partition=1))
    lanes.take(record(1, b"C", partition=1))
    await until(lambda: len(gates.started) == 2)
    ledger.forget([TP])
    lanes.drop([TP])
    gates.gate(b"A").set()
    gates.gate(b"C").set()
    await until(lambda: lanes.busy == 0)
    assert sorted(gates.finished) == [(b"A", 0), (b"C", 0), (b"C", 1)]
    assert ledger.to_commit() == {TopicPartition("events", 1): 2}


async def test_finishing_cancels_what_runs_past_the_grace_and_commits_none_of_it() -> None:
    ledger, gates = Ledger(), Gates()
    lanes = Lanes(gates, ledger)
    lanes.take(record(0, b"A"))
    lanes.take(record(1, b"B"))
    gates.gate(b"B").set()
    await until(lambda: (b"B", 1) in gates.finished)
    await lanes.finish(grace_s=0.05)  # A's never ends by itself
    assert lanes.busy == 0 and gates.finished == [(b"B", 1)]
    assert ledger.to_commit() == {TP: 0}


@pytest.mark.parametrize("lanes_count", [1, 50])
async def test_cancelling_stops_every_lane(lanes_count: int) -> None:
    ledger, gates = Ledger(), Gates()
    lanes = Lanes(gates, ledger)
    for i in range(lanes_count):
        lanes.take(record(i, str(i).encode()))
    await until(lambda: len(gates.started) == lanes_count)
    await lanes.cancel()
    assert lanes.busy == 0 and gates.finished == []
    assert ledger.to_commit() == {TP: 0}


@settings(max_examples=100, deadline=None)
@given(
    keys=st.lists(st.sampled_from([b"A", b"B", b"C", b"D"]), min_size=1, max_size=30),
    data=st.data(),
)
def test_whatever_order_handlings_end_in_each_project_keeps_its_order_and_commits_lag(
    keys: list[bytes], data: st.DataObject
) -> None:
    """Handlings released in a random order: each project's run in offset order, and the
    commit never passes a message not yet handled."""
    release = data.draw(st.permutations(range(len(keys))), label="the order handlings may end")

    async def scenario() -> None:
        ledger = Ledger()
        allowed = {offset: asyncio.Event() for offset in range(len(keys))}
        handled: list[int] = []

        async def handle(r: ConsumerRecord[bytes, bytes]) -> bool:
            await allowed[r.offset].wait()
            handled.append(r.offset)
            return True

        lanes = Lanes(handle, ledger)
        for offset, key in enumerate(keys):
            lanes.take(record(offset, key))
        for offset in release:
            allowed[offset].set()
            for _ in range(3):  # let the lanes run what they now may
                await asyncio.sleep(0)
            unfinished = [o for o in range(len(keys)) if o not in handled]
            committable = ledger.to_commit().get(TP)
            assert committable == (unfinished[0] if unfinished else len(keys))
        await wait_for(lambda: lanes.busy == 0, timeout_s=5, what="the lanes")
        for key in set(keys):
            mine = [o for o in handled if keys[o] == key]
            assert mine == sorted(mine)
        assert sorted(handled) == list(range(len(keys)))

    asyncio.run(scenario())
