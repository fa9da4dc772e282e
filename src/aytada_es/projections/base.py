"""What a projection is, and the card changes it reports to the live push."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypedDict
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from ..adapters.sealed_text import ERASED
from ..adapters.sql import SQLStore, Transaction

DomainEvent = DomainEventProtocol[UUID]
Batch = Sequence[tuple[int, DomainEvent]]

POSITIONS = "aytada_positions"
VERSIONS = "aytada_projection_versions"
TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS {aytada_positions}"
    " (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    # Apart from the positions: databases of older releases have them without a version.
    "CREATE TABLE IF NOT EXISTS {aytada_projection_versions}"
    " (name TEXT PRIMARY KEY, version INTEGER NOT NULL)",
)


# Each aggregate's id as text, made once for all the read models and events of a batch
# (str(UUID) is slow Python): by the id object, which the entry keeps alive, so that its
# `id()` names it alone. The log's reader hands all the events of an aggregate one id object.
_TEXTS: dict[int, tuple[object, str]] = {}
_TEXTS_MAX = 50_000


def aggregate_id(event: DomainEvent) -> str:
    """The id of the event's aggregate, as the read models' rows hold it."""
    originator = event.originator_id
    known = _TEXTS.get(id(originator))
    if known is not None:
        return known[1]
    if len(_TEXTS) >= _TEXTS_MAX:
        _TEXTS.clear()
    text = str(originator)
    _TEXTS[id(originator)] = (originator, text)
    return text


def forget_aggregate_ids() -> None:
    """Let go of the ids `aggregate_id` remembers (the runner calls it after each batch)."""
    _TEXTS.clear()


class Card(TypedDict):
    """A project as My Videos shows it (docs/api.md §2)."""

    id: str
    title: str
    format: str
    created_at: str
    updated_at: str
    status: str
    progress: int
    action: str | None
    thumbnail_url: str | None
    # An addition of release 2: the autopilot pause the project stands at, if any.
    paused: dict[str, Any] | None


@dataclass(frozen=True)
class CardChange:
    """One change of an owner's My Videos list, at a position of the notification log."""

    position: int
    owner_id: str
    kind: Literal["update", "removed"]
    project_id: str
    card: Card | None

    def message(self) -> dict[str, Any]:
        """The WebSocket message of this change (docs/api.md §3)."""
        if self.kind == "removed":
            return {"type": "removed", "position": self.position, "id": self.project_id}
        return {"type": "update", "position": self.position, "video": self.card}


class Projection(ABC):
    """A read model kept from the event store's notification log, each event applied once.

    To add one: subclass it with a unique `name`, the `tables` it owns and their `ddl`
    (idempotent `CREATE ... IF NOT EXISTS`, table names in braces, `?` placeholders: see
    `adapters/sql.py`), implement `apply`, and add an instance to the runner's list (see
    `ReadModels`). For each batch of events after its tracked position, the runner opens ONE
    transaction, moves the projection's position in it, then calls `begin(tx, batch)` (load the
    rows the batch touches in one query), `apply(tx, position, event)` for every event in order
    (ignore the ones you do not care about), and `flush(tx)` (write what `apply` kept in memory).
    If anything raises, nothing of the batch is kept, position included: the runner applies the
    events again one at a time, keeps those before the one that fails, and stops the projection
    there until that event applies (retried with back-off). Keep no state on the instance that
    outlives `flush`. `apply` and `flush` return the card changes to push to browsers (most
    projections return none). `rebuild()` calls `clear(tx)`, which by default empties `tables`,
    then replays the whole log in big batches. Name the event classes `apply` acts on in
    `events`: the runner gives `begin` and `apply` only those (the position still moves over
    the others), which saves much of a rebuild's work. Name in `reads` the personal fields it
    reads (the others reach it sealed). Add query methods on the subclass; they read through
    `self.store`.

    To ship a change of what it stores (a new column, a fixed bug in `apply`), raise `version`:
    a runner that finds another version recorded drops `tables`, runs `ddl` and rebuilds this
    projection from the start of the log while the others go on. With no downtime: run
    `projections rebuild --live` with the new release first (every table in `tables` gets a
    generation of its own, and so does every index `ddl` names).
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    ddl: ClassVar[tuple[str, ...]]
    version: ClassVar[int] = 1
    # The event classes `apply` acts on (subclasses included); the runner hands it no others.
    # None: every event.
    events: ClassVar[tuple[type[Any], ...] | None] = None
    # Of the events it acts on that hold a person's text (`adapters.sealed_text.PERSONAL`), the
    # fields `apply` reads, by event class name. The runner opens only the fields some read
    # model reads and leaves the others sealed in the events it hands over; a class of personal
    # events it acts on and does not name here gets every field opened.
    reads: ClassVar[dict[str, tuple[str, ...]]] = {}
    # A person's text this read model keeps: table -> (its project id column, text columns).
    personal: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {}

    def __init__(self, store: SQLStore) -> None:
        self.store = store

    def stored(self, states: Mapping[int, bytes]) -> None:  # noqa: B027 (optional hook)
        """Before `begin`: each event of the batch as stored (sealed into its hash chain)."""

    def begin(self, tx: Transaction, batch: Batch) -> None:  # noqa: B027 (optional hook)
        """Prepare for a batch (reset state, load the rows it touches)."""

    @abstractmethod
    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        """Apply one event at its position in the notification log."""

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        """Write what the batch changed, before its transaction commits."""
        return ()

    def clear(self, tx: Transaction) -> None:
        """Empty every table of this read model."""
        for table in self.tables:
            tx.execute(f"DELETE FROM {{{table}}}")  # noqa: S608 (our own table names)

    def erase(self, tx: Transaction, project_ids: Sequence[str]) -> None:
        """Overwrite the `personal` text of these projects with `[erased]`."""
        for table, (key, columns) in self.personal.items():
            erased = ", ".join(
                f"{c} = CASE WHEN {c} IS NULL THEN NULL ELSE '{ERASED}' END" for c in columns
            )
            for chunk in chunks(project_ids):
                marks = ",".join("?" * len(chunk))
                tx.execute(
                    f"UPDATE {{{table}}} SET {erased} WHERE {key} IN ({marks})",  # noqa: S608 (ours)
                    chunk,
                )

    def position(self, tx: Transaction | None = None) -> int:
        """The notification id up to which this read model is built."""
        sql = "SELECT position FROM {aytada_positions} WHERE name = ?"
        rows = self.store.query(sql, (self.name,)) if tx is None else tx.query(sql, (self.name,))
        return int(rows[0]["position"]) if rows else 0


def chunks(values: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    """`values` in slices short enough for one statement's parameters."""
    return [values[i : i + size] for i in range(0, len(values), size)]
