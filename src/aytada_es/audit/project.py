"""A project's audit: its history replayed, its state at any version, what changed between two."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ..adapters.anchors import AnchorLog
from ..adapters.chain import stored_history
from ..application import Studio
from ..domain.credits import Reconciliation
from ..domain.errors import AccountNotFound, BadInput, ProjectNotFound
from ..domain.project import Project
from ..notation import jsonable, utc_iso
from .findings import ReadSide, ledger_disagreement, project_findings
from .history import chain_check, decoded, entry, ledger
from .reports import AuditTrail, FieldChange, VersionDiff

JSON = dict[str, Any]
_PROJECT_CREATED = get_topic(Project.ProjectCreated)


def _replay(events: Sequence[Aggregate.Event | None]) -> tuple[Project | None, str | None]:
    """The project after these events, or as far as they replay, with what stopped it."""
    project: Project | None = None
    for version, event in enumerate(events, start=1):
        if event is None:
            return project, f"event v{version} cannot be read"
        try:
            replayed = event.mutate(project)
        except Exception as e:
            return project, f"event v{version} cannot be replayed: {e}"
        assert isinstance(replayed, Project)
        project = replayed
    return project, None


def project_state(project: Project) -> JSON:
    """Everything the aggregate holds, as it was after its last replayed event."""
    state = {
        "version": project.version,
        "format": project.format,
        "brief": project.brief,
        "autopilot": project.autopilot,
        "progress": project.progress,
        "action": project.action,
        "created_at": utc_iso(project.created_on),
        "updated_at": utc_iso(project.updated_on),
        "deleted_at": None if project.deleted_at is None else utc_iso(project.deleted_at),
        "deleted_by": project.deleted_by,
        "ideas": project.ideas,
        "script": project.script,
        "scenes": project.scenes,
        "assets": project.assets,
        "voiceover": project.voiceover,
        "final_video": project.final_video,
        "thumbnail": project.thumbnail,
        "request": project.request,
        "failure": project.failure,
        "autopilot_paused": project.autopilot_paused,
        "open_reservations": project.open_reservations,
        "generations": project.generations,
        "retries": project.retries,
    }
    return dict(jsonable(state))


def _version_problem(at_version: object, latest: int, field: str) -> BadInput | None:
    if (
        isinstance(at_version, bool)
        or not isinstance(at_version, int)
        or not 1 <= at_version <= latest
    ):
        return BadInput("no such version", {field: f"a version of the project, from 1 to {latest}"})
    return None


def project_audit(
    studio: Studio,
    project_id: UUID,
    at_version: int | None = None,
    read_side: ReadSide | None = None,
    anchors: AnchorLog | None = None,
) -> AuditTrail:
    """A project's history (up to `at_version`), its state then, its credits, chain and findings.

    With `read_side`, the credits read model's ledger is compared with the replay too; with
    `anchors`, the chain is also checked against the heads written down outside the store.
    """
    history = stored_history(studio, project_id)
    if not history or history[0].topic != _PROJECT_CREATED:
        raise ProjectNotFound(project_id)
    latest = history[-1].originator_version
    if at_version is not None and (problem := _version_problem(at_version, latest, "at_version")):
        raise problem
    shown = history if at_version is None else history[:at_version]
    events = decoded(studio, shown)
    project, replay_error = _replay(events)
    owner_name = None
    if project is not None:
        with contextlib.suppress(AccountNotFound):
            owner_name = studio.account(project.owner_id).name
    chain = chain_check(history, anchors)
    reconciliation = project.reconciliation() if project else Reconciliation(0, 0, 0, 0)
    timeline = [entry(studio, s, e) for s, e in zip(shown, events, strict=True)]
    to_the_end = at_version in (None, latest)
    findings = project_findings(timeline, events, project, to_the_end=to_the_end)
    compared = None
    if read_side is not None and to_the_end and project is not None:
        compared = ledger_disagreement(
            read_side, project_id, ledger(reconciliation), history[-1].id
        )
        findings += compared or []
    return AuditTrail(
        project_id=str(project_id),
        owner_id=None if project is None else str(project.owner_id),
        owner_name=owner_name,
        title=None if project is None else project.title,
        status=None if project is None else str(project.status),
        deleted=None if project is None else project.deleted,
        latest_version=latest,
        at_version=at_version,
        project=None if project is None else project_state(project),
        events=timeline,
        reconciliation=ledger(reconciliation),
        chain=chain,
        replay_error=replay_error,
        findings=findings,
        read_models_compared=compared is not None,
        passed=chain.verified
        and replay_error is None
        and reconciliation.consistent
        and not findings,
    )


def version_at(studio: Studio, project_id: UUID, at: datetime) -> int | None:
    """The project's latest version stored at or before `at`; None if it did not exist then."""
    version = None
    for event in decoded(studio, stored_history(studio, project_id)):
        if event is None or event.timestamp > at:
            break
        version = event.originator_version
    return version


def version_diff(studio: Studio, project_id: UUID, a: int, b: int) -> VersionDiff:
    """What changed in the project from version `a` to version `b`, and the events between."""
    history = stored_history(studio, project_id)
    if not history or history[0].topic != _PROJECT_CREATED:
        raise ProjectNotFound(project_id)
    latest = history[-1].originator_version
    for field, version in (("from_version", a), ("to_version", b)):
        if problem := _version_problem(version, latest, field):
            raise problem
    if a > b:
        raise BadInput("versions out of order", {"to_version": "a version after from_version"})
    events = decoded(studio, history[:b])
    before, before_error = _replay(events[:a])
    after, after_error = _replay(events)
    if before is None or after is None or before_error or after_error:
        raise BadInput(
            "the project cannot be replayed that far",
            {"to_version": before_error or after_error or "a version that replays"},
        )
    old, new = project_state(before), project_state(after)
    changes = [
        FieldChange(field=name, before=old.get(name), after=new.get(name))
        for name in [*new, *(k for k in old if k not in new)]
        if old.get(name) != new.get(name)
    ]
    for name, was, now in (
        ("title", before.title, after.title),
        ("status", str(before.status), str(after.status)),
        ("deleted", before.deleted, after.deleted),
    ):
        if was != now:
            changes.insert(0, FieldChange(field=name, before=was, after=now))
    return VersionDiff(
        project_id=str(project_id),
        from_version=a,
        to_version=b,
        changes=changes,
        events=[entry(studio, s, e) for s, e in zip(history[a:b], events[a:b], strict=True)],
    )
