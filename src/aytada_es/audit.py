"""Audits: a project's or an account's whole history replayed from the raw stored events.

Nothing here reads a read model or writes anything. Each report checks the aggregate's hash
chain (`adapters/chain.py`), replays its events, and reconciles its credits; `passed` says
whether all of it holds. The CLI prints a report as text (`timeline`, `statement`) or JSON; the
web edge answers the same JSON.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from .adapters.anchors import AnchorLog, checked
from .adapters.chain import first_broken, head_of, stored_history
from .application import Studio
from .domain.account import MOVEMENT_EFFECTS, Account, AccountMovement
from .domain.credits import Reconciliation
from .domain.errors import AccountNotFound, BadInput, ProjectNotFound
from .domain.failures import redacted
from .domain.project import Project
from .notation import event_id, jsonable, utc_iso

JSON = dict[str, Any]
_PROJECT_CREATED = get_topic(Project.ProjectCreated)
_ACCOUNT_OPENED = get_topic(Account.AccountOpened)


def chain_check(history: Sequence[Notification], anchors: AnchorLog | None = None) -> JSON:
    """Whether the stored events still match their hash chain and its anchors, if given."""
    broken = first_broken(history)
    written = [] if anchors is None or not history else anchors.of(str(history[0].originator_id))
    problems = checked(history, written)
    return {
        "verified": broken is None and not problems,
        "first_bad_version": broken,
        "events": len(history),
        "head": head_of(history),
        "anchors": len(written),
        "anchor_problems": problems,
    }


def ledger(reconciliation: Reconciliation) -> JSON:
    return {
        "reserved": reconciliation.reserved,
        "charged": reconciliation.charged,
        "released": reconciliation.released,
        "still_reserved": reconciliation.still_reserved,
        "consistent": reconciliation.consistent,
    }


def _decoded(studio: Studio, history: Sequence[Notification]) -> list[Aggregate.Event | None]:
    """Each stored event as a domain event; None for one that no longer decodes."""
    events: list[Aggregate.Event | None] = []
    for stored in history:
        try:
            event = studio.mapper.to_domain_event(stored)
        except Exception:
            event = None
        events.append(event if isinstance(event, Aggregate.Event) else None)
    return events


def _entry(studio: Studio, stored: Notification, event: Aggregate.Event | None) -> JSON:
    """One event of a timeline: the envelope's fields, its position and who caused it."""
    aggregate_id = stored.originator_id
    assert isinstance(aggregate_id, UUID)
    entry: JSON = {
        "event_id": str(event_id(aggregate_id, stored.originator_version)),
        "version": stored.originator_version,
        "position": stored.id,
        "type": stored.topic.rpartition(".")[2],
        "occurred_at": None,
        "actor": None,
        "data": {},
    }
    if event is not None:
        data = jsonable(studio.event_state(event))
        if isinstance(data.get("error"), str):  # recorded before errors were redacted
            data["error"] = redacted(data["error"])
        entry |= {
            "type": type(event).__name__,
            "occurred_at": utc_iso(event.timestamp),
            "actor": data.get("actor"),
            "data": data,
        }
    return entry


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


def project_audit(
    studio: Studio,
    project_id: UUID,
    at_version: int | None = None,
    anchors: AnchorLog | None = None,
) -> JSON:
    """A project's history (up to `at_version`), its state then, its credits and its chain.

    With `anchors`, the chain is also checked against the heads written down outside the store.
    """
    history = stored_history(studio, project_id)
    if not history or history[0].topic != _PROJECT_CREATED:
        raise ProjectNotFound(project_id)
    latest = history[-1].originator_version
    if at_version is not None and (
        isinstance(at_version, bool)
        or not isinstance(at_version, int)
        or not 1 <= at_version <= latest
    ):
        raise BadInput(
            "no such version", {"at_version": f"a version of the project, from 1 to {latest}"}
        )
    shown = history if at_version is None else history[:at_version]
    events = _decoded(studio, shown)
    project, replay_error = _replay(events)
    owner_name = None
    if project is not None:
        with contextlib.suppress(AccountNotFound):
            owner_name = studio.account(project.owner_id).name
    chain = chain_check(history, anchors)
    reconciliation = project.reconciliation() if project else Reconciliation(0, 0, 0, 0)
    return {
        "project_id": str(project_id),
        "owner_id": None if project is None else str(project.owner_id),
        "owner_name": owner_name,
        "title": None if project is None else project.title,
        "status": None if project is None else str(project.status),
        "deleted": None if project is None else project.deleted,
        "latest_version": latest,
        "at_version": at_version,
        "project": None if project is None else project_state(project),
        "events": [_entry(studio, s, e) for s, e in zip(shown, events, strict=True)],
        "reconciliation": ledger(reconciliation),
        "chain": chain,
        "replay_error": replay_error,
        "passed": chain["verified"] and replay_error is None and reconciliation.consistent,
    }


def account_audit(studio: Studio, name: str, anchors: AnchorLog | None = None) -> JSON:
    """Every credit movement of an account with its project and the running balance, checked."""
    # Each project the movements name is checked too: its own chain, its own ledger, and that
    # ledger against the account's movements for it.
    account = studio.account_named(name)
    history = stored_history(studio, account.id)
    if not history or history[0].topic != _ACCOUNT_OPENED:
        raise AccountNotFound(name)
    events = _decoded(studio, history)
    balance = reserved = 0
    lines: list[JSON] = []
    per_project: dict[str, dict[str, int]] = {}
    unreadable = [s.originator_version for s, e in zip(history, events, strict=True) if e is None]
    for stored, event in zip(history, events, strict=True):
        if not isinstance(event, AccountMovement):
            continue
        kind, to_balance, to_reserved = MOVEMENT_EFFECTS[type(event)]
        amount = event.amount
        balance += to_balance * amount
        reserved += to_reserved * amount
        project_id: str | None = None
        step: str | None = None
        if not isinstance(event, Account.CreditsGranted):
            project_id, step = str(event.project_id), event.step
            sums = per_project.setdefault(project_id, {"reserve": 0, "charge": 0, "release": 0})
            sums[kind] += amount
        lines.append(
            {
                "position": stored.id,
                "at": utc_iso(event.timestamp),
                "kind": kind,
                "project_id": project_id,
                "project_title": None,
                "project_deleted": None,
                "step": step,
                "amount": amount,
                "balance": balance,
                "reserved": reserved,
            }
        )
    projects = [_project_check(studio, UUID(id), sums, anchors) for id, sums in per_project.items()]
    titles = {p["project_id"]: p for p in projects}
    for line in lines:
        if line["project_id"] is not None:
            found = titles[line["project_id"]]
            line["project_title"], line["project_deleted"] = found["title"], found["deleted"]
    chain = chain_check(history, anchors)
    ends_at_balance = (balance, reserved) == (account.balance, account.reserved)
    consistent = ends_at_balance and all(p["consistent"] and p["matches_account"] for p in projects)
    return {
        "account_id": str(account.id),
        "name": account.name,
        "role": account.role,
        "balance": account.balance,
        "reserved": account.reserved,
        "history": lines,
        "projects": projects,
        "consistent": consistent,
        "chain": chain,
        "unreadable_versions": unreadable,
        "passed": consistent
        and chain["verified"]
        and not unreadable
        and all(p["chain"]["verified"] for p in projects),
    }


def _project_check(
    studio: Studio, project_id: UUID, sums: dict[str, int], anchors: AnchorLog | None
) -> JSON:
    """A project an account's movements name: its ledger, and whether the two agree."""
    try:
        report = project_audit(studio, project_id, anchors=anchors)
    except ProjectNotFound:
        return {
            "project_id": str(project_id),
            "title": None,
            "deleted": None,
            "reconciliation": None,
            "consistent": False,
            "matches_account": False,
            "chain": {
                "verified": False,
                "first_bad_version": 1,
                "events": 0,
                "head": None,
                "anchors": 0,
                "anchor_problems": [],
            },
        }
    own = report["reconciliation"]
    return {
        "project_id": str(project_id),
        "title": report["title"],
        "deleted": report["deleted"],
        "reconciliation": own,
        "consistent": own["consistent"] and report["replay_error"] is None,
        "matches_account": (own["reserved"], own["charged"], own["released"])
        == (sums["reserve"], sums["charge"], sums["release"]),
        "chain": report["chain"],
    }


# ---- as text -----------------------------------------------------------------------------------


def timeline(report: JSON) -> list[str]:
    """A project audit as lines of text for a terminal."""
    title, owner = report["title"], report["owner_name"] or report["owner_id"]
    lines = [f"project {report['project_id']} {title!r} of {owner}"]
    state = report["project"]
    at, latest = report["at_version"], report["latest_version"]
    when = f"after v{at} of {latest}" if at else f"now (v{latest})"
    if state is not None:
        deleted = (
            f", deleted by {state['deleted_by']} at {state['deleted_at']}"
            if report["deleted"]
            else ""
        )
        short = "" if state["version"] == (at or latest) else f" (replayed to v{state['version']})"
        lines.append(f"  {when}: {report['status']}, progress {state['progress']}%{deleted}{short}")
    lines += ["", "  version position  occurred at                  type                 actor"]
    for event in report["events"]:
        lines.append(
            f"  v{event['version']:<6} {event['position']:>8}  {event['occurred_at'] or '?':<27}"
            f"  {event['type']:<20} {event['actor'] or '?':<18} {_details(event)}".rstrip()
        )
    r = report["reconciliation"]
    lines += [
        "",
        f"  credits: reserved {r['reserved']} = charged {r['charged']} + released {r['released']}"
        f" + still reserved {r['still_reserved']}: "
        + ("consistent" if r["consistent"] else "INCONSISTENT"),
        "  " + _chain_line(report["chain"]),
    ]
    if report["replay_error"]:
        lines.append(f"  replay: {report['replay_error']}")
    lines.append("  audit " + ("passed" if report["passed"] else "FAILED"))
    return lines


def statement(report: JSON) -> list[str]:
    """An account audit as lines of text for a terminal."""
    lines = [
        f"account {report['name']!r} ({report['role']}, {report['account_id']}):"
        f" balance {report['balance']}, reserved {report['reserved']}",
        "",
        "  position  at                           kind     amount  balance  reserved  project",
    ]
    for m in report["history"]:
        project = ""
        if m["project_id"] is not None:
            deleted = " (deleted)" if m["project_deleted"] else ""
            project = f"{m['project_title']!r}{deleted} {m['step']} [{m['project_id'][:8]}]"
        lines.append(
            f"  {m['position']:>8}  {m['at']:<27}  {m['kind']:<7} {m['amount']:>7}"
            f"  {m['balance']:>7}  {m['reserved']:>8}  {project}".rstrip()
        )
    lines += ["", "  projects:"]
    for p in report["projects"]:
        r = p["reconciliation"] or {"reserved": 0, "charged": 0, "released": 0, "still_reserved": 0}
        verdict = "matches the account" if p["matches_account"] else "DIFFERS FROM THE ACCOUNT"
        lines.append(
            f"    {p['project_id']} {p['title']!r}{' (deleted)' if p['deleted'] else ''}:"
            f" reserved {r['reserved']} = charged {r['charged']} + released {r['released']}"
            f" + still reserved {r['still_reserved']}"
            f" ({'consistent' if p['consistent'] else 'INCONSISTENT'}, {verdict};"
            f" chain {'verified' if p['chain']['verified'] else 'BROKEN'})"
        )
    lines += [
        "",
        "  movements " + ("end at the balance" if report["consistent"] else "DO NOT RECONCILE"),
        "  " + _chain_line(report["chain"]),
        "  audit " + ("passed" if report["passed"] else "FAILED"),
    ]
    return lines


def _chain_line(chain: JSON) -> str:
    if chain["verified"]:
        return (
            f"hash chain: {chain['events']} events verified, head {chain['head']};"
            f" {chain['anchors']} anchors match"
        )
    if chain["first_bad_version"] is None:
        return "hash chain: DIFFERS FROM ITS ANCHORS: " + "; ".join(chain["anchor_problems"])
    return (
        f"hash chain: BROKEN at v{chain['first_bad_version']}: that stored event does not"
        " match its hash (edited, removed or out of order)"
    )


def _details(event: JSON) -> str:
    """The few fields of an event worth a glance; `--json` has them all."""
    data: JSON = event["data"]
    if not data:
        return "(cannot be read)" if event["occurred_at"] is None else ""
    kind = event["type"]
    if kind in ("CreditsReserved", "CreditsCharged", "CreditsReleased"):
        return f"{data['step']} {data['amount']}"
    if kind == "GenerationRecorded":
        version = f" v{data['stage_version']}" if data.get("stage_version") else ""
        text = (
            f"{data['step']}{version} by {data['provider']}: {data['units']} units,"
            f" {data['credits']} credits, {data['outcome']} after {data['attempts']} attempt(s)"
        )
        return text + (f": {data['error']}" if data["error"] else "")
    if kind == "StepFailed":
        return f"{data['step']} {data['code']} after {data['attempts']} attempt(s): {data['error']}"
    if kind == "StepCancelled":
        return f"{data['step']} cancelled"
    if kind == "AddOnRequested":
        return f"{data['step']} v{data['stage_version']} after v{data['trigger_version']}"
    if kind == "AddOnCompleted":
        return f"{data['step']}: " + ", ".join(str(a.get("kind")) for a in data["assets"])
    if kind == "AddOnFailed":
        return f"{data['step']} {data['code']} after {data['attempts']} attempt(s): {data['error']}"
    if kind == "AddOnSkipped":
        return f"{data['step']} skipped: {data['reason']}"
    if kind == "ProjectCreated":
        return f"{data['title']!r} {data['format']} autopilot={data['autopilot']}"
    if kind == "IdeasGenerated":
        return f"{len(data['ideas'])} ideas"
    if kind == "ScriptGenerated":
        script = data["script"]
        return f"{script.get('title')!r}, {len(str(script.get('text', '')))} characters"
    if kind == "ScenesGenerated":
        return f"{len(data['scenes'])} scenes"
    if kind == "AssetsAdded":
        return ", ".join(str(a.get("kind")) for a in data["assets"])
    if kind == "ClipRendered":
        return f"scene {data['scene']}"
    if kind == "VideoStitched":
        return f"final video {str(data['video'].get('id'))[:12]}"
    shown = {k: v for k, v in data.items() if k != "actor"}
    text = " ".join(
        f"{k}={v}" if not isinstance(v, list | dict) else f"{k}=({len(v)} items)"
        for k, v in shown.items()
    )
    return text if len(text) <= 80 else text[:77] + "..."
