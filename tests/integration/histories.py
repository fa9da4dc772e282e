"""Histories for the audit tests, made with the Studio's own commands, and a hand that edits one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aytada_es.adapters.sql import SQLStore
from aytada_es.application import Studio
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.steps import Step

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
RESULTS: dict[Step, dict[str, Any]] = {
    Step.IDEAS: {"ideas": [{"title": "Wake up to it"}, {"title": "Dawn delivery"}]},
    Step.SCRIPT: {"script": {"title": "Dawn", "text": "Fresh coffee at your door.", "idea": 0}},
}


def current(studio: Studio, project_id: UUID) -> tuple[Step, int]:
    """The step a project's stage is waiting on, and the version of its request."""
    request = studio.project(project_id).request
    assert request is not None
    return Step(request["step"]), request["version"]


def complete(studio: Studio, project_id: UUID, units: int) -> None:
    """What a stage does when the current step succeeds after using `units`."""
    step, version = current(studio, project_id)
    assert studio.complete_step(
        project_id,
        step=step,
        version=version,
        result=RESULTS[step],
        generation={
            "provider": "instant",
            "stage_version": "1",
            "units": units,
            "started_at": T0,
            "finished_at": T0 + timedelta(seconds=2),
            "attempts": 1,
        },
        actor=f"stage:{step}",
    )


def fail(studio: Studio, project_id: UUID) -> None:
    """What a stage does when the current step failed every attempt."""
    step, version = current(studio, project_id)
    assert studio.fail_step(
        project_id,
        step=step,
        version=version,
        code=FailureCode.PROVIDER_UNAVAILABLE,
        error="provider timed out",
        generation={
            "provider": "instant",
            "stage_version": "1",
            "units": 0,
            "started_at": T0,
            "finished_at": T0 + timedelta(seconds=9),
            "attempts": 3,
        },
        actor=f"stage:{step}",
    )


def a_disputed_history(studio: Studio) -> dict[str, UUID]:
    """Alice: "Fizz" failed, retried, scripted, then deleted; "Spritz" kept. Bob: one running."""
    alice = studio.open_account("alice", credits=500)[0].id
    bob = studio.open_account("bob", credits=100)[0].id
    fizz = studio.create_project(
        alice, title="Fizz", format="9:16", brief="Real fruit", actor="user:alice"
    ).id
    studio.request_ideas(alice, fizz, actor="user:alice")
    fail(studio, fizz)
    studio.retry(alice, fizz, actor="user:alice")
    complete(studio, fizz, units=2)  # 3 reserved: 2 charged, 1 released
    studio.request_script(alice, fizz, idea=1, actor="user:alice")
    complete(studio, fizz, units=1)
    studio.delete_project(alice, fizz, actor="user:alice")
    spritz = studio.create_project(
        alice, title="Spritz", format="1:1", brief="Bubbles", actor="user:alice"
    ).id
    studio.request_ideas(alice, spritz, count=2, actor="user:alice")
    complete(studio, spritz, units=2)
    studio.grant_credits("alice", 25, actor="cli")
    cola = studio.create_project(bob, title="Cola", format="4:5", brief="Fizz", actor="user:bob").id
    studio.request_ideas(bob, cola, actor="user:bob")
    return {"alice": alice, "bob": bob, "fizz": fizz, "spritz": spritz, "cola": cola}


def edit_stored_event(
    studio: Studio, aggregate_id: UUID, version: int, old: bytes, new: bytes
) -> None:
    """Edit one stored event's state in place with SQL, as someone with database access could."""
    store = SQLStore.of(studio)
    # SQLite's table is `stored_events`; PostgreSQL's is named after the application.
    table = "{" + getattr(studio.recorder, "events_table_name", "stored_events") + "}"
    key: object = aggregate_id.hex if store.dialect == "sqlite" else aggregate_id
    where = " WHERE originator_id = ? AND originator_version = ?"
    rows = store.query(f"SELECT state FROM {table}{where}", (key, version))
    state = bytes(rows[0]["state"])
    assert old in state, state
    changed = store.execute(
        f"UPDATE {table} SET state = ?{where}", (state.replace(old, new, 1), key, version)
    )
    assert changed == 1
