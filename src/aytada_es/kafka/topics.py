"""The topics' names, and their creation at start-up and after the broker lost them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from . import clients

log = logging.getLogger(__name__)
PROJECT_EVENTS = "aytada.project-events"
ACCOUNT_EVENTS = "aytada.account-events"
DEAD_LETTERS = "aytada.project-events.dlq"
# An empty topic the relay creates once the broker holds every published event (watch.py).
RELAY_MARK = "aytada.relay-mark"
# The chain heads written down outside the event store (anchoring.py), keyed by aggregate.
CHAIN_ANCHORS = "aytada.chain-anchors"


@dataclass(frozen=True)
class TopicNames:
    """The topics of one environment: each name behind its namespace (AYTADA_KAFKA_NAMESPACE)."""

    namespace: str = ""

    def of(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def project_events(self) -> str:
        return self.of(PROJECT_EVENTS)

    @property
    def account_events(self) -> str:
        return self.of(ACCOUNT_EVENTS)

    @property
    def dead_letters(self) -> str:
        return self.of(DEAD_LETTERS)

    @property
    def relay_mark(self) -> str:
        return self.of(RELAY_MARK)

    @property
    def chain_anchors(self) -> str:
        return self.of(CHAIN_ANCHORS)

    def retained(self, retention_s: float) -> dict[str, dict[str, str]]:
        """The event topics' settings: Kafka deletes their records after the retention.

        The dead letters and the chain anchors keep Kafka's own default (the broker's).
        """
        ms = str(int(retention_s * 1000))
        return {t: {"retention.ms": ms} for t in (self.project_events, self.account_events)}

    @property
    def created(self) -> list[str]:
        """The topics created at start-up, and again when the broker lost them."""
        return [self.project_events, self.account_events, self.dead_letters, self.chain_anchors]


@contextlib.asynccontextmanager
async def admin_client(
    bootstrap: str, timeout_ms: int = 10000
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed afterwards even when starting it failed half-way."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await clients.start(admin)
        yield admin
    finally:
        await clients.to_the_end(admin.close())


async def ensure_topics(
    bootstrap: str,
    topics: list[str],
    partitions: int,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create the topics that are missing (with their `configs`); existing ones are left as
    they are."""
    async with admin_client(bootstrap) as admin:
        # All topics at once: naming them would let a broker that creates topics on first
        # mention create them with its own partition count.
        existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
        for topic in topics:
            if topic in existing and existing[topic] != partitions:
                log.warning(
                    "topic %s has %d partitions, not %d (created by the broker on first use?); "
                    "each project's events still share one partition",
                    topic,
                    existing[topic],
                    partitions,
                )
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(
                        t,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs=dict((configs or {}).get(t, {})),
                    )
                    for t in missing
                ]
            )
        log.info("created topics %s with %d partitions", missing, partitions)
