"""Stage consumers join faster on the bundled broker (a shorter session), and keep Kafka's
minimum session (6 s) on an external cluster, which refuses shorter ones."""

from __future__ import annotations

from typing import Any, cast

from aiokafka import AIOKafkaProducer

from aytada_es.bootstrap import stage_runner
from aytada_es.config import Settings
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.stage import Stage
from aytada_es.kafka import clients


class Quiet(Stage):
    name = "quiet"
    reacts_to = frozenset({"IdeasRequested"})

    async def handle(self, envelope: Any, ctx: Any) -> None:
        return None


def session_of(settings: Settings) -> int:
    runner = stage_runner(
        Quiet(),
        cast(StageContext, None),
        settings,
        "127.0.0.1:1",
        dead_letters=cast(AIOKafkaProducer, None),
    )
    merged = {**clients.CONSUMER_DEFAULTS, **runner.consumer_settings}
    assert merged["request_timeout_ms"] > merged["session_timeout_ms"] / 2  # else joins time out
    assert merged["heartbeat_interval_ms"] <= merged["session_timeout_ms"] / 3
    return int(merged["session_timeout_ms"])


def test_the_bundled_broker_gets_the_short_session_an_external_cluster_the_default() -> None:
    assert session_of(Settings.from_env({})) == 3000
    assert session_of(Settings.from_env({"AYTADA_KAFKA_BOOTSTRAP": "kafka:9092"})) == 6000
