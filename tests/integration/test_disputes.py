"""Fair audits and settled disputes: findings, `credits adjust`, the account audit, --at, --diff."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from histories import T0, complete, current

from aytada_es.adapters.sql import SQLStore
from aytada_es.application import Studio
from aytada_es.audit.account import account_audit
from aytada_es.audit.project import project_audit, version_diff
from aytada_es.audit.reports import AccountAudit, AuditTrail, VersionDiff
from aytada_es.audit.text import statement
from aytada_es.cli import main
from aytada_es.config import Settings
from aytada_es.domain.account import Account
from aytada_es.domain.errors import BadInput
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Step
from aytada_es.projections import read_models
from aytada_es.projections.audited import ReadSideOf

SCENES = {"scenes": [{"index": i, "duration_s": 3} for i in range(2)]}


def deleted_mid_render_as_release_one_did(studio: Studio) -> tuple[UUID, int]:
    """Release 1: a delete that did not stop the render in flight, whose stage then charged."""
    ann = studio.open_account("ann", credits=200)[0].id
    project_id = studio.create_project(
        ann, title="Late", format="9:16", brief="Night owls", actor="user:ann"
    ).id
    studio.request_ideas(ann, project_id, actor="user:ann")
    complete(studio, project_id, units=2)
    studio.request_script(ann, project_id, idea=0, actor="user:ann")
    complete(studio, project_id, units=1)
    studio.request_scenes(ann, project_id, actor="user:ann")
    step, version = current(studio, project_id)
    assert studio.complete_step(
        project_id,
        step=step,
        version=version,
        result=SCENES,
        generation={
            "provider": "instant",
            "stage_version": "1",
            "units": 2,
            "started_at": T0,
            "finished_at": T0 + timedelta(seconds=2),
            "attempts": 1,
        },
        actor="stage:scenes",
    )
    studio.request_render(ann, project_id, actor="user:ann")
    step, _ = current(studio, project_id)
    assert step is Step.VIDEO
    project, account = studio.project(project_id), studio.account(ann)
    held = dict(project.open_reservations)  # the render reserves video, voiceover, stitching
    # The events as release 1 wrote them: a bare delete, then the render going on, charged.
    project.trigger_event(Project.ProjectDeleted, actor="user:ann")
    for name, amount in held.items():
        project.trigger_event(Project.CreditsCharged, step=name, amount=amount, actor="stage")
        account.trigger_event(
            Account.HoldCharged, project_id=project_id, step=name, amount=amount, actor="stage"
        )
    studio.save(project, account)
    return project_id, sum(held.values())


def test_charges_after_a_delete_are_a_finding_that_fails_the_audit(studio: Studio) -> None:
    project_id, held = deleted_mid_render_as_release_one_did(studio)

    report = project_audit(studio, project_id)
    assert report.reconciliation.consistent and report.chain.verified  # it all adds up...
    assert report.passed is False  # ...but it is not fair
    deleted = next(e for e in report.events if e.type == "ProjectDeleted")
    charges = [
        e for e in report.events if e.type == "CreditsCharged" and e.version > deleted.version
    ]
    assert [f.kind for f in report.findings] == ["charged_after_delete"] * 3
    assert [f.step for f in report.findings] == ["video", "voiceover", "stitching"]
    assert sum(f.amount for f in report.findings) == held > 0
    for finding, charged in zip(report.findings, charges, strict=True):
        assert finding.versions == [deleted.version, charged.version]
        assert finding.event_ids == [deleted.event_id, charged.event_id]

    statement = account_audit(studio, "ann")
    assert statement.consistent and not statement.passed
    assert [f.kind for f in statement.findings] == ["charged_after_delete"] * 3
    [checked] = statement.projects
    assert checked.deleted and checked.deleted_at == deleted.occurred_at
    assert checked.deleted_by == "user:ann"


def test_todays_delete_and_cancel_leave_no_finding(studio: Studio) -> None:
    ann = studio.open_account("ann", credits=100)[0].id
    ids = []
    for title in ("Gone", "Stopped"):
        ids.append(
            studio.create_project(ann, title=title, format="1:1", brief="", actor="user:ann").id
        )
        studio.request_ideas(ann, ids[-1], actor="user:ann")
    studio.delete_project(ann, ids[0], actor="user:ann")
    studio.cancel(ann, ids[1], actor="user:ann")
    for id in ids:
        report = project_audit(studio, id)
        assert report.findings == [] and report.passed, report.findings
    assert account_audit(studio, "ann").passed


def test_credits_held_on_a_failed_project_and_a_charge_after_a_cancel_are_findings(
    studio: Studio,
) -> None:
    ann = studio.open_account("ann", credits=100)[0].id
    id = studio.create_project(ann, title="Held", format="1:1", brief="", actor="user:ann").id
    studio.request_ideas(ann, id, actor="user:ann")
    project = studio.project(id)
    # A cancel whose release was lost, and a late charge of part of what was held.
    project.trigger_event(Project.StepCancelled, step="ideas", actor="user:ann")
    project.trigger_event(Project.CreditsCharged, step="ideas", amount=1, actor="stage")
    account = studio.account(ann)
    account.trigger_event(Account.HoldCharged, project_id=id, step="ideas", amount=1, actor="stage")
    studio.save(project, account)

    report = project_audit(studio, id)
    assert report.status == "failed" and report.reconciliation.consistent
    kinds = {f.kind: f for f in report.findings}
    assert set(kinds) == {"charged_after_cancel", "held_after_failure"}
    assert kinds["held_after_failure"].amount == report.reconciliation.still_reserved > 0
    assert not report.passed


# ---- adjustments -------------------------------------------------------------------------------


def test_a_refund_shows_in_the_statement_the_credits_history_and_the_account_audit(
    studio: Studio,
) -> None:
    _, held = deleted_mid_render_as_release_one_did(studio)
    before = studio.account_named("ann").balance
    studio.adjust_credits(
        "ann", held, reason="charged after the delete", ticket="SUP-14", actor="support:sam"
    )
    assert studio.account_named("ann").balance == before + held

    report = account_audit(studio, "ann")
    refund = report.history[-1]
    assert (refund.kind, refund.amount, refund.balance) == ("adjust", held, before + held)
    assert (refund.actor, refund.reason, refund.ticket) == (
        "support:sam",
        "charged after the delete",
        "SUP-14",
    )
    assert report.consistent and report.chain.verified  # the account reconciles
    assert report.balance == before + held

    models = read_models(studio)
    while models.catch_up():
        pass
    live = models.credits.statement(report.account_id)
    assert live["history"][-1]["kind"] == "adjust" and live["history"][-1]["amount"] == held
    assert (live["balance"], live["reserved"]) == (report.balance, report.reserved)

    text = "\n".join(statement(report))
    assert "adjust" in text and "SUP-14" in text and "support:sam" in text


@pytest.mark.parametrize(
    ("amount", "reason", "ticket", "field"),
    [
        (0, "why", "T-1", "amount"),
        (-101, "why", "T-1", "amount"),  # more than the free balance
        (2**63, "why", "T-1", "amount"),
        (5, "", "T-1", "reason"),
        (5, "why\x00", "T-1", "reason"),
        (5, "why", "T\u202e1", "ticket"),
        (5, "why", "", "ticket"),
    ],
)
def test_a_bad_adjustment_is_refused_and_changes_nothing(
    studio: Studio, amount: int, reason: str, ticket: str, field: str
) -> None:
    studio.open_account("ann", credits=100)
    stored = studio.recorder.max_notification_id()
    with pytest.raises(BadInput) as refused:
        studio.adjust_credits("ann", amount, reason=reason, ticket=ticket)
    assert field in refused.value.fields
    assert studio.recorder.max_notification_id() == stored
    assert studio.account_named("ann").balance == 100


def test_a_negative_adjustment_takes_credits_down_to_zero_but_not_below(studio: Studio) -> None:
    studio.open_account("ann", credits=100)
    studio.adjust_credits("ann", -100, reason="granted by mistake", ticket="T-2")
    assert studio.account_named("ann").balance == 0
    assert account_audit(studio, "ann").passed


# ---- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli(
    settings: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str, str]]:
    """`aytada-es ...` in this process: its exit status, output and errors."""
    monkeypatch.setenv("AYTADA_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AYTADA_DATABASE_URL", database_url)
    monkeypatch.setenv("AYTADA_LOG_LEVEL", "WARNING")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_credits_adjust_and_the_audit_command_show_the_refund_and_the_finding(
    studio: Studio, cli: Callable[..., tuple[int, str, str]]
) -> None:
    project_id, held = deleted_mid_render_as_release_one_did(studio)

    code, out, err = cli("audit", str(project_id), "--json")
    assert code == 1, err
    report = AuditTrail.model_validate_json(out)
    assert [f.kind for f in report.findings] == ["charged_after_delete"] * 3
    code, out, _ = cli("audit", str(project_id))
    assert code == 1 and "charged_after_delete" in out and "audit FAILED" in out

    code, out, err = cli(
        "credits", "adjust", "ann", str(held), "--reason", "charged after delete", "--ticket", "Z-9"
    )
    assert code == 0, err
    assert f"adjusted 'ann' by +{held}" in out
    code, out, _ = cli("audit", "--account", "ann", "--json")
    account = AccountAudit.model_validate_json(out)
    assert account.history[-1].kind == "adjust" and account.history[-1].ticket == "Z-9"
    assert account.history[-1].actor == "cli" and account.consistent

    stored = studio.recorder.max_notification_id()
    code, _, err = cli("credits", "adjust", "ann", "-100000", "--reason", "x", "--ticket", "T")
    assert code == 2 and "bad adjustment" in err
    code, _, err = cli("credits", "adjust", "ann", "ten", "--reason", "x", "--ticket", "T")
    assert code == 2 and "whole number" in err
    code, _, err = cli("credits", "adjust", "nobody", "5", "--reason", "x", "--ticket", "T")
    assert code == 2
    assert studio.recorder.max_notification_id() == stored


def test_at_shows_the_account_as_it_stood_then(
    studio: Studio, cli: Callable[..., tuple[int, str, str]]
) -> None:
    studio.open_account("ann", credits=100)
    studio.adjust_credits("ann", 50, reason="goodwill", ticket="T-1")
    middle = datetime.now(UTC)
    studio.adjust_credits("ann", -30, reason="duplicate refund", ticket="T-2")

    then = account_audit(studio, "ann", middle)
    assert (then.balance, [m.amount for m in then.history]) == (150, [100, 50])
    assert then.at is not None and then.passed
    now = account_audit(studio, "ann")
    assert (now.balance, [m.amount for m in now.history]) == (120, [100, 50, -30])

    code, out, err = cli("audit", "--account", "ann", "--at", middle.isoformat(), "--json")
    assert code == 0, err
    assert AccountAudit.model_validate_json(out) == then
    code, out, _ = cli("audit", "--account", "ann", "--at", middle.isoformat())
    assert code == 0 and f"at {then.at}: balance 150" in out
    assert cli("audit", "--account", "ann", "--at", "yesterday")[0] == 2
    assert cli("audit", "x", "--at", middle.isoformat())[0] == 2


def test_diff_shows_the_fields_that_changed_and_the_events_between(
    studio: Studio, cli: Callable[..., tuple[int, str, str]]
) -> None:
    ann = studio.open_account("ann", credits=100)[0].id
    id = studio.create_project(ann, title="Diff", format="1:1", brief="", actor="user:ann").id
    before = studio.project(id).version
    studio.request_ideas(ann, id, actor="user:ann")
    complete(studio, id, units=2)
    after = studio.project(id).version

    diff = version_diff(studio, id, before, after)
    changed = {c.field: (c.before, c.after) for c in diff.changes}
    assert changed["status"] == ("draft", "ideas_ready")
    assert changed["ideas"][0] == [] and len(changed["ideas"][1]) == 2
    assert "title" not in changed and "format" not in changed
    assert [e.version for e in diff.events] == list(range(before + 1, after + 1))
    assert "IdeasGenerated" in [e.type for e in diff.events]
    assert version_diff(studio, id, after, after).changes == []

    code, out, err = cli("audit", str(id), "--diff", str(before), str(after), "--json")
    assert code == 0, err
    assert VersionDiff.model_validate_json(out) == diff
    code, out, _ = cli("audit", str(id), "--diff", str(before), str(after))
    assert "status: 'draft' -> 'ideas_ready'" in out and "IdeasGenerated" in out
    assert cli("audit", str(id), "--diff", str(after), str(before))[0] == 2
    assert cli("audit", str(id), "--diff", "1", str(after + 5))[0] == 2
    assert cli("audit", "--account", "ann", "--diff", "1", "2")[0] == 2


# ---- read models against the store -------------------------------------------------------------


def test_a_read_model_that_disagrees_with_the_store_is_a_finding(
    studio: Studio, cli: Callable[..., tuple[int, str, str]]
) -> None:
    ann = studio.open_account("ann", credits=100)[0].id
    id = studio.create_project(ann, title="Read", format="1:1", brief="", actor="user:ann").id
    studio.request_ideas(ann, id, actor="user:ann")
    complete(studio, id, units=2)
    models = read_models(studio)
    while models.catch_up():
        pass
    side = ReadSideOf(models)
    agreed = project_audit(studio, id, read_side=side)
    assert agreed.read_models_compared and agreed.passed and agreed.findings == []
    assert account_audit(studio, "ann", read_side=side).passed
    code, out, _ = cli("audit", str(id))
    assert code == 0 and "read models: agree with the events" in out

    store = SQLStore.of(studio)
    store.execute(
        "UPDATE {aytada_credit_ledgers} SET charged = charged + 5 WHERE project_id = ?", (str(id),)
    )
    store.execute(
        "UPDATE {aytada_accounts} SET balance = balance - 5 WHERE id = ?",
        (str(ann),),
    )
    report = project_audit(studio, id, read_side=side)
    [finding] = report.findings
    assert finding.kind == "read_model_disagrees" and not report.passed
    assert report.reconciliation.consistent  # the events themselves are fine
    account = account_audit(studio, "ann", read_side=side)
    assert [f.kind for f in account.findings] == ["read_model_disagrees"] * 2
    assert "accounts read model" in account.findings[-1].message
    code, out, _ = cli("audit", str(id))
    assert code == 1 and "read models: DISAGREE with the events" in out
    assert project_audit(studio, id).passed  # without the read models: nothing to compare


def test_read_models_behind_the_events_are_not_compared(studio: Studio) -> None:
    ann = studio.open_account("ann", credits=100)[0].id
    models = read_models(studio)
    while models.catch_up():
        pass
    id = studio.create_project(ann, title="Late", format="1:1", brief="", actor="user:ann").id
    studio.request_ideas(ann, id, actor="user:ann")  # not applied yet
    report = project_audit(studio, id, read_side=ReadSideOf(models))
    assert not report.read_models_compared and report.passed


def test_at_checks_each_project_as_it_stood_then(studio: Studio) -> None:
    ann = studio.open_account("ann", credits=100)[0].id
    id = studio.create_project(ann, title="Then", format="1:1", brief="", actor="user:ann").id
    studio.request_ideas(ann, id, actor="user:ann")
    held = studio.project(id).reconciliation().still_reserved
    middle = datetime.now(UTC)
    complete(studio, id, units=2)
    studio.delete_project(ann, id, actor="user:ann")

    then = account_audit(studio, "ann", middle)
    [project] = then.projects
    assert project.reconciliation is not None
    assert (project.reconciliation.still_reserved, project.reconciliation.charged) == (held, 0)
    assert project.matches_account and not project.deleted and then.passed
    assert (then.balance, then.reserved) == (100 - held, held)
    now = account_audit(studio, "ann")
    assert now.projects[0].deleted and now.projects[0].reconciliation.still_reserved == 0
    assert now.reserved == 0 and now.passed


def test_a_charge_for_a_failed_step_and_credits_held_on_a_deleted_project_are_findings(
    studio: Studio,
) -> None:
    ann = studio.open_account("ann", credits=100)[0].id
    id = studio.create_project(ann, title="Fail", format="1:1", brief="", actor="user:ann").id
    studio.request_ideas(ann, id, actor="user:ann")
    project, account = studio.project(id), studio.account(ann)
    held = project.open_reservations["ideas"]
    # A failure recorded with no release, a charge for the failed step, a bare delete.
    project.trigger_event(
        Project.StepFailed, step="ideas", code="internal", error="boom", attempts=1, actor="stage"
    )
    project.trigger_event(Project.CreditsCharged, step="ideas", amount=1, actor="stage")
    account.trigger_event(Account.HoldCharged, project_id=id, step="ideas", amount=1, actor="stage")
    project.trigger_event(Project.ProjectDeleted, actor="user:ann")
    studio.save(project, account)

    report = project_audit(studio, id)
    assert report.reconciliation.consistent and report.chain.verified
    failed = next(e for e in report.events if e.type == "StepFailed")
    charged = next(e for e in report.events if e.type == "CreditsCharged")
    reserved = next(e for e in report.events if e.type == "CreditsReserved")
    assert [(f.kind, f.amount, f.versions) for f in report.findings] == [
        ("charged_for_failed_step", 1, [failed.version, charged.version]),
        ("held_after_delete", held - 1, [reserved.version]),
    ]
    assert not report.passed and not account_audit(studio, "ann").passed
