"""One stage as a Kafka consumer group: lanes per project, retry, commit behind, dead-letter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import stamina
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from .._waiting import Doorbell
from ..domain.errors import NotFound
from ..domain.failures import FailureCode
from ..kafka import clients
from ..kafka.envelope import TYPE_HEADER, Envelope
from .context import StageContext
from .lanes import Lanes, Ledger
from .stage import Done, Failed, Outcome, RetryLater, Stage

log = logging.getLogger(__name__)
COMMIT_INTERVAL_S = 1.0
# With a bell: how long a consumer keeps fetching after its last message or ring before it
# pauses, and how often a paused one fetches anyway, for what other processes' relays publish.
IDLE_AFTER_S = 0.2
IDLE_CHECK_S = 1.0
# Fetches wait longer for LOADED_FOR_S after a batch of LOADED_BATCH records: see `_Pace`.
LOADED_BATCH = 20
LOADED_FOR_S = 0.2
# Messages fetched and waiting in lanes above which the consumer stops fetching.
MAX_BUFFERED = 1000
# On stop, how long lanes may take to finish the message each is on before they are cancelled
# (as a kill would; their messages come again). Many may be waiting for a provider's slot.
STOP_GRACE_S = 10.0


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
    """One consumer group member for one stage; projects side by side, each one in order."""

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
        bell: Doorbell | None = None,
        session_timeout_ms: int | None = None,
        hold: Callable[[], Mapping[TopicPartition, int] | None] | None = None,
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
        self.paused = False
        self.full = False  # MAX_BUFFERED messages wait in lanes: fetching nothing
        self._lanes: Lanes | None = None
        self._ledger: Ledger | None = None
        # Rung by this process's relay (`notice`): the consumer may pause while idle.
        self.bell = bell
        self._reacts_to = frozenset(t.encode() for t in stage.reacts_to)
        self.measure: Callable[[], AbstractContextManager[object]] = nullcontext
        self._session = clients.session(session_timeout_ms) if session_timeout_ms else {}
        # Offsets (per partition) to wait at for now, else None: see `_hold_at`.
        self.hold = hold
        self._held: set[TopicPartition] = set()

    @property
    def in_progress(self) -> int:
        """Projects being worked on now (a lane each)."""
        return self._lanes.busy if self._lanes is not None else 0

    @property
    def waiting(self) -> int:
        """Messages fetched and not yet handled, in the lanes."""
        return self._ledger.buffered if self._ledger is not None else 0

    def notice(self, types: frozenset[str]) -> None:
        """This process's relay published events of `types`: wake up if the stage wants one."""
        if self.bell is not None and not types.isdisjoint(self.stage.reacts_to):
            self.bell.ring()

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and dispatch until `stop`: lanes work while the consumer keeps fetching."""
        # With a bell the consumer fetches only while busy, so its fetches may be short; it
        # looks after about each one whether it may pause again.
        poll_ms = 2 * clients.SHORT_FETCH_WAIT_MS if self.bell else 200
        consumer = clients.consumer(self.bootstrap, group_id=self.group_id, **self._session)
        ledger = self._ledger = Ledger()
        lanes = self._lanes = Lanes(self._record, ledger)
        rebalances = _Rebalances(ledger, lanes)
        consumer.subscribe([self.topics.events], listener=rebalances)
        # Offsets are committed as soon as the stage acted; offsets of messages it only
        # passed over wait up to COMMIT_INTERVAL_S (reading them again is harmless).
        committed_at = time.monotonic()
        pace = _Pace()
        try:  # a start that fails or is cancelled half-way still closes its connections
            await clients.start(consumer)
            self.running = True
            while not stop.is_set():
                if lanes.failure is not None:
                    raise lanes.failure
                room = MAX_BUFFERED - ledger.buffered
                if room <= 0:
                    await self._wait_for_room(consumer, stop, lanes)
                    continue
                if self.hold is not None:
                    self._hold_at(consumer, ledger, self.hold())
                # Caught up: what the last fetches brought is buffered; take it without waiting.
                settled = self.bell is not None and pace.caught_up(consumer)
                batch = await consumer.getmany(
                    timeout_ms=0 if settled else poll_ms, max_records=room
                )
                self._dispatch(batch, consumer.assignment(), ledger, lanes)
                if self.bell is not None:
                    pace.fetched(consumer, sum(len(records) for records in batch.values()))
                pause = settled and not batch
                now = time.monotonic()
                if lanes.acted or pause or now - committed_at >= COMMIT_INTERVAL_S:
                    await self._commit(consumer, ledger, lanes)
                    committed_at = now
                if pause:
                    await self._pause_until_rung(consumer, stop, pace, lanes)
            await lanes.finish(STOP_GRACE_S)
            await self._commit(consumer, ledger, lanes)
        finally:
            self.running = False
            await lanes.cancel()
            self._lanes = self._ledger = None
            await clients.to_the_end(consumer.stop())

    def _dispatch(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        assigned: set[TopicPartition],
        ledger: Ledger,
        lanes: Lanes,
    ) -> None:
        """Give each message the stage reacts to to its project's lane; pass over the rest."""
        reacts_to = self._reacts_to
        for tp, records in batch.items():
            self.consumed += len(records)
            if tp not in assigned:
                continue  # revoked while it was fetched: another member reads it again
            for record in records:
                # Most messages are of types this stage passes over: skip them undecoded.
                declared = next((v for k, v in record.headers if k == TYPE_HEADER), None)
                if declared is None or declared in reacts_to:
                    lanes.take(record)
                else:
                    ledger.passed(tp, record.offset)

    def _hold_at(
        self,
        consumer: AIOKafkaConsumer,
        ledger: Ledger,
        starts: Mapping[TopicPartition, int] | None,
    ) -> None:
        """Pause each partition fetched up to `starts` (this process's relay is republishing a
        window from there); resume them once `starts` is None. Timing only: nothing is skipped.
        """
        for tp in consumer.assignment():
            start = None if starts is None else starts.get(tp, 0)
            fetched = ledger.next_offset(tp)
            held = start is not None and (fetched if fetched is not None else 0) >= start
            if held and tp not in consumer.paused():
                consumer.pause(tp)
                self._held.add(tp)
            elif not held and tp in self._held:
                self._held.discard(tp)
                consumer.resume(tp)

    async def _wait_for_room(
        self, consumer: AIOKafkaConsumer, stop: asyncio.Event, lanes: Lanes
    ) -> None:
        """MAX_BUFFERED messages wait in lanes: fetch nothing until one of them is handled.

        The (empty) fetch keeps this member in its group however long the lanes take.
        """
        consumer.pause(*consumer.assignment())
        self.full = True
        try:
            await _first(stop.wait(), lanes.progressed.wait(), timeout_s=IDLE_CHECK_S)
            await consumer.getmany(timeout_ms=0)
        finally:
            self.full = False
            consumer.resume(*(consumer.paused() - self._held))

    async def _pause_until_rung(
        self, consumer: AIOKafkaConsumer, stop: asyncio.Event, pace: _Pace, lanes: Lanes
    ) -> None:
        """Fetch nothing until the bell rings, `stop` is set, or IDLE_CHECK_S has passed.

        A paused partition costs the consumer and the broker nothing (the group's heartbeats
        go on); records fetched just before the pause are dropped by the client and fetched
        again. After IDLE_CHECK_S with no ring, one round of fetches looks for what another
        process's relay published, and the consumer pauses again if it found nothing. A lane
        that acted meanwhile ends the pause too, for its commit.
        """
        assert self.bell is not None
        consumer.pause(*consumer.assignment())
        self.paused = True
        rung = False
        try:
            ended = await _first(
                self.bell.wait(stop, IDLE_CHECK_S), lanes.progressed.wait(), timeout_s=None
            )
            rung = ended[0] is True
        finally:
            self.paused = False
            pace.resumed(rung=rung)
            consumer.resume(*(consumer.paused() - self._held))

    async def _commit(self, consumer: AIOKafkaConsumer, ledger: Ledger, lanes: Lanes) -> None:
        """Commit what the lanes finished, once, as the member the consumer is now (see
        `clients.commit_as_member`); offsets not committed are committed later or forgotten
        with their partitions."""
        lanes.acted = False
        lanes.progressed.clear()
        offsets = ledger.to_commit()
        if not offsets:
            return
        try:
            if not await clients.commit_as_member(consumer, offsets):
                return  # between two memberships: the consumer rejoins by itself
        except KafkaError as e:
            # A member left, the coordinator moved or the broker lost the group.
            log.warning("stage %s: the commit failed (%s); later", self.stage.name, e)
            return
        ledger.committed(offsets)

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
                    log.info(
                        "stage %s tries %s v%d again (attempt %d failed): %s",
                        self.stage.name,
                        envelope.project_id,
                        envelope.version,
                        attempt.num,
                        _short(outcome.reason),
                    )
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


class _Pace:
    """How a consumer with a bell fetches: when it may pause, and how long each fetch waits.

    It may pause once it read everything it was rung for and its last round of fetches since
    it resumed brought nothing. Its fetches are short while traffic is light, so that each
    stage hop is quick, and the usual ones while batches are large: those bring more per
    fetch (short ones throughout cost bench/pipeline.py 8 % more CPU).
    """

    def __init__(self) -> None:
        self._busy_at = time.monotonic()
        self._loaded_at = float("-inf")
        self._resumed_ms = 0.0

    def fetched(self, consumer: AIOKafkaConsumer, records: int) -> None:
        """A `getmany` brought `records`: stay busy, and pace the next fetches."""
        now = time.monotonic()
        if records:
            self._busy_at = now
        if records >= LOADED_BATCH:
            self._loaded_at = now
        loaded = now - self._loaded_at < LOADED_FOR_S
        wait_ms = clients.LONG_FETCH_WAIT_MS if loaded else clients.SHORT_FETCH_WAIT_MS
        clients.set_fetch_wait(consumer, wait_ms)

    def resumed(self, *, rung: bool) -> None:
        """Fetching again: after a ring for IDLE_AFTER_S at least, else for one round."""
        self._resumed_ms = time.time() * 1000
        self._busy_at = time.monotonic() if rung else float("-inf")

    def caught_up(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether every assigned partition was fetched since the resume, and nothing came."""
        if time.monotonic() - self._busy_at < IDLE_AFTER_S:
            return False
        # The client stamps each partition's fetch response with the wall clock, in ms.
        return all(
            (consumer.last_poll_timestamp(tp) or 0) >= self._resumed_ms
            for tp in consumer.assignment()
        )


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions taken back from this member: their offsets are no longer committed here.

    Their messages being handled finish (handling is idempotent), those queued are dropped:
    whoever gets the partitions reads them again from the last commit.
    """

    def __init__(self, ledger: Ledger, lanes: Lanes) -> None:
        self.ledger = ledger
        self.lanes = lanes

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = list(revoked)
        self.ledger.forget(revoked)
        self.lanes.drop(revoked)

    async def on_partitions_assigned(self, assigned: object) -> None:
        pass


async def _first(*waits: Awaitable[object], timeout_s: float | None) -> list[object]:
    """Wait for the first of `waits` to end (or the timeout): what each returned, or None."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    return [t.result() if t.done() and not t.cancelled() else None for t in tasks]


def _short(error: object) -> str:
    return " ".join(str(error).split())[:500]
