"""Noticing that the broker lost what the relay published (a memory broker restarted, a new one).

Two signs, either enough:
- the relay's mark, an empty topic it creates once the broker holds every published event, is
  gone. Nothing else names that topic, so no client's metadata request creates it again;
- an acknowledged offset lower than one acknowledged before on the same partition.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import RecordMetadata

from .topics import admin_client, ensure_topics

log = logging.getLogger(__name__)


class BrokerWatch:
    """What the relay knows the broker holds, and the questions that tell it the broker lost it."""

    def __init__(
        self,
        bootstrap: str,
        *,
        mark: str,
        topics: list[str],
        partitions: int,
        client: AIOKafkaClient | None = None,
        configs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.configs = configs
        # A started client whose connection `marked` may use (the relay's producer's), so that
        # asking every second opens no new connection.
        self.client = client
        self.mark = mark
        self.topics = topics
        self.partitions = partitions
        self.ends: dict[TopicPartition, int] = {}
        self.offsets_went_down = False

    def acknowledged(self, records: list[RecordMetadata]) -> None:
        """Remember how far each partition reached; a lower offset than before means a loss."""
        for record in records:
            partition = record.topic_partition
            if record.offset < self.ends.get(partition, 0):
                if not self.offsets_went_down:
                    log.warning(
                        "relay: %s acknowledged offset %d, below %d acknowledged before",
                        partition,
                        record.offset,
                        self.ends[partition],
                    )
                self.offsets_went_down = True
            self.ends[partition] = record.offset + 1

    async def marked(self) -> bool:
        """Whether the relay's mark is on the broker (asked without creating any topic)."""
        if self.client is None:
            async with admin_client(self.bootstrap, 5000) as admin:
                return self.mark in set(await admin.list_topics())
        # All topics, as the admin client's list_topics asks (naming one would create it).
        node = self.client.get_random_node()
        if node is None:
            raise KafkaConnectionError("no broker known to ask for the relay's mark")
        response = await self.client.send(node, MetadataRequest(None))
        return self.mark in {t["topic"] for t in response.to_object()["topics"]}

    async def restore_topics(self) -> None:
        """Create the event topics that are missing; forget what was acknowledged before."""
        await ensure_topics(self.bootstrap, self.topics, self.partitions, self.configs)
        self.ends.clear()
        self.offsets_went_down = False

    async def put_mark(self) -> None:
        """The broker holds every published event: mark it so."""
        async with admin_client(self.bootstrap, 5000) as admin:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(self.mark, 1, 1)])
