"""Writes dispute packs: a project's or an account's raw stored events, checked, and signed.

The format is specified in docs/auditing.md and checked by `pack/verify.py`. The events are
copied as stored (the bytes the chain hashes); everything else in the pack is what this service
states about them (reconciliations, movements), which a verifier recomputes from the events.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic, resolve_topic

from ..adapters.anchors import AnchorLog
from ..adapters.chain import stored_history, unseal
from ..adapters.sql import SQLStore
from ..application import Studio
from ..domain.account import MOVEMENT_EFFECTS, Account, AccountMovement
from ..domain.errors import AccountNotFound, ProjectNotFound
from ..domain.project import Project
from .signing import public_key_text, sign
from .verify import FORMAT

JSON = dict[str, Any]
_PROJECT_CREATED = get_topic(Project.ProjectCreated)
_ACCOUNT_OPENED = get_topic(Account.AccountOpened)


def project_pack(
    studio: Studio, anchors: AnchorLog, key: Ed25519PrivateKey, project_id: UUID
) -> bytes:
    """The pack of one project (deleted ones too) and its owner's account."""
    history = stored_history(studio, project_id)
    if not history or history[0].topic != _PROJECT_CREATED:
        raise ProjectNotFound(project_id)
    created = studio.mapper.to_domain_event(history[0])
    assert isinstance(created, Project.ProjectCreated)
    account = studio.account(created.owner_id)
    return _pack(studio, anchors, key, {"project": str(project_id)}, account, [history])


def account_pack(studio: Studio, anchors: AnchorLog, key: Ed25519PrivateKey, name: str) -> bytes:
    """The pack of an account, every project it owns or moved credits for, and its statement."""
    account = studio.account_named(name)
    histories = [stored_history(studio, id) for id in _projects_of(studio, account)]
    return _pack(studio, anchors, key, {"account": account.name}, account, histories)


def _pack(
    studio: Studio,
    anchors: AnchorLog,
    key: Ed25519PrivateKey,
    scope: JSON,
    account: Account,
    projects: Sequence[Sequence[Notification]],
) -> bytes:
    account_history = stored_history(studio, account.id)
    if not account_history or account_history[0].topic != _ACCOUNT_OPENED:
        raise AccountNotFound(account.name)
    histories = [account_history, *projects]
    public_key = public_key_text(key)
    records: list[JSON] = [
        {
            "kind": "pack",
            "format": FORMAT,
            "created_at": _now(),
            "scope": scope,
            "public_key": public_key,
        },
        {"kind": "schemas", "versions": _schemas(histories)},
    ]
    for history in histories:
        records += [_event(stored) for stored in history]
        last = history[-1]
        sealed = unseal(last.state)
        records.append(
            {
                "kind": "chain",
                "aggregate_id": str(last.originator_id),
                "events": last.originator_version,
                "head": None if sealed is None else sealed[0],
            }
        )
        records += [{"kind": "anchor", **vars(a)} for a in anchors.of(str(last.originator_id))]
    records += [_reconciliation(studio, history) for history in projects]
    records.append(
        {
            "kind": "account",
            "account_id": str(account.id),
            "name": account.name,
            "balance": account.balance,
            "reserved": account.reserved,
        }
    )
    records += statement_lines(studio, account_history)
    body = b"".join(_line(r) for r in records)
    signature = {
        "kind": "signature",
        "algorithm": "ed25519",
        "public_key": public_key,
        "signature": sign(key, body),
    }
    return body + _line(signature)


def statement_lines(studio: Studio, history: Sequence[Notification]) -> list[JSON]:
    """The account's credit movements with the balance after each and the head it sealed."""
    balance = reserved = 0
    lines: list[JSON] = []
    for stored in history:
        event = studio.mapper.to_domain_event(stored)
        if not isinstance(event, AccountMovement):
            continue
        kind, to_balance, to_reserved = MOVEMENT_EFFECTS[type(event)]
        balance += to_balance * event.amount
        reserved += to_reserved * event.amount
        project_id = getattr(event, "project_id", None)
        sealed = unseal(stored.state)
        lines.append(
            {
                "kind": "movement",
                "account_id": str(stored.originator_id),
                "position": stored.id,
                "version": stored.originator_version,
                "at": event.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "movement": kind,
                "project_id": None if project_id is None else str(project_id),
                "step": getattr(event, "step", None),
                "amount": event.amount,
                "balance": balance,
                "reserved": reserved,
                "head": None if sealed is None else sealed[0],
                "actor": event.actor,
                "reason": getattr(event, "reason", None),
                "ticket": getattr(event, "ticket", None),
            }
        )
    return lines


def _projects_of(studio: Studio, account: Account) -> list[UUID]:
    """Every project the account owns (deleted ones too), oldest first."""
    store = SQLStore.of(studio)
    table = getattr(studio.recorder, "events_table_name", "stored_events")
    position = "rowid" if store.dialect == "sqlite" else "notification_id"
    rows = store.query(
        f"SELECT originator_id, topic, state FROM {{{table}}}"  # noqa: S608 (ours)
        f" WHERE topic = ? AND originator_version = 1 ORDER BY {position}",
        (_PROJECT_CREATED,),
    )
    owned: list[UUID] = []
    for row in rows:
        id = row["originator_id"]
        project_id = id if isinstance(id, UUID) else UUID(str(id))
        state = row["state"]
        raw = state.encode() if isinstance(state, str) else bytes(state)
        stored = Notification(project_id, 1, row["topic"], raw, 0)
        created = studio.mapper.to_domain_event(stored)
        if isinstance(created, Project.ProjectCreated) and created.owner_id == account.id:
            owned.append(project_id)
    return owned


def _event(stored: Notification) -> JSON:
    return {
        "kind": "event",
        "aggregate_id": str(stored.originator_id),
        "version": stored.originator_version,
        "position": stored.id,
        "topic": stored.topic,
        "state": base64.b64encode(stored.state).decode("ascii"),
    }


def _reconciliation(studio: Studio, history: Sequence[Notification]) -> JSON:
    """What the replayed project says of its credits."""
    project: Aggregate | None = None
    for stored in history:
        event = studio.mapper.to_domain_event(stored)
        assert isinstance(event, Aggregate.Event)
        project = event.mutate(project)
    assert isinstance(project, Project)
    r = project.reconciliation()
    return {
        "kind": "reconciliation",
        "project_id": str(project.id),
        "reserved": r.reserved,
        "charged": r.charged,
        "released": r.released,
        "still_reserved": r.still_reserved,
    }


def _schemas(histories: Iterable[Sequence[Notification]]) -> dict[str, int]:
    """Each event type's schema version (`class_version`) in this code."""
    topics = sorted({stored.topic for history in histories for stored in history})
    return {topic: int(getattr(resolve_topic(topic), "class_version", 1)) for topic in topics}


def _line(record: JSON) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def write(path: Path, data: bytes) -> None:
    """Write a pack to `path` (replacing it whole, never half-written)."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(data)
    temporary.replace(path)
