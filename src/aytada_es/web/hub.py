"""The live hub: card changes from the projections, fanned out to each owner's WebSockets.

Changes come from one of two sources, in position order:
- "projections": this process runs the projections; the runner's `listen()` callback (in its
  thread) hands each committed batch to the event loop;
- "feed": another process runs them; a tailer reads the change-feed table every `poll_s` for
  every owner's changes after the last position it saw, so every web process gets every change.

Each WebSocket holds a `Subscription`: a bounded queue of the messages it has not sent yet. One
that still holds `limit` messages when the next batch of changes comes is ended with 4008 (its
client resumes with `?after=`): a batch is taken whole, so a burst never drops a client that keeps
up, and a queue never holds more than `limit` plus one batch.

When a live rebuild switches the read models to a new generation, the hub's epoch watch sees the
epoch change (within `epoch_check_s`) and queues a resync on every subscription: its socket sends
`{"type": "resync", "epoch": E}` and a new snapshot, then goes on with the changes after it.

A subscription also remembers the credential it was opened with: the hub's revocation watch
(revocations.py) ends it with 4001 when that token or session stops working, and a timer when it
expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from .._waiting import in_thread
from ..adapters.sessions import Sessions
from ..projections import CardChange, ReadModels
from .revocations import REVOKED, Credential, RevocationWatch

log = logging.getLogger(__name__)
TOO_SLOW = 4008
GOING_AWAY = 1001
FEED_BATCH = 1000
RETRY_S = 1.0
# The position of a queued resync: it is sent whatever the client has seen.
RESYNC = -1


class Ended(Exception):
    """The subscription was ended: the client is too slow, its credential stopped working, or
    the server is stopping."""


class Subscription:
    """One WebSocket's share of an owner's live changes: at most `limit` unsent, plus a batch."""

    def __init__(self, owner_id: str, limit: int, credential: Credential | None = None) -> None:
        self.owner_id = owner_id
        self.limit = limit
        self.credential = credential
        self._pending: deque[tuple[int, str]] = deque()
        self._batch = 0  # the last batch offered
        self._wakeup = asyncio.Event()
        self.ended = asyncio.Event()
        self.close_code = GOING_AWAY
        self.close_reason = ""
        self.on_end: Callable[[], object] | None = None

    def offer(self, batch: int, position: int, text: str) -> None:
        """Queue a message of a batch; a queue full when a new batch comes ends the subscription."""
        if self.ended.is_set():
            return
        if batch != self._batch and len(self._pending) >= self.limit:
            self.end(TOO_SLOW, f"too slow: {self.limit} messages waiting; reconnect with ?after=")
            return
        self._batch = batch
        self._pending.append((position, text))
        self._wakeup.set()

    def resync(self, epoch: str) -> None:
        """Queue a resync to a new epoch (its socket then sends a new snapshot)."""
        if self.ended.is_set():
            return
        text = json.dumps({"type": "resync", "epoch": epoch}, separators=(",", ":"))
        self._pending.append((RESYNC, text))
        self._wakeup.set()

    def end(self, code: int, reason: str) -> None:
        self._pending.clear()
        self.close_code, self.close_reason = code, reason
        self.ended.set()
        self._wakeup.set()
        if self.on_end is not None:
            self.on_end()

    async def next(self) -> tuple[int, str]:
        """The oldest unsent message and its position; raises Ended once ended."""
        while not self._pending:
            if self.ended.is_set():
                raise Ended
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.ended.is_set():
            raise Ended
        return self._pending.popleft()

    @property
    def waiting(self) -> int:
        return len(self._pending)


class Hub:
    """Fans card changes out to the subscriptions of their owner, in position order."""

    def __init__(
        self,
        read_models: ReadModels,
        *,
        source: Literal["projections", "feed"],
        sessions: Sessions,
        queue_limit: int = 256,
        poll_s: float = 0.02,
        revocation_check_s: float = 1.0,
        epoch_check_s: float = 0.1,
    ) -> None:
        self.read_models = read_models
        self.source = source
        self.queue_limit = queue_limit
        self.poll_s = poll_s
        self.feed = read_models.feed
        self.position = 0  # of the last change published
        self.published = 0
        self.batches = 0
        self.too_slow = 0  # subscriptions ended for falling behind
        self.epoch_check_s = epoch_check_s
        self.epoch = ""  # of the read models, as last seen
        self.resyncs = 0
        self._epochs: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._by_session: dict[str, set[Subscription]] = {}
        self.revocations = RevocationWatch(self, read_models.accounts, sessions, revocation_check_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unlisten: contextlib.ExitStack | None = None
        self._tailer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start receiving changes: listen to the projections, or start tailing the feed."""
        self._loop = asyncio.get_running_loop()
        self.epoch = await in_thread(self.read_models.epoch)
        self._epochs = asyncio.create_task(self._watch_epoch(), name="web:epoch-watch")
        self._unlisten = contextlib.ExitStack()
        if self.source == "projections":
            self._unlisten.callback(self.read_models.listen(self._from_runner))
        else:
            self.position = await in_thread(self.feed.latest)
            self._tailer = asyncio.create_task(self._tail(), name="web:feed-tailer")
        await self.revocations.start()

    async def stop(self) -> None:
        """Stop receiving changes and end every subscription (1001, going away)."""
        await self.revocations.stop()
        if self._epochs is not None:
            self._epochs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._epochs
            self._epochs = None
        if self._unlisten is not None:
            self._unlisten.close()
            self._unlisten = None
        if self._tailer is not None:
            self._tailer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tailer
            self._tailer = None
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription.end(GOING_AWAY, "the server is stopping")

    @property
    def healthy(self) -> bool:
        if self.source == "projections":
            return self._unlisten is not None
        return self._tailer is not None and not self._tailer.done()

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())

    @contextlib.contextmanager
    def subscription(
        self, owner_id: str, credential: Credential | None = None
    ) -> Iterator[Subscription]:
        """Receive the owner's changes from now on, until the block ends or the credential
        stops working (in the event loop's thread)."""
        subscription = Subscription(owner_id, self.queue_limit, credential)
        session = credential.session if credential else None
        _add(self._subscriptions, owner_id, subscription)
        if session is not None:
            _add(self._by_session, session, subscription)
        expiry = None
        if credential is not None and credential.expires_at is not None:
            expiry = asyncio.get_running_loop().call_later(
                max(credential.expires_at - time.time(), 0.0),
                subscription.end,
                REVOKED,
                credential.expiry_reason,
            )
        self.revocations.verify(subscription)
        try:
            yield subscription
        finally:
            if expiry is not None:
                expiry.cancel()
            _discard(self._subscriptions, owner_id, subscription)
            if session is not None:
                _discard(self._by_session, session, subscription)

    def of_account(self, account_id: str) -> Iterable[Subscription]:
        """The live subscriptions of an account (its own My Videos)."""
        return self._subscriptions.get(account_id, ())

    def of_session(self, session: str) -> Iterable[Subscription]:
        """The live subscriptions opened with a session (by its id's hash)."""
        return self._by_session.get(session, ())

    def publish(self, changes: Sequence[CardChange]) -> None:
        """Hand each change newer than the last one to its owner's subscriptions (loop thread)."""
        self.batches += 1
        for change in changes:
            if change.position <= self.position:
                continue
            self.position = change.position
            self.published += 1
            subscriptions = self._subscriptions.get(change.owner_id)
            if not subscriptions:
                continue
            # Serialised once, however many tabs the owner has open.
            text = json.dumps(change.message(), separators=(",", ":"))
            for subscription in list(subscriptions):
                subscription.offer(self.batches, change.position, text)
                if subscription.close_code == TOO_SLOW and subscription.ended.is_set():
                    subscriptions.discard(subscription)
                    self.too_slow += 1

    def _from_runner(self, changes: Sequence[CardChange]) -> None:
        """The runner's listener, called in its thread: publish in the event loop's."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self.publish, list(changes))

    def resync(self, epoch: str) -> None:
        """A new epoch: every subscription gets a resync and a new snapshot (loop thread)."""
        if epoch == self.epoch:
            return
        log.info("read models switched to epoch %s: %d sockets resync", epoch, self.connections)
        self.epoch = epoch
        self.resyncs += 1
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription.resync(epoch)

    async def _watch_epoch(self) -> None:
        while True:
            try:
                self.resync(await in_thread(self.read_models.epoch))
            except Exception:
                log.exception("the read models' epoch could not be read; trying again")
            await asyncio.sleep(self.epoch_check_s)

    async def _tail(self) -> None:
        while True:
            try:
                changes = await in_thread(self.feed.after, self.position, FEED_BATCH)
            except Exception:
                log.exception("the change feed could not be read; trying again in %.1f s", RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            self.publish(changes)
            if len(changes) < FEED_BATCH:
                await asyncio.sleep(self.poll_s)


def _add(index: dict[str, set[Subscription]], key: str, subscription: Subscription) -> None:
    index.setdefault(key, set()).add(subscription)


def _discard(index: dict[str, set[Subscription]], key: str, subscription: Subscription) -> None:
    subscriptions = index.get(key)
    if subscriptions is not None:
        subscriptions.discard(subscription)
        if not subscriptions:
            del index[key]
