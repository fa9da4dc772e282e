"""Events stored by release 1 read back as today's: the application, every read model, the
relay's envelope and the audit all see the current shape, and the hash chain still holds.

Release 1 (the first one deployed) stored some events in an older shape, with no class
version. The rows here are written as it wrote them: its event classes are kept below, and the
seal is computed by its own hash function, copied here, so that a change to today's chain that
would break old histories fails this test. To evolve another event, add its release-N class
below and a history that records it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from audits import project_audit
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from polling import read_topic

from aytada_es.application import Studio
from aytada_es.bootstrap import make_relay
from aytada_es.cli import main
from aytada_es.config import Settings
from aytada_es.domain.account import Account
from aytada_es.domain.credits import CreditMovement
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.status import Status
from aytada_es.domain.steps import Step
from aytada_es.kafka import clients
from aytada_es.kafka.envelope import AccountEnvelope, Envelope
from aytada_es.kafka.topics import ACCOUNT_EVENTS, PROJECT_EVENTS, ensure_topics
from aytada_es.notation import json_default
from aytada_es.projections import read_models

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SCRIPT = {"title": "Wake up", "text": "Fresh coffee at your door before you wake up.", "idea": 0}
ERROR = "ProviderError: LLM: HTTP 503 from POST /chat/completions: busy"


class ReleaseOne:
    """Release 1's definitions of the events whose shape has changed since (fields only)."""

    class GenerationRecorded(Project.Event):
        step: str
        provider: str
        units: int
        credits: int
        started_at: datetime
        finished_at: datetime
        outcome: str
        attempts: int
        error: str

    class StepFailed(Project.Event):
        step: str
        error: str
        attempts: int

    class AutopilotPaused(Project.Event):
        step: str
        reason: str

    class AccountOpened(Account.Event, Aggregate.Created):
        name: str
        role: str
        token_hash: str

    class TokenRotated(Account.Event):
        token_hash: str


BOOKKEEPING = ("originator_id", "originator_version", "timestamp", "originator_topic")
EVOLVED: dict[type[Any], type[Any]] = {
    Project.GenerationRecorded: ReleaseOne.GenerationRecorded,
    Project.StepFailed: ReleaseOne.StepFailed,
    Project.AutopilotPaused: ReleaseOne.AutopilotPaused,
    Account.AccountOpened: ReleaseOne.AccountOpened,
    Account.TokenRotated: ReleaseOne.TokenRotated,
}


def release_one_hash(
    previous: str, originator_id: UUID, version: int, topic: str, body: bytes
) -> str:
    """Release 1's seal: sha256 of the previous hash, the id, the version, the topic, the JSON."""
    head = previous.encode() + originator_id.bytes + version.to_bytes(8, "big") + topic.encode()
    return hashlib.sha256(head + b"\n" + body).hexdigest()


def as_release_one_stored(studio: Studio, events: list[Any]) -> list[StoredEvent]:
    """The rows release 1 wrote for these events (today's classes, in release 1's shape)."""
    heads: dict[UUID, str] = {}
    rows = []
    for event in events:
        topic = get_topic(type(event))  # release 1's classes lived where today's do
        old_class = EVOLVED.get(type(event))
        if old_class is not None:
            shape = {*old_class.__annotations__, "actor", *BOOKKEEPING}
            old = object.__new__(old_class)
            old.__dict__.update({k: v for k, v in vars(event).items() if k in shape})
            event = old
        plain = studio.sealed_mapper.to_stored_event(event)  # release 1 sealed no text
        assert b'"class_version"' not in plain.state  # release 1 wrote no class versions
        previous = heads.get(event.originator_id, "0" * 64)
        digest = release_one_hash(
            previous, event.originator_id, event.originator_version, topic, plain.state
        )
        heads[event.originator_id] = digest
        sealed = b'{"_chain":"' + digest.encode() + b'",' + plain.state[1:]
        rows.append(StoredEvent(event.originator_id, event.originator_version, topic, sealed))
    return rows


@dataclass
class History:
    """What release 1 did for two owners, with the events today's domain records for it."""

    alice: Account
    bob: Account
    fizz: Project  # alice's: ideas to the finished video
    buzz: Project  # bob's: autopilot paused, then ideas failed, then deleted
    events: list[Any] = field(default_factory=list)

    def keep(self, *aggregates: Account | Project) -> None:
        for aggregate in aggregates:
            self.events += aggregate.collect_events()


def an_asset(kind: str, content_type: str, n: int = 0) -> dict[str, Any]:
    return {
        "id": f"{kind}-{n}",
        "kind": kind,
        "url": f"/api/assets/{kind}-{n}",
        "content_type": content_type,
        "created_at": T0.isoformat(),
    }


def a_generation(units: int, attempts: int = 1) -> dict[str, Any]:
    # Release 1 recorded no stage version: today that reads as "".
    return {
        "provider": "offline",
        "stage_version": "",
        "units": units,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2),
        "attempts": attempts,
    }


RESULTS: dict[Step, tuple[dict[str, Any], int]] = {
    Step.IDEAS: ({"ideas": [{"title": f"Idea {i}", "hook": "Wake up"} for i in range(3)]}, 3),
    Step.SCRIPT: ({"script": SCRIPT}, 1),
    Step.SCENES: ({"scenes": [{"index": i, "duration_s": 3} for i in range(2)]}, 2),
    Step.VIDEO: ({"duration_s": 6.0}, 6),
    Step.VOICEOVER: ({"asset": an_asset("voiceover", "audio/mpeg")}, 45),
    Step.STITCHING: (
        {
            "video": an_asset("final_video", "video/mp4"),
            "thumbnail": an_asset("thumbnail", "image/jpeg"),
        },
        1,
    ),
}


def release_one_history() -> History:
    token = "0" * 64
    alice = Account.open(name="alice", role="user", token_hash=token, actor="cli")
    alice.grant(500, actor="cli")
    bob = Account.open(name="bob", role="user", token_hash=token, actor="cli")
    fizz = Project.create(
        owner_id=alice.id, title="Fizz", format="9:16", brief="Soda", autopilot=False, actor="alice"
    )
    buzz = Project.create(
        owner_id=bob.id, title="Buzz", format="1:1", brief="Bees", autopilot=True, actor="bob"
    )
    history = History(alice, bob, fizz, buzz)
    history.keep(alice, bob, fizz, buzz)

    def command(project: Project, account: Account, movements: list[CreditMovement]) -> None:
        account.apply_movements(project.id, movements, actor="stage")
        history.keep(project, account)

    def finish(step: Step) -> None:
        assert fizz.request is not None and fizz.request["step"] == step.value
        result, units = RESULTS[step]
        if step is Step.VIDEO:
            for scene in range(2):
                clip = an_asset("clip", "video/mp4", scene)
                fizz.record_clip(
                    version=fizz.request["version"], scene=scene, asset=clip, actor="stage"
                )
        movements = fizz.succeed(
            step=step,
            version=fizz.request["version"],
            result=result,
            generation=a_generation(units),
            actor=f"stage:{step.value}",
        )
        command(fizz, alice, movements)

    command(fizz, alice, fizz.request_ideas(count=3, actor="alice"))
    finish(Step.IDEAS)
    command(fizz, alice, fizz.request_script(idea=0, actor="alice"))
    finish(Step.SCRIPT)
    command(fizz, alice, fizz.request_scenes(actor="alice"))
    finish(Step.SCENES)
    fizz.add_assets(assets=[an_asset("scene_still", "image/png")], actor="stage:scenes")
    history.keep(fizz)
    command(fizz, alice, fizz.request_render(actor="alice"))
    for step in (Step.VIDEO, Step.VOICEOVER, Step.STITCHING):
        finish(step)

    # Bob has no credits: autopilot pauses at once. Then he gets some, asks, and it fails.
    buzz.pause_autopilot(needed=buzz.autopilot_cost(), balance=bob.balance, actor="autopilot")
    history.keep(buzz)
    bob.grant(10, actor="cli")
    bob.rotate_token("1" * 64, actor="cli")
    history.keep(bob)
    command(buzz, bob, buzz.request_ideas(count=2, actor="bob"))
    assert buzz.request is not None
    failed = buzz.fail(
        step=Step.IDEAS,
        version=buzz.request["version"],
        code=FailureCode.PROVIDER_UNAVAILABLE,  # release 1 kept the error only
        error=ERROR,
        generation=a_generation(0, attempts=3),
        actor="stage:ideas",
    )
    command(buzz, bob, failed)
    command(buzz, bob, buzz.delete(actor="bob"))
    assert fizz.status is Status.COMPLETED and buzz.deleted
    return history


@pytest.fixture
def written(settings: Settings) -> Iterator[tuple[Studio, History, list[StoredEvent]]]:
    """A store that release 1 wrote: its rows, and the history they came from."""
    studio = Studio(settings.database().eventsourcing_env())
    try:
        history = release_one_history()
        rows = as_release_one_stored(studio, history.events)
        studio.recorder.insert_events(rows)
        yield studio, history, rows
    finally:
        studio.close()


def state(aggregate: Project | Account) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def normal(value: Any) -> Any:
    """A value as JSON would carry it."""
    return json.loads(json.dumps(value, default=json_default))


def test_the_rows_are_release_one_shapes(
    written: tuple[Studio, History, list[StoredEvent]],
) -> None:
    studio, _, rows = written
    stored = studio.recorder.select_notifications(1, 1000)
    assert [n.state for n in stored] == [r.state for r in rows]
    for absent in (b'"class_version"', b'"code"', b'"stage_version"', b'"needed"'):
        assert not any(absent in n.state for n in stored), absent
    assert not any(b'"token_expires_at"' in n.state for n in stored)
    topics = {n.topic for n in stored}
    assert "aytada_es.domain.project:Project.AutopilotPaused" in topics
    assert "aytada_es.domain.account:Account.AccountOpened" in topics


def test_the_application_reads_release_one_events_as_the_current_version(
    written: tuple[Studio, History, list[StoredEvent]],
) -> None:
    studio, history, _ = written
    for made in (history.fizz, history.buzz):
        loaded = studio.project(made.id)
        assert state(loaded) == state(made)
    for made_account in (history.alice, history.bob):
        assert state(studio.account(made_account.id)) == state(made_account)

    buzz = studio.project(history.buzz.id)
    assert buzz.autopilot_paused == {
        "step": "ideas",
        "reason": "this step needs 3 credits; the balance is 0",
        "needed": 3,
        "balance": 0,
    }
    assert buzz.failure is not None and buzz.failure["code"] == "provider_unavailable"
    assert studio.account(history.bob.id).token_expires_at is None

    events = list(studio.events.get(history.buzz.id))
    paused = next(e for e in events if isinstance(e, Project.AutopilotPaused))
    assert (paused.needed, paused.balance) == (3, 0)
    generation = next(e for e in events if isinstance(e, Project.GenerationRecorded))
    assert generation.stage_version == ""


def test_every_read_model_rebuilds_from_release_one_events(
    written: tuple[Studio, History, list[StoredEvent]],
) -> None:
    studio, history, rows = written
    alice, bob, fizz = history.alice, history.bob, history.fizz
    models = read_models(studio)
    assert models.rebuild() == len(rows)

    position, cards = models.videos.videos_of(alice.id)
    assert position == len(rows)
    assert [(c["title"], c["status"], c["progress"]) for c in cards] == [("Fizz", "completed", 100)]
    assert cards[0]["thumbnail_url"] == "/api/assets/thumbnail-0"
    assert models.videos.videos_of(bob.id)[1] == []  # buzz is deleted

    scripts = models.scripts.scripts_of(alice.id)
    assert [(s["project_id"], s["text"], s["words"]) for s in scripts] == [
        (str(fizz.id), SCRIPT["text"], 9)
    ]
    assert [(i["id"], i["kind"]) for i in models.images.images_of(alice.id)] == [
        ("scene_still-0", "scene_still")
    ]
    assert models.images.asset("thumbnail-0") is not None

    for account in (alice, bob):
        statement = models.credits.statement(account.id)
        assert (statement["balance"], statement["reserved"]) == (account.balance, 0)
    alice_kinds = [m["kind"] for m in models.credits.statement(alice.id)["history"]]
    assert alice_kinds.count("grant") == 1 and "charge" in alice_kinds
    for project in (history.fizz, history.buzz):
        ledger = models.credits.project_ledger(project.id)
        assert ledger is not None and ledger["consistent"]
        assert ledger["charged"] == project.charged

    deleted = models.deleted.deleted_projects()
    assert [(d["project_id"], d["title"], d["owner_name"]) for d in deleted] == [
        (str(history.buzz.id), "Buzz", "bob")
    ]
    viewed = models.accounts.account(bob.id)
    assert viewed is not None
    assert (viewed["token_hash"], viewed["token_expires_at"]) == ("1" * 64, None)
    assert models.accounts.account_by_token_hash("1" * 64) == viewed


@pytest.mark.kafka
async def test_the_relay_publishes_release_one_events_in_the_current_shape(
    written: tuple[Studio, History, list[StoredEvent]], settings: Settings, broker: str
) -> None:
    studio, history, rows = written
    topics = [settings.topic(PROJECT_EVENTS), settings.topic(ACCOUNT_EVENTS)]
    await ensure_topics(broker, topics, 6)
    producer = clients.producer(broker)
    await producer.start()
    try:
        relay = make_relay(studio, settings, producer, bootstrap=broker)
        while await relay.publish_batch():
            pass
    finally:
        await producer.stop()
    records = await read_topic(broker, topics, len(rows))
    assert len(records) == len(rows)

    published: dict[tuple[UUID, int], dict[str, Any]] = {}
    for record in records:
        if record.topic == topics[0]:
            envelope = Envelope.from_bytes(record.value)  # what every consumer checks
            key = (envelope.project_id, envelope.version)
        else:
            account = AccountEnvelope.model_validate_json(record.value)
            key = (account.account_id, account.version)
        published[key] = json.loads(record.value)

    # Each message carries exactly what today's release publishes for the same event.
    for event in history.events:
        message = published[(event.originator_id, event.originator_version)]
        assert message["type"] == type(event).__name__
        assert message["data"] == normal(studio.event_state(event)), type(event).__name__

    data = {m["type"]: m["data"] for m in published.values()}
    assert data["StepFailed"]["code"] == "provider_unavailable"
    assert (data["AutopilotPaused"]["needed"], data["AutopilotPaused"]["balance"]) == (3, 0)
    assert data["GenerationRecorded"]["stage_version"] == ""
    assert data["AccountOpened"]["token_expires_at"] is None
    assert data["TokenRotated"]["token_expires_at"] is None


@pytest.fixture
def audit_command(
    settings: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[[str], tuple[int, str]]:
    """`aytada-es audit PROJECT_ID` in this process: its exit status and output."""
    monkeypatch.setenv("AYTADA_DATA_DIR", str(Path(settings.data_dir)))
    monkeypatch.setenv("AYTADA_DATABASE_URL", database_url)

    def run(project_id: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["audit", project_id])
        return code, capsys.readouterr().out

    return run


def test_the_audit_of_release_one_events_verifies_their_chain_and_shows_the_current_shape(
    written: tuple[Studio, History, list[StoredEvent]],
    audit_command: Callable[[str], tuple[int, str]],
) -> None:
    studio, history, _ = written
    for project in (history.fizz, history.buzz):
        report = project_audit(studio, project.id)
        assert report["chain"]["verified"] and report["passed"], report["chain"]
        code, out = audit_command(str(project.id))
        assert code == 0, out

    report = project_audit(studio, history.buzz.id)
    failed = next(e for e in report["events"] if e["type"] == "StepFailed")
    assert failed["data"]["code"] == "provider_unavailable"
    paused = next(e for e in report["events"] if e["type"] == "AutopilotPaused")
    assert (paused["data"]["needed"], paused["data"]["balance"]) == (3, 0)


def test_events_the_current_release_adds_to_a_release_one_history_keep_the_chain(
    written: tuple[Studio, History, list[StoredEvent]],
    audit_command: Callable[[str], tuple[int, str]],
) -> None:
    studio, history, _ = written
    studio.restore_project(history.buzz.id, actor="bob")
    studio.delete_project(history.alice.id, history.fizz.id, actor="alice")

    for project in (history.fizz, history.buzz):
        assert project_audit(studio, project.id)["chain"]["verified"]
        assert audit_command(str(project.id))[0] == 0
    assert not studio.project(history.buzz.id).deleted
    assert studio.project(history.fizz.id).deleted
