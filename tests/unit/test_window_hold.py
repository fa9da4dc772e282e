"""A stage beside the relay waits at the start of the window the relay republishes, per
partition, and fetches again once the window is out (issue 17): it only waits, skips nothing."""

from __future__ import annotations

from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition

from aytada_es.consumers.lanes import Ledger
from aytada_es.consumers.runner import StageRunner

A, B, C = (TopicPartition("events", n) for n in range(3))


class Consumer:
    """The part of a consumer `_hold_at` uses."""

    def __init__(self) -> None:
        self.held: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return {A, B, C}

    def paused(self) -> set[TopicPartition]:
        return set(self.held)

    def pause(self, *tps: TopicPartition) -> None:
        self.held.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.held.difference_update(tps)


def test_partitions_wait_at_the_window_and_resume_once_it_is_out() -> None:
    runner = StageRunner.__new__(StageRunner)
    runner._held = set()
    consumer, ledger = Consumer(), Ledger()
    hold = cast(Any, runner)._hold_at
    kafka = cast(AIOKafkaConsumer, consumer)
    ledger.passed(A, 9)  # A fetched up to its window (offset 10): waits
    ledger.passed(B, 3)  # B still has active projects' events before its window: fetches
    starts = {A: 10, B: 7}  # C: no active events at all, its window begins at 0: waits
    hold(kafka, ledger, starts)
    assert consumer.held == {A, C}
    ledger.passed(B, 6)
    hold(kafka, ledger, starts)
    assert consumer.held == {A, B, C}
    consumer.resume(*consumer.paused())  # resumed by anything else: held again
    hold(kafka, ledger, starts)
    assert consumer.held == {A, B, C}
    hold(kafka, ledger, None)  # the window is out
    assert consumer.held == set()
