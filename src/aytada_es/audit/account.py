"""An account's audit: every credit movement replayed with its project, each project checked."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.utils import get_topic

from ..adapters.anchors import AnchorLog
from ..adapters.chain import head_of, stored_history
from ..application import Studio
from ..domain.account import MOVEMENT_EFFECTS, Account, AccountMovement
from ..domain.errors import AccountNotFound, ProjectNotFound
from ..notation import utc_iso
from .findings import ReadSide, balance_disagreement
from .history import chain_check, decoded
from .project import project_audit, version_at
from .reports import AccountAudit, ChainCheck, ProjectCheck, StatementLine

_ACCOUNT_OPENED = get_topic(Account.AccountOpened)


def account_audit(
    studio: Studio,
    name: str,
    at: datetime | None = None,
    read_side: ReadSide | None = None,
    anchors: AnchorLog | None = None,
) -> AccountAudit:
    """Every credit movement of an account (up to `at`) with its project and the running balance.

    Each project the movements name is checked too: its own chain, its own ledger, its
    findings, and that ledger against the account's movements for it. With `at`, the balance
    is the one the movements up to `at` leave, and each project is checked as it stood then.
    With `read_side`, the read models' balances and ledgers are compared with the replay too.
    """
    account = studio.account_named(name)
    history = stored_history(studio, account.id)
    if not history or history[0].topic != _ACCOUNT_OPENED:
        raise AccountNotFound(name)
    events = decoded(studio, history)
    unreadable = [s.originator_version for s, e in zip(history, events, strict=True) if e is None]
    balance = reserved = 0
    lines: list[StatementLine] = []
    per_project: dict[str, dict[str, int]] = {}
    for stored, event in zip(history, events, strict=True):
        if not isinstance(event, AccountMovement):
            continue
        if at is not None and event.timestamp > at:
            break
        kind, to_balance, to_reserved = MOVEMENT_EFFECTS[type(event)]
        amount = event.amount
        balance += to_balance * amount
        reserved += to_reserved * amount
        line = StatementLine(
            position=stored.id,
            version=stored.originator_version,
            at=utc_iso(event.timestamp),
            kind=kind,
            actor=event.actor,
            project_id=None,
            project_title=None,
            project_deleted=None,
            step=None,
            amount=amount,
            balance=balance,
            reserved=reserved,
            head=head_of([stored]),
        )
        if isinstance(event, Account.CreditsAdjusted):
            line.reason, line.ticket = event.reason, event.ticket
        elif not isinstance(event, Account.CreditsGranted):
            line.project_id, line.step = str(event.project_id), event.step
            sums = per_project.setdefault(
                line.project_id, {"reserve": 0, "charge": 0, "release": 0}
            )
            sums[kind] += amount
        lines.append(line)
    projects = [
        _project_check(studio, UUID(id), sums, at, read_side, anchors)
        for id, sums in per_project.items()
    ]
    by_id = {p.project_id: p for p in projects}
    for line in lines:
        if line.project_id is not None:
            found = by_id[line.project_id]
            line.project_title, line.project_deleted = found.title, found.deleted
            line.project_deleted_at = found.deleted_at
    chain = chain_check(history, anchors)
    if at is None:
        ends_at_balance = (balance, reserved) == (account.balance, account.reserved)
    else:
        ends_at_balance = True  # the balance then is what the movements up to then leave
    consistent = ends_at_balance and all(p.consistent and p.matches_account for p in projects)
    findings = [f for p in projects for f in p.findings]
    compared = None
    if read_side is not None and at is None:
        replayed = (account.balance, account.reserved)
        compared = balance_disagreement(read_side, account.id, replayed, history[-1].id)
        findings += compared or []
    return AccountAudit(
        account_id=str(account.id),
        name=account.name,
        role=account.role,
        at=None if at is None else utc_iso(at),
        balance=balance if at is not None else account.balance,
        reserved=reserved if at is not None else account.reserved,
        history=lines,
        projects=projects,
        consistent=consistent,
        chain=chain,
        unreadable_versions=unreadable,
        findings=findings,
        read_models_compared=compared is not None,
        passed=consistent
        and chain.verified
        and not unreadable
        and not findings
        and all(p.chain.verified for p in projects),
    )


def _project_check(
    studio: Studio,
    project_id: UUID,
    sums: dict[str, int],
    at: datetime | None,
    read_side: ReadSide | None,
    anchors: AnchorLog | None = None,
) -> ProjectCheck:
    """A project an account's movements name: its ledger, and whether the two agree."""
    try:
        then = None if at is None else version_at(studio, project_id, at)
        report = project_audit(studio, project_id, then, None if at else read_side, anchors)
    except ProjectNotFound:
        return ProjectCheck(
            project_id=str(project_id),
            title=None,
            deleted=None,
            reconciliation=None,
            consistent=False,
            matches_account=False,
            chain=ChainCheck(verified=False, first_bad_version=1, events=0, head=None),
        )
    own = report.reconciliation
    state = report.project or {}
    matches = (own.reserved, own.charged, own.released) == (
        sums["reserve"],
        sums["charge"],
        sums["release"],
    )
    return ProjectCheck(
        project_id=str(project_id),
        title=report.title,
        deleted=report.deleted,
        deleted_at=state.get("deleted_at"),
        deleted_by=state.get("deleted_by"),
        reconciliation=own,
        consistent=own.consistent and report.replay_error is None,
        matches_account=matches,
        chain=report.chain,
        findings=report.findings,
    )
