"""The hash chain of stored events: each one seals its content with the previous event's hash.

A stored event's state is the transcoder's JSON with one more key in front,
`{"_chain":"<sha256 hex>",...}`. The hash covers the previous event's hash (the first event of
an aggregate chains from `GENESIS`), the aggregate id, the version, the topic and the JSON
without the seal, exactly as stored (`chain_hash`). It is written with the event; domain events
never see it. `first_broken` checks a history from the raw rows alone.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable, Iterator, Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    Mapper,
    MapperDeserialisationError,
    Notification,
    Recording,
    StoredEvent,
    Transcoder,
    find_id_convertor,
)
from eventsourcing.utils import resolve_topic

from .sql import SQLStore

GENESIS = "0" * 64
_OPEN = b'{"_chain":"'
_HEX = len(_OPEN) + 64  # where the hash ends


def chain_hash(
    previous: str, originator_id: UUID | str, version: int, topic: str, body: bytes
) -> str:
    """The hash that seals one stored event after the one whose hash is `previous`."""
    # sha256 over the previous hash (64 hex characters), the aggregate id (16 bytes), the
    # version (8 bytes, big-endian), the topic and a newline, then the JSON exactly as stored.
    id = originator_id.bytes if isinstance(originator_id, UUID) else originator_id.encode()
    parts = (previous.encode(), id, version.to_bytes(8, "big"), topic.encode(), b"\n", body)
    return hashlib.sha256(b"".join(parts)).hexdigest()


def seal(body: bytes, digest: str) -> bytes:
    """The stored state: the JSON object `body` with the hash as its first key."""
    sealed = _OPEN + digest.encode()
    return sealed + (b'"}' if body == b"{}" else b'",' + body[1:])


def unseal(state: bytes) -> tuple[str, bytes] | None:
    """The claimed hash and the JSON it seals; None when the state carries no seal."""
    if not state.startswith(_OPEN):
        return None
    claimed, rest = state[len(_OPEN) : _HEX], state[_HEX:]
    if rest.startswith(b'",'):
        body = b"{" + rest[2:]
    elif rest == b'"}':
        body = b"{}"
    else:
        return None
    try:
        return claimed.decode("ascii"), body
    except UnicodeDecodeError:
        return None


def first_broken(events: Sequence[StoredEvent]) -> int | None:
    """The first version of an aggregate's history (in version order) that fails the chain."""
    previous = GENESIS
    for expected, event in enumerate(events, start=1):
        if event.originator_version != expected:
            return expected  # a missing (or duplicated) event
        sealed = unseal(event.state)
        if sealed is None:
            return expected
        claimed, body = sealed
        if chain_hash(previous, event.originator_id, expected, event.topic, body) != claimed:
            return expected
        previous = claimed
    return None


def head_of(events: Sequence[StoredEvent]) -> str | None:
    """The hash the last event claims: write it down, and a later rewrite of history shows."""
    sealed = unseal(events[-1].state) if events else None
    return None if sealed is None else sealed[0]


def _plainly_sealed(state: bytes) -> bool:
    """Whether `unseal` finds a seal in this state (which starts with `_OPEN`), the hash in it
    written as the JSON's first value, plainly."""
    after = state[_HEX : _HEX + 2]
    if after != b'",' and state[_HEX:] != b'"}':
        return False
    # A hash of letters and digits: the JSON's first key holds exactly it, the rest is the body.
    return state[len(_OPEN) : _HEX].isalnum()


class ChainMapper(Mapper[UUID]):
    """Maps stored events to domain events without their seal."""

    def __init__(self, transcoder: Transcoder) -> None:
        # No compressor or cipher: the seal is spliced into the JSON itself.
        super().__init__(transcoder)
        # By topic: the event class and its version (`resolve_topic` and `getattr` cost).
        self._kinds: dict[str, tuple[type[Any], int]] = {}

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        # The library's `Mapper.to_domain_event` (eventsourcing 9.5.6, pinned), reading the JSON
        # past the seal instead of copying the stored event without it: a rebuild maps every
        # stored event, and the copy cost a tenth of the mapping.
        kind = self._kinds.get(stored_event.topic)
        if kind is None:
            cls = resolve_topic(stored_event.topic)
            kind = self._kinds[stored_event.topic] = (cls, getattr(cls, "class_version", 1))
        cls, class_version = kind
        state = stored_event.state
        # The seal is the JSON's first key: decoded with the rest and dropped, not cut off the
        # bytes (two copies of every state), wherever `unseal` would find it.
        sealed = state.startswith(_OPEN) and _plainly_sealed(state)
        try:
            if not sealed and state.startswith(_OPEN) and (found := unseal(state)) is not None:
                state = found[1]
            event_state: dict[str, Any] = self.transcoder.decode(state)
            if sealed:
                del event_state["_chain"]
        except Exception as e:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic '{stored_event.topic}', "
                f"originator_id '{stored_event.originator_id}' and originator_version "
                f"{stored_event.originator_version}: {e}"
            ) from e
        originator_id = stored_event.originator_id
        if originator_id.__class__ is str:  # else the library's convertor passes it through
            to_id = find_id_convertor(cast(Hashable, cls), cast(Hashable, str))
            originator_id = to_id(originator_id)
        event_state["originator_id"] = originator_id
        event_state["originator_version"] = stored_event.originator_version
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event: DomainEventProtocol[UUID] = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event


class _Heads:
    """The latest hash this process knows to be stored, per aggregate; a bounded cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._heads: dict[UUID | str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def hash_of(self, originator_id: UUID | str, version: int) -> str | None:
        known = self._heads.get(originator_id)
        return known[1] if known is not None and known[0] == version else None

    def remember(self, originator_id: UUID | str, version: int, digest: str) -> None:
        with self._lock:
            known = self._heads.pop(originator_id, None)
            if known is not None and known[0] > version:
                version, digest = known
            self._heads[originator_id] = (version, digest)
            if len(self._heads) > self.size:
                del self._heads[next(iter(self._heads))]


class ChainedEventStore(EventStore[UUID]):
    """Seals every event as it is stored, chained to its aggregate's previous one."""

    # The previous hash comes from the events of the same save, else from what this process
    # knows was stored (remembered only after an insert succeeded, or when read), else from the
    # store itself: a save that lost a conflict leaves nothing behind, and several processes
    # may write one aggregate.

    def __init__(
        self, mapper: Mapper[UUID], recorder: AggregateRecorder, *, cache_size: int = 20_000
    ) -> None:
        super().__init__(mapper, recorder)
        self._heads = _Heads(cache_size)

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        batch: dict[UUID | str, tuple[int, str]] = {}
        stored_events = []
        for event in domain_events:
            plain = self.mapper.to_stored_event(event)
            id, version = plain.originator_id, plain.originator_version
            known = batch.get(id)
            if known is not None and known[0] == version - 1:
                previous = known[1]
            else:
                previous = self._previous(id, version)
            digest = chain_hash(previous, id, version, plain.topic, plain.state)
            batch[id] = (version, digest)
            stored_events.append(StoredEvent(id, version, plain.topic, seal(plain.state, digest)))
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        for id, (version, digest) in batch.items():
            self._heads.remember(id, version, digest)
        if not notification_ids:
            return []
        return [
            Recording(d, Notification(s.originator_id, s.originator_version, s.topic, s.state, n))
            for d, s, n in zip(domain_events, stored_events, notification_ids, strict=True)
        ]

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[DomainEventProtocol[UUID]]:
        stored = self.recorder.select_events(
            originator_id=originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        if stored:
            newest = stored[0] if desc else stored[-1]
            sealed = unseal(newest.state)
            if sealed is not None:
                self._heads.remember(originator_id, newest.originator_version, sealed[0])
        return map(self.mapper.to_domain_event, stored)

    def _previous(self, originator_id: UUID | str, version: int) -> str:
        if version == 1:
            return GENESIS
        cached = self._heads.hash_of(originator_id, version - 1)
        if cached is not None:
            return cached
        found = self.recorder.select_events(
            originator_id=originator_id, lte=version - 1, desc=True, limit=1
        )
        sealed = unseal(found[0].state) if found else None
        if sealed is None or found[0].originator_version != version - 1:
            return GENESIS  # nothing to chain from: the audit reports the history as broken
        self._heads.remember(originator_id, version - 1, sealed[0])
        return sealed[0]


def stored_history(application: Application[Any], aggregate_id: UUID) -> list[Notification]:
    """Every stored event of one aggregate, raw, in version order, with its position."""
    store = SQLStore.of(application)
    table = getattr(application.recorder, "events_table_name", "stored_events")
    key: str | UUID = aggregate_id.hex if store.dialect == "sqlite" else aggregate_id
    position = "rowid" if store.dialect == "sqlite" else "notification_id"
    rows = store.query(
        f"SELECT {position} AS position, originator_version, topic, state"  # noqa: S608 (ours)
        f" FROM {{{table}}} WHERE originator_id = ? ORDER BY originator_version",
        (key,),
    )
    return [
        Notification(
            originator_id=aggregate_id,
            originator_version=int(row["originator_version"]),
            topic=row["topic"],
            state=_raw_state(row["state"]),
            id=int(row["position"]),
        )
        for row in rows
    ]


def _raw_state(state: bytes | memoryview | str) -> bytes:
    # A hand that edits a row with SQLite's text functions leaves TEXT where a BLOB was.
    return state.encode() if isinstance(state, str) else bytes(state)
