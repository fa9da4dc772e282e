"""An aggregate's stored events as the audit reads them: decoded, checked, as timeline entries."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from ..adapters.anchors import AnchorLog, checked
from ..adapters.chain import first_broken, head_of
from ..application import Studio
from ..domain.credits import Reconciliation
from ..domain.failures import redacted
from ..notation import event_id, jsonable, utc_iso
from . import reports


def chain_check(
    history: Sequence[Notification], anchors: AnchorLog | None = None
) -> reports.ChainCheck:
    """Whether the stored events still match their hash chain and its anchors, if given."""
    broken = first_broken(history)
    written = [] if anchors is None or not history else anchors.of(str(history[0].originator_id))
    problems = checked(history, written)
    return reports.ChainCheck(
        verified=broken is None and not problems,
        first_bad_version=broken,
        events=len(history),
        head=head_of(history),
        anchors=len(written),
        anchor_problems=problems,
        anchored_version=max((a.version for a in written), default=None),
    )


def ledger(reconciliation: Reconciliation) -> reports.Reconciliation:
    return reports.Reconciliation(
        reserved=reconciliation.reserved,
        charged=reconciliation.charged,
        released=reconciliation.released,
        still_reserved=reconciliation.still_reserved,
        consistent=reconciliation.consistent,
    )


def decoded(studio: Studio, history: Sequence[Notification]) -> list[Aggregate.Event | None]:
    """Each stored event as a domain event; None for one that no longer decodes."""
    events: list[Aggregate.Event | None] = []
    for stored in history:
        try:
            event = studio.mapper.to_domain_event(stored)
        except Exception:
            event = None
        events.append(event if isinstance(event, Aggregate.Event) else None)
    return events


def entry(
    studio: Studio, stored: Notification, event: Aggregate.Event | None
) -> reports.AuditEvent:
    """One event of a timeline: the envelope's fields, its position and who caused it."""
    aggregate_id = stored.originator_id
    assert isinstance(aggregate_id, UUID)
    found = reports.AuditEvent(
        event_id=str(event_id(aggregate_id, stored.originator_version)),
        version=stored.originator_version,
        position=stored.id,
        type=stored.topic.rpartition(".")[2],
        occurred_at=None,
        actor=None,
        data={},
    )
    if event is not None:
        data = jsonable(studio.event_state(event))
        if isinstance(data.get("error"), str):  # recorded before errors were redacted
            data["error"] = redacted(data["error"])
        found.type = type(event).__name__
        found.occurred_at = utc_iso(event.timestamp)
        found.actor = data.get("actor")
        found.data = data
    return found
