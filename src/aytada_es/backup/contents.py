"""What a snapshot holds, read from its raw rows: chains against anchors, owners, named assets.

Needs nothing but the snapshot file and the anchors: no store, no keys, no service. Personal
text stays sealed; asset records, owners and erasures are stored in the clear.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ..adapters.anchors import Anchor, checked
from ..adapters.chain import first_broken, unseal

_ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
PROJECT_CREATED, ACCOUNT_OPENED, ACCOUNT_ERASED = "ProjectCreated", "AccountOpened", "AccountErased"


@dataclass
class Contents:
    """The snapshot's aggregates, what their events name, and what does not check out."""

    events: int = 0
    position: int = 0
    aggregates: int = 0
    projects: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    erased_accounts: set[str] = field(default_factory=set)
    owners: dict[str, str] = field(default_factory=dict)  # project -> owning account
    named: dict[str, set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )  # asset -> projects
    problems: list[str] = field(default_factory=list)

    def needed_assets(self) -> set[str]:
        """Assets some project names whose owner was not erased (an erasure deletes its files)."""
        return {
            asset
            for asset, projects in self.named.items()
            if any(self.owners.get(p) not in self.erased_accounts for p in projects)
        }


def read_contents(
    snapshot: Path, events_table: str, anchors: Iterable[Anchor] | None = None
) -> Contents:
    """Read every event of the snapshot once, aggregate by aggregate; check each chain."""
    anchored: dict[str, list[Anchor]] = defaultdict(list)
    for anchor in anchors or ():
        anchored[anchor.aggregate_id].append(anchor)
    found = Contents()
    connection = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
    try:
        for aggregate_id, history in _histories(connection, events_table):
            found.aggregates += 1
            found.events += len(history)
            _read(found, aggregate_id, history, anchored.pop(str(aggregate_id), []))
    except sqlite3.DatabaseError as e:
        found.problems.append(f"the snapshot cannot be read: {e}")
    finally:
        connection.close()
    for orphan in sorted(anchored):
        found.problems.append(f"{orphan} was anchored but has no events in the snapshot")
    return found


def _histories(
    connection: sqlite3.Connection, table: str
) -> Iterator[tuple[UUID, list[tuple[int, StoredEvent]]]]:
    rows = connection.execute(
        f"SELECT rowid, originator_id, originator_version, topic, state FROM {table}"  # noqa: S608
        " ORDER BY originator_id, originator_version"
    )
    current: str | None = None
    history: list[tuple[int, StoredEvent]] = []
    for position, originator, version, topic, state in rows:
        if originator != current:
            if current is not None:
                yield UUID(current), history
            current, history = originator, []
        raw = state.encode() if isinstance(state, str) else bytes(state)
        history.append((int(position), StoredEvent(UUID(originator), int(version), topic, raw)))
    if current is not None:
        yield UUID(current), history


def _read(
    found: Contents,
    aggregate_id: UUID,
    history: list[tuple[int, StoredEvent]],
    anchors: list[Anchor],
) -> None:
    events = [event for _, event in history]
    found.position = max(found.position, max(position for position, _ in history))
    broken = first_broken(events)
    if broken is not None:
        found.problems.append(f"{aggregate_id}: the hash chain breaks at v{broken}")
    for problem in checked(events, anchors):
        found.problems.append(f"{aggregate_id}: {problem}")
    key = str(aggregate_id)
    for event in events:
        kind = event.topic.rpartition(".")[2]
        sealed = unseal(event.state)
        body = _json(sealed[1] if sealed is not None else event.state)
        if kind == PROJECT_CREATED:
            found.projects.add(key)
            found.owners[key] = _uuid(body.get("owner_id"))
        elif kind == ACCOUNT_OPENED:
            found.accounts.add(key)
        elif kind == ACCOUNT_ERASED:
            found.erased_accounts.add(key)
        for asset in _asset_ids(body):
            found.named[asset].add(key)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _uuid(value: Any) -> str:
    """An id as the JSON transcoder writes a UUID (`{"_type_": "uuid_hex", "_data_": hex}`)."""
    if isinstance(value, dict):
        value = value.get("_data_")
    try:
        return str(UUID(str(value)))
    except ValueError:
        return ""


def _asset_ids(value: Any) -> Iterator[str]:
    """The ids of the asset records in an event's data (`{"id", "kind", "content_type", ...}`)."""
    if isinstance(value, dict):
        asset = value.get("id")
        if isinstance(asset, str) and _ASSET_ID.match(asset) and "content_type" in value:
            yield asset
        for inner in value.values():
            yield from _asset_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _asset_ids(inner)
