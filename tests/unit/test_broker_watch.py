"""The broker watch's second sign of a lost broker: acknowledged offsets that go down."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import RecordMetadata

from aytada_es.kafka.watch import BrokerWatch


def test_offsets_that_go_down_mean_the_broker_lost_messages() -> None:
    def ack(partition: int, offset: int) -> RecordMetadata:
        tp = TopicPartition("t", partition)
        return RecordMetadata("t", partition, tp, offset, 0, 0, 0)

    watch = BrokerWatch("unused:9092", mark="m", topics=["t"], partitions=2)
    watch.acknowledged([ack(0, 0), ack(0, 1), ack(1, 0)])
    assert not watch.offsets_went_down
    watch.acknowledged([ack(1, 1), ack(0, 2)])
    assert not watch.offsets_went_down
    watch.acknowledged([ack(0, 0)])
    assert watch.offsets_went_down
