"""One stage as a Kafka consumer group: decode, retry, commit after handling, dead-letter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import stamina
from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError

from ..domain.errors import NotFound
from ..domain.failures import FailureCode
from ..kafka import clients
from ..kafka.envelope import TYPE_HEADER, Envelope
from .context import StageContext
from .stage import Done, Failed, Outcome, RetryLater, Stage

log = logging.getLogger(__name__)
COMMIT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How the runner tries a message again: exponential back-off with jitter, then gives up.

    A `RetryLater(after_s=...)` (a provider's Retry-After) waits that long instead.
    """

    attempts: int = 4
    wait_initial_s: float = 0.5
    wait_max_s: float = 30.0
    wait_jitter_s: float = 0.5


@dataclass(frozen=True)
class Topics:
    """Where a runner reads events and puts what it cannot process."""

    events: str
    dead_letters: str


class _Again(Exception):
    """An attempt asked to be tried again (for stamina's retry loop)."""

    def __init__(self, outcome: RetryLater) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


def _backoff(error: Exception) -> bool | float:
    """stamina's hook: retry only what asked for it, after its Retry-After when it gave one."""
    if not isinstance(error, _Again):
        return False
    after = error.outcome.after_s
    return True if after is None else max(after, 0.0)


class StageRunner:
    """One consumer group member for one stage; projects are worked on side by side."""

    def __init__(
        self,
        stage: Stage,
        ctx: StageContext,
        *,
        bootstrap: str,
        topics: Topics,
        group_id: str,
        dead_letters: AIOKafkaProducer,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.stage = stage
        self.ctx = ctx
        self.bootstrap = bootstrap
        self.topics = topics
        self.group_id = group_id
        self.dead_letters = dead_letters
        self.policy = policy or RetryPolicy()
        self.consumed = 0
        self.dead_lettered = 0
        self.running = False
        self._reacts_to = frozenset(t.encode() for t in stage.reacts_to)
        self.measure: Callable[[], AbstractContextManager[object]] = nullcontext

    async def run(self, stop: asyncio.Event) -> None:
        consumer = clients.consumer(self.bootstrap, group_id=self.group_id)
        rebalances = _Rebalances()
        consumer.subscribe([self.topics.events], listener=rebalances)
        # Offsets are committed after every batch the stage acted on; offsets of messages
        # it only passed over wait up to COMMIT_INTERVAL_S (reading them again is harmless).
        pending: dict[TopicPartition, int] = {}
        committed_at = time.monotonic()
        try:  # a start that fails or is cancelled half-way still closes its connections
            await clients.start(consumer)
            self.running = True
            while not stop.is_set():
                rebalanced = rebalances.count
                batch = await consumer.getmany(timeout_ms=200)
                acted = await self._work_through(batch)
                if rebalances.count != rebalanced:
                    # Offsets read under an assignment that is gone (or of a topic the broker
                    # lost) must not be committed: those messages come again, acted on once.
                    pending.clear()
                    continue
                pending.update({tp: records[-1].offset + 1 for tp, records in batch.items()})
                if pending and (acted or time.monotonic() - committed_at >= COMMIT_INTERVAL_S):
                    await self._commit(consumer, pending)
                    committed_at = time.monotonic()
            if pending:
                await self._commit(consumer, pending)
        finally:
            self.running = False
            await clients.to_the_end(consumer.stop())

    async def _commit(self, consumer: object, offsets: dict[TopicPartition, int]) -> None:
        """Commit the offsets; a commit the group's rebalance overtook is dropped."""
        try:
            await consumer.commit(offsets)  # type: ignore[attr-defined]
        except (CommitFailedError, IllegalStateError):
            # A member left or the broker lost the group: the consumer rejoins by itself.
            log.warning("stage %s: the group rebalanced before the commit", self.stage.name)
        offsets.clear()

    async def _work_through(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> bool:
        """Each project's messages in order, projects side by side; whether the stage acted."""
        by_project: dict[bytes | None, list[ConsumerRecord[bytes, bytes]]] = {}
        reacts_to = self._reacts_to
        for records in batch.values():
            for record in records:
                # Most messages are of types this stage passes over: skip them undecoded.
                declared = next((v for k, v in record.headers if k == TYPE_HEADER), None)
                if declared is None or declared in reacts_to:
                    by_project.setdefault(record.key, []).append(record)
            self.consumed += len(records)
        return any(await asyncio.gather(*(self._in_order(rs) for rs in by_project.values())))

    async def _in_order(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> bool:
        acted = False
        for record in records:
            acted = await self._record(record) or acted
        return acted

    async def _record(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        try:
            envelope = Envelope.from_bytes(record.value)
        except (ValidationError, ValueError) as e:
            await self._dead_letter(record, f"undecodable: {_short(e)}")
            return True
        if envelope.type not in self.stage.reacts_to:
            return False
        try:
            outcome, ctx = await self.handled(envelope)
        except NotFound as e:
            await self._dead_letter(record, f"{type(e).__name__}: {e}")
            return True
        if isinstance(outcome, Failed):
            settled = await self.stage.give_up(envelope, outcome, ctx)
            if not settled:
                await self._dead_letter(record, f"{outcome.code}: {_short(outcome.reason)}")
        return True

    async def handled(self, envelope: Envelope) -> tuple[Done | Failed, StageContext]:
        """Handle one message, trying again as the policy says: `Failed` once it gives up.

        Also returns the last attempt's context: its count is what a failure records.
        """
        policy = self.policy
        first_at = datetime.now(UTC)
        async for attempt in stamina.retry_context(
            on=_backoff,
            attempts=policy.attempts,
            timeout=None,
            wait_initial=policy.wait_initial_s,
            wait_max=policy.wait_max_s,
            wait_jitter=policy.wait_jitter_s,
        ):
            with attempt:
                ctx = self.ctx.retrying(attempt.num, first_at)
                outcome = await self._attempt(envelope, ctx)
                if not isinstance(outcome, RetryLater):
                    return outcome, ctx
                if attempt.num < policy.attempts:
                    raise _Again(outcome)
                log.warning(
                    "stage %s gave up on %s v%d after %d attempts: %s",
                    self.stage.name,
                    envelope.project_id,
                    envelope.version,
                    attempt.num,
                    _short(outcome.reason),
                )
                return Failed(outcome.code, outcome.reason), ctx
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    async def _attempt(self, envelope: Envelope, ctx: StageContext) -> Outcome:
        """One call of the handler: its outcome, or RetryLater for an unexpected error."""
        try:
            with self.measure():  # times each call of the handler, counts those that raise
                outcome = await self.stage.handle(envelope, ctx)
        except NotFound:
            raise
        except Exception as e:
            log.exception(
                "stage %s failed on %s v%d (attempt %d)",
                self.stage.name,
                envelope.project_id,
                envelope.version,
                ctx.attempt,
            )
            return RetryLater(f"{type(e).__name__}: {_short(e)}", FailureCode.INTERNAL)
        return Done() if outcome is None else outcome

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        log.warning(
            "stage %s: dead-lettering %s@%d: %s",
            self.stage.name,
            TopicPartition(record.topic, record.partition),
            record.offset,
            reason,
        )
        headers = [
            ("reason", reason.encode()),
            ("consumer", self.group_id.encode()),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self.dead_letters.send_and_wait(
            self.topics.dead_letters, value=record.value, key=record.key, headers=headers
        )
        self.dead_lettered += 1


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts the rebalances that took this member's partitions back."""

    def __init__(self) -> None:
        self.count = 0

    async def on_partitions_revoked(self, revoked: object) -> None:
        self.count += 1

    async def on_partitions_assigned(self, assigned: object) -> None:
        pass


def _short(error: object) -> str:
    return " ".join(str(error).split())[:500]
