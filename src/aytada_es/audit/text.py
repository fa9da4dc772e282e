"""Audit reports as text for a terminal; `--json` prints the models themselves."""

from __future__ import annotations

from typing import Any

from .reports import AccountAudit, AuditTrail, VersionDiff

JSON = dict[str, Any]


def timeline(audit: AuditTrail) -> list[str]:
    """A project audit as lines of text for a terminal."""
    report = audit.model_dump()
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
    lines += _findings(report["findings"])
    lines.append(_read_models_line(report))
    lines.append("  audit " + ("passed" if report["passed"] else "FAILED"))
    return lines


def statement(audit: AccountAudit) -> list[str]:
    """An account audit as lines of text for a terminal."""
    report = audit.model_dump()
    when = f" at {report['at']}" if report["at"] else ""
    lines = [
        f"account {report['name']!r} ({report['role']}, {report['account_id']}){when}:"
        f" balance {report['balance']}, reserved {report['reserved']}",
        "",
        "  position  at                           kind     amount  balance  reserved  project",
    ]
    for m in report["history"]:
        project = ""
        if m["project_id"] is not None:
            deleted = " (deleted)" if m["project_deleted"] else ""
            project = f"{m['project_title']!r}{deleted} {m['step']} [{m['project_id'][:8]}]"
        elif m["kind"] == "adjust":
            project = f"by {m['actor']}, ticket {m['ticket']!r}: {m['reason']!r}"
        lines.append(
            f"  {m['position']:>8}  {m['at']:<27}  {m['kind']:<7} {m['amount']:>7}"
            f"  {m['balance']:>7}  {m['reserved']:>8}  {project}".rstrip()
        )
    lines += ["", "  projects:"]
    for p in report["projects"]:
        r = p["reconciliation"] or {"reserved": 0, "charged": 0, "released": 0, "still_reserved": 0}
        verdict = "matches the account" if p["matches_account"] else "DIFFERS FROM THE ACCOUNT"
        deleted = f" (deleted {p['deleted_at']} by {p['deleted_by']})" if p["deleted"] else ""
        lines.append(
            f"    {p['project_id']} {p['title']!r}{deleted}:"
            f" reserved {r['reserved']} = charged {r['charged']} + released {r['released']}"
            f" + still reserved {r['still_reserved']}"
            f" ({'consistent' if p['consistent'] else 'INCONSISTENT'}, {verdict};"
            f" chain {'verified' if p['chain']['verified'] else 'BROKEN'})"
        )
    lines += _findings(report["findings"])
    lines += [
        "",
        "  movements " + ("end at the balance" if report["consistent"] else "DO NOT RECONCILE"),
        "  " + _chain_line(report["chain"]),
        _read_models_line(report),
        "  audit " + ("passed" if report["passed"] else "FAILED"),
    ]
    return lines


def diff_lines(diff: VersionDiff) -> list[str]:
    """What changed between two versions of a project, as lines of text for a terminal."""
    lines = [f"project {diff.project_id}: v{diff.from_version} -> v{diff.to_version}"]
    lines += [f"  {c.field}: {c.before!r} -> {c.after!r}" for c in diff.changes] or [
        "  nothing changed"
    ]
    lines += ["", "  events between:"]
    for event in diff.events:
        shown = event.model_dump()
        lines.append(
            f"  v{event.version:<6} {event.occurred_at or '?':<27}  {event.type:<20}"
            f" {event.actor or '?':<18} {_details(shown)}".rstrip()
        )
    return lines


def _findings(findings: list[JSON]) -> list[str]:
    if not findings:
        return []
    lines = ["", f"  FINDINGS ({len(findings)}):"]
    for f in findings:
        shown = ", ".join(f"v{v}" for v in f["versions"])
        lines.append(f"    {f['kind']}: {f['message']} [{shown}]")
    return lines


def _read_models_line(report: JSON) -> str:
    if not report["read_models_compared"]:
        return "  read models: not compared (none here, or behind the events)"
    if any(f["kind"] == "read_model_disagrees" for f in report["findings"]):
        return "  read models: DISAGREE with the events"
    return "  read models: agree with the events"


def _chain_line(chain: JSON) -> str:
    if chain["verified"]:
        anchored = chain["anchored_version"]
        return f"hash chain: {chain['events']} events verified, head {chain['head']}; " + (
            f"anchored outside the store up to v{anchored}" if anchored else "no anchor yet"
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
    if kind == "ProjectRenamed":
        return f"now {data['title']!r}"
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
