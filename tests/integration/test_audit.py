"""Audits of projects and accounts from the raw stored events, and `aytada-es audit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from audits import account_audit, project_audit, project_state
from histories import a_disputed_history, edit_stored_event

from aytada_es.adapters.chain import stored_history, unseal
from aytada_es.application import Studio
from aytada_es.cli import main
from aytada_es.config import Settings
from aytada_es.domain.errors import AccountNotFound, BadInput, ProjectNotFound
from aytada_es.domain.project import Project
from aytada_es.notation import event_id, jsonable
from aytada_es.projections import read_models
from aytada_es.projections.videos import utc_iso


def stored(studio: Studio) -> int:
    return studio.recorder.max_notification_id() or 0


def version_of(studio: Studio, project_id: UUID, kind: type[Any]) -> int:
    """The version of the project's first event of this type."""
    return next(e.originator_version for e in studio.events.get(project_id) if isinstance(e, kind))


# ---- project reports -----------------------------------------------------------------------------


def test_a_project_audit_shows_every_event_in_order_with_position_time_type_actor_and_data(
    studio: Studio,
) -> None:
    ids = a_disputed_history(studio)
    fizz = studio.project(ids["fizz"])

    report = project_audit(studio, ids["fizz"])

    events = list(studio.events.get(ids["fizz"]))
    positions = [n.id for n in studio.recorder.select_notifications(1, 10_000)]
    of_fizz = [
        n.id for n in studio.recorder.select_notifications(1, 10_000) if n.originator_id == fizz.id
    ]
    assert positions and [e["position"] for e in report["events"]] == of_fizz
    assert report["events"] == [
        {
            "event_id": str(event_id(fizz.id, e.originator_version)),
            "version": e.originator_version,
            "position": position,
            "type": type(e).__name__,
            "occurred_at": utc_iso(e.timestamp),
            "actor": e.actor,  # type: ignore[attr-defined]
            "data": jsonable(studio.event_state(e)),
        }
        for e, position in zip(events, of_fizz, strict=True)
    ]
    actors = {(e["type"], e["actor"]) for e in report["events"]}
    assert {
        ("ProjectCreated", "user:alice"),
        ("StepFailed", "stage:ideas"),
        ("StepRetried", "user:alice"),
        ("ProjectDeleted", "user:alice"),
    } <= actors
    generations = [e["data"] for e in report["events"] if e["type"] == "GenerationRecorded"]
    assert [
        (g["step"], g["provider"], g["units"], g["credits"], g["outcome"]) for g in generations
    ] == [
        ("ideas", "instant", 0, 0, "failed"),
        ("ideas", "instant", 2, 2, "succeeded"),
        ("script", "instant", 1, 2, "succeeded"),
    ]
    credits = [
        (e["type"], e["data"]["step"], e["data"]["amount"])
        for e in report["events"]
        if e["type"].startswith("Credits")
    ]
    assert credits == [
        ("CreditsReserved", "ideas", 3),
        ("CreditsReleased", "ideas", 3),
        ("CreditsReserved", "ideas", 3),
        ("CreditsCharged", "ideas", 2),
        ("CreditsReleased", "ideas", 1),
        ("CreditsReserved", "script", 2),
        ("CreditsCharged", "script", 2),
    ]
    assert report["reconciliation"] == {
        "reserved": 8,
        "charged": 4,
        "released": 4,
        "still_reserved": 0,
        "consistent": True,
    }
    assert (report["owner_id"], report["owner_name"], report["title"]) == (
        str(ids["alice"]),
        "alice",
        "Fizz",
    )
    assert (report["status"], report["deleted"], report["at_version"]) == (
        "script_ready",
        True,
        None,
    )
    assert report["latest_version"] == fizz.version == len(events)
    assert report["project"] == project_state(fizz)
    assert report["project"]["deleted_by"] == "user:alice"
    history = stored_history(studio, fizz.id)
    assert report["chain"] == {
        "verified": True,
        "first_bad_version": None,
        "events": len(events),
        "head": unseal(history[-1].state)[0],  # type: ignore[index]
        "anchors": 0,  # none given: the chain alone
        "anchor_problems": [],
        "anchored_version": None,
    }
    assert report["replay_error"] is None and report["passed"] is True
    assert json.loads(json.dumps(report)) == report


def test_at_version_shows_the_project_exactly_as_it_was_after_that_version(
    studio: Studio,
) -> None:
    ids = a_disputed_history(studio)
    latest = studio.project(ids["fizz"]).version

    for version in range(1, latest + 1):
        then = studio.repository.get(ids["fizz"], version=version)
        report = project_audit(studio, ids["fizz"], at_version=version)
        assert report["project"] == project_state(then)
        assert (report["status"], report["deleted"]) == (str(then.status), then.deleted)
        assert [e["version"] for e in report["events"]] == list(range(1, version + 1))
        ledger = then.reconciliation()
        assert report["reconciliation"]["still_reserved"] == ledger.still_reserved
        assert report["reconciliation"]["reserved"] == ledger.reserved
        assert report["reconciliation"]["consistent"] and report["passed"]
        assert report["latest_version"] == latest
    failure = version_of(studio, ids["fizz"], Project.StepFailed)
    failed = project_audit(studio, ids["fizz"], failure)
    assert failed["status"] == "failed"
    assert failed["project"]["failure"]["error"] == "provider timed out"
    # The release is the next event of the same save: at this version the 3 are still held.
    assert failed["reconciliation"]["still_reserved"] == 3
    assert project_audit(studio, ids["fizz"], failure + 1)["reconciliation"]["still_reserved"] == 0


def test_a_bad_version_or_id_is_refused_and_changes_nothing(studio: Studio) -> None:
    ids = a_disputed_history(studio)
    latest = studio.project(ids["fizz"]).version
    before = stored(studio)

    for bad in (0, -1, latest + 1, True):
        with pytest.raises(BadInput) as refused:
            project_audit(studio, ids["fizz"], at_version=bad)  # type: ignore[arg-type]
        assert refused.value.fields == {
            "at_version": f"a version of the project, from 1 to {latest}"
        }
    for not_a_project in (uuid4(), ids["alice"]):
        with pytest.raises(ProjectNotFound):
            project_audit(studio, not_a_project)
    with pytest.raises(AccountNotFound):
        account_audit(studio, "carol")
    assert stored(studio) == before


def test_an_edited_event_fails_the_audit_at_exactly_that_event(studio: Studio) -> None:
    ids = a_disputed_history(studio)
    charged = version_of(studio, ids["fizz"], Project.CreditsCharged)
    edit_stored_event(studio, ids["fizz"], charged, b'"amount":2', b'"amount":1')

    report = project_audit(studio, ids["fizz"])

    assert report["chain"]["verified"] is False
    assert report["chain"]["first_bad_version"] == charged
    assert report["passed"] is False
    assert report["events"][charged - 1]["data"]["amount"] == 1  # shown as it is now stored
    # Earlier versions replay from events that still match; the audit fails all the same.
    assert project_audit(studio, ids["fizz"], at_version=charged - 1)["passed"] is False
    assert project_audit(studio, ids["spritz"])["passed"] is True


def test_an_event_edited_beyond_reading_is_named_and_the_rest_still_shown(studio: Studio) -> None:
    ids = a_disputed_history(studio)
    charged = version_of(studio, ids["fizz"], Project.CreditsCharged)
    edit_stored_event(studio, ids["fizz"], charged, b'"amount":2}', b'"amount":2')

    report = project_audit(studio, ids["fizz"])

    assert report["chain"]["first_bad_version"] == charged and not report["passed"]
    unreadable = report["events"][charged - 1]
    assert (unreadable["type"], unreadable["data"], unreadable["occurred_at"]) == (
        "CreditsCharged",
        {},
        None,
    )
    assert len(report["events"]) == len(stored_history(studio, ids["fizz"]))
    assert report["replay_error"] == f"event v{charged} cannot be read"
    assert report["project"]["version"] == charged - 1  # as far as the history replays


# ---- account reports -----------------------------------------------------------------------------


def test_the_account_audit_lists_every_movement_with_its_project_ending_at_the_balance(
    studio: Studio,
) -> None:
    ids = a_disputed_history(studio)
    models = read_models(studio)
    while models.catch_up():
        pass

    for name in ("alice", "bob"):
        account = studio.account(ids[name])
        report = account_audit(studio, name)
        live = models.credits.statement(account.id)
        assert [{k: m[k] for k in live["history"][0]} for m in report["history"]] == live["history"]
        assert (report["balance"], report["reserved"]) == (live["balance"], live["reserved"])
        assert (report["balance"], report["reserved"]) == (account.balance, account.reserved)
        last = report["history"][-1]
        assert (last["balance"], last["reserved"]) == (account.balance, account.reserved)
        assert report["consistent"] and report["passed"] and report["chain"]["verified"]

    alice = account_audit(studio, "alice")
    kinds = [m["kind"] for m in alice["history"]]
    assert (
        kinds[0] == "grant"
        and kinds[-1] == "grant"
        and {"reserve", "charge", "release"} <= set(kinds)
    )
    fizz = [m for m in alice["history"] if m["project_id"] == str(ids["fizz"])]
    assert fizz and {(m["project_title"], m["project_deleted"]) for m in fizz} == {("Fizz", True)}
    projects = {p["title"]: p for p in alice["projects"]}
    assert set(projects) == {"Fizz", "Spritz"}
    assert projects["Fizz"]["deleted"] and projects["Fizz"]["matches_account"]
    assert (
        projects["Fizz"]["reconciliation"] == project_audit(studio, ids["fizz"])["reconciliation"]
    )
    bob = account_audit(studio, "bob")
    assert bob["reserved"] == 3 and bob["projects"][0]["reconciliation"]["still_reserved"] == 3


def test_an_edited_movement_or_project_ledger_fails_the_account_audit(studio: Studio) -> None:
    ids = a_disputed_history(studio)
    charged = version_of(studio, ids["fizz"], Project.CreditsCharged)
    edit_stored_event(studio, ids["fizz"], charged, b'"amount":2', b'"amount":1')

    report = account_audit(studio, "alice")

    fizz = next(p for p in report["projects"] if p["title"] == "Fizz")
    assert fizz["chain"]["first_bad_version"] == charged
    assert fizz["matches_account"] is False
    assert report["chain"]["verified"] is True
    assert not report["consistent"] and not report["passed"]

    edit_stored_event(studio, ids["bob"], 2, b'"amount":100', b'"amount":1000')
    bob = account_audit(studio, "bob")
    assert bob["chain"]["first_bad_version"] == 2 and not bob["passed"]
    assert bob["history"][0]["amount"] == 1000 and not bob["consistent"]  # it no longer adds up


# ---- the command line ----------------------------------------------------------------------------


@pytest.fixture
def env(settings: Settings, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": database_url,
        "AYTADA_LOG_LEVEL": "WARNING",
    }


def audit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`aytada-es audit ...` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "aytada_es", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def in_process(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """`aytada-es audit ...` in this process (faster): its exit status, output and errors."""
    for name in ("AYTADA_DATA_DIR", "AYTADA_DATABASE_URL"):
        monkeypatch.setenv(name, env[name])

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(["audit", *args])
        except SystemExit as e:  # argparse refuses
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_audit_command_prints_the_timeline_and_the_reconciliation(
    studio: Studio, env: dict[str, str], in_process: Callable[..., tuple[int, str, str]]
) -> None:
    ids = a_disputed_history(studio)
    fizz = str(ids["fizz"])
    report = project_audit(studio, ids["fizz"])

    text = audit(fizz, env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"project {fizz} 'Fizz' of alice"
    for event in report["events"]:
        line = next(x for x in lines if x.strip().startswith(f"v{event['version']} "))
        for part in (str(event["position"]), event["occurred_at"], event["type"], event["actor"]):
            assert part in line, (part, line)
    assert "ideas v1 by instant: 2 units, 2 credits, succeeded" in text.stdout
    assert "reserved 8 = charged 4 + released 4 + still reserved 0: consistent" in text.stdout
    assert f"hash chain: {len(report['events'])} events verified" in text.stdout
    assert lines[-1].strip() == "audit passed"

    code, out, _ = in_process(fizz, "--json")
    assert code == 0 and json.loads(out) == report
    code, out, _ = in_process(fizz, "--at-version", "4", "--json")
    assert code == 0 and json.loads(out) == project_audit(studio, ids["fizz"], at_version=4)
    assert "after v4 of" in in_process(fizz, "--at-version", "4")[1]

    code, out, err = in_process("--account", "alice")
    assert code == 0, err
    assert "'Fizz' (deleted) ideas" in out and out.splitlines()[-1].strip() == "audit passed"
    code, out, _ = in_process("--account", "alice", "--json")
    assert code == 0 and json.loads(out) == account_audit(studio, "alice")


def test_the_audit_command_exits_1_at_a_broken_chain_and_2_on_bad_input(
    studio: Studio, env: dict[str, str], in_process: Callable[..., tuple[int, str, str]]
) -> None:
    ids = a_disputed_history(studio)
    fizz = str(ids["fizz"])
    latest = studio.project(ids["fizz"]).version
    before = stored(studio)

    for args, message in (
        ((fizz, "--at-version", "0"), f"from 1 to {latest}"),
        ((fizz, "--at-version", str(latest + 1)), f"from 1 to {latest}"),
        ((fizz, "--at-version", "two"), "invalid int value"),
        ((str(uuid4()),), "not found"),
        (("not-a-project",), "project not-a-project not found"),
        ((), "give either a PROJECT_ID or --account USER"),
        ((fizz, "--account", "alice"), "give either a PROJECT_ID or --account USER"),
        (("--account", "alice", "--at-version", "2"), "--at-version applies to a project"),
        (("--account", "carol"), "account carol not found"),
    ):
        code, out, err = in_process(*args)
        assert code == 2, (args, out, err)
        assert message in err and out == ""
    assert stored(studio) == before

    charged = version_of(studio, ids["fizz"], Project.CreditsCharged)
    edit_stored_event(studio, ids["fizz"], charged, b'"amount":2', b'"amount":1')
    broken = audit(fizz, env=env)
    assert broken.returncode == 1
    assert f"hash chain: BROKEN at v{charged}:" in broken.stdout
    assert broken.stdout.splitlines()[-1].strip() == "audit FAILED"
    code, out, _ = in_process(fizz, "--json")
    assert code == 1 and json.loads(out)["chain"]["first_bad_version"] == charged
    assert in_process("--account", "alice")[0] == 1
    assert in_process("--account", "bob")[0] == 0
    assert in_process(str(ids["spritz"]))[0] == 0
