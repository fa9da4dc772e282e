"""Every event class says which version of its shape it records; each upcaster, one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic

from aytada_es.adapters.chain import ChainMapper
from aytada_es.domain.account import Account
from aytada_es.domain.credits import amounts_of_old_reason
from aytada_es.domain.errors import InsufficientCredits
from aytada_es.domain.project import Project

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
EVENT_CLASSES = [
    cls
    for aggregate in (Project, Account)
    for cls in vars(aggregate).values()
    if isinstance(cls, type)
    and issubclass(cls, Aggregate.Event)
    and cls.__name__ != "Created"  # made by the library for each aggregate; never stored here
]


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_every_event_class_declares_its_version_and_an_upcaster_from_each_older_one(
    cls: type[Any],
) -> None:
    # Declared on the class itself: an inherited version would make a subclass evolve unseen.
    assert "class_version" in vars(cls), f"{cls.__qualname__} declares no class_version"
    version = vars(cls)["class_version"]
    assert isinstance(version, int) and version >= 1
    for n in range(1, version):
        assert isinstance(vars(cls).get(f"upcast_v{n}_v{n + 1}"), staticmethod), (cls, n)


def test_every_aggregate_event_is_checked() -> None:
    names = {cls.__qualname__ for cls in EVENT_CLASSES}
    assert {"Project.AutopilotPaused", "Project.StepFailed", "Account.TokenRotated"} <= names
    assert len(EVENT_CLASSES) >= 35


def test_generation_recorded_v1_had_no_stage_version() -> None:
    state: dict[str, Any] = {"step": "ideas", "provider": "offline", "units": 3}
    Project.GenerationRecorded.upcast_v1_v2(state)
    assert state["stage_version"] == ""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("ProviderError: LLM: HTTP 503 from POST /chat/completions: busy", "provider_unavailable"),
        ("ProviderError: rate limited (HTTP 429)", "rate_limited"),
        ("PermanentProviderError: HTTP 401 refused", "provider_rejected"),
        ("ValueError: no ideas in the answer", "invalid_output"),
        ("KeyError: 'scenes'", "internal"),
    ],
)
def test_step_failed_v1_gets_the_code_its_error_implies(error: str, code: str) -> None:
    state: dict[str, Any] = {"step": "ideas", "error": error, "attempts": 3}
    Project.StepFailed.upcast_v1_v2(state)
    assert state["code"] == code
    assert state["error"] == error


def test_autopilot_paused_v1_gets_the_amounts_its_reason_stated() -> None:
    state: dict[str, Any] = {"step": "script", "reason": str(InsufficientCredits(14, 3))}
    Project.AutopilotPaused.upcast_v1_v2(state)
    assert (state["needed"], state["balance"]) == (14, 3)
    assert state["reason"] == "this step needs 14 credits; the balance is 3"


def test_autopilot_paused_v1_whose_reason_states_no_amounts_reads_as_unknown() -> None:
    state: dict[str, Any] = {"step": "ideas", "reason": "insufficient credits"}
    Project.AutopilotPaused.upcast_v1_v2(state)
    assert (state["needed"], state["balance"]) == (None, None)


def test_the_reason_parser_reads_what_the_domain_writes_today() -> None:
    # Should the message ever change, release 1's wording still has to parse.
    assert amounts_of_old_reason(InsufficientCredits(7, 2).message) == (7, 2)
    assert amounts_of_old_reason("this step needs 1 credits; the balance is 0") == (1, 0)


@pytest.mark.parametrize("cls", [Account.AccountOpened, Account.TokenRotated])
def test_account_events_v1_without_an_expiry_never_expire(cls: type[Any]) -> None:
    state: dict[str, Any] = {"token_hash": "0" * 64}
    cls.upcast_v1_v2(state)
    assert state["token_expires_at"] is None

    # Stored after expiry existed but before the event had a version: kept as it was.
    later: dict[str, Any] = {"token_hash": "0" * 64, "token_expires_at": T0}
    cls.upcast_v1_v2(later)
    assert later["token_expires_at"] == T0


def mapper() -> ChainMapper:
    """The application's mapper: JSON with UUIDs and times."""
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    return ChainMapper(transcoder)


def test_the_current_shape_is_stored_with_its_class_version_and_reads_back() -> None:
    project = Project.create(
        owner_id=uuid4(), title="Fizz", format="9:16", brief="", autopilot=True, actor="bob"
    )
    project.pause_autopilot(needed=3, balance=1, actor="autopilot")
    paused = project.collect_events()[-1]
    stored = mapper().to_stored_event(paused)
    assert json.loads(stored.state)["class_version"] == 2
    assert (json.loads(stored.state)["needed"], json.loads(stored.state)["balance"]) == (3, 1)

    read = mapper().to_domain_event(stored)
    assert isinstance(read, Project.AutopilotPaused)
    assert (read.needed, read.balance, read.reason) == (
        3,
        1,
        "this step needs 3 credits; the balance is 1",
    )


def test_a_version_one_row_is_upcast_on_reading() -> None:
    project_id = uuid4()
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": T0.isoformat()},
        "actor": "autopilot",
        "step": "ideas",
        "reason": "this step needs 3 credits; the balance is 0",
    }
    stored = StoredEvent(
        project_id,
        2,
        get_topic(Project.AutopilotPaused),
        json.dumps(state, separators=(",", ":")).encode(),
    )
    read = mapper().to_domain_event(stored)
    assert isinstance(read, Project.AutopilotPaused)
    assert (read.needed, read.balance) == (3, 0)
    assert read.originator_id == project_id and read.timestamp == T0
