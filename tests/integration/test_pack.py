"""Dispute packs (export, verify offline) and the chain anchors that catch a consistent rewrite."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from histories import a_disputed_history
from polling import read_topic, wait_for

from aytada_es.adapters.anchors import AnchorLog
from aytada_es.adapters.chain import chain_hash, seal, stored_history, unseal
from aytada_es.adapters.sql import SQLStore
from aytada_es.anchoring import Anchorer
from aytada_es.application import Studio
from aytada_es.audit.project import project_audit
from aytada_es.config import Settings
from aytada_es.kafka import clients
from aytada_es.kafka.topics import TopicNames, ensure_topics
from aytada_es.pack.verify import verify

DOCS = Path(__file__).parents[2] / "docs" / "auditing.md"


@pytest.fixture
def env(settings: Settings, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": database_url,
        "AYTADA_LOG_LEVEL": "WARNING",
    }


def aytada(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`aytada-es ...` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "aytada_es", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def anchored(studio: Studio, settings: Settings) -> AnchorLog:
    """Anchor everything stored so far, as the relay role does as the store grows."""
    log = AnchorLog(settings.anchors_dir)
    Anchorer(studio, log, interval_s=1, every=1).anchor()
    return log


def an_empty_place(tmp_path: Path) -> dict[str, str]:
    """An environment with an empty data dir and no database: all a verifier has is the file."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AYTADA_")}
    return {**env, "AYTADA_DATA_DIR": str(empty)}


def flipped(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def rewrite_consistently(studio: Studio, aggregate_id: UUID, old: bytes, new: bytes) -> int:
    """Edit an aggregate's stored events with SQL and recompute every hash after the edit."""
    store = SQLStore.of(studio)
    table = "{" + getattr(studio.recorder, "events_table_name", "stored_events") + "}"
    key: object = aggregate_id.hex if store.dialect == "sqlite" else aggregate_id
    where = " WHERE originator_id = ? AND originator_version = ?"
    previous, edited = "0" * 64, 0
    for stored in stored_history(studio, aggregate_id):
        sealed = unseal(stored.state)
        assert sealed is not None
        body = sealed[1].replace(old, new)
        edited += body != sealed[1]
        version = stored.originator_version
        digest = chain_hash(previous, aggregate_id, version, stored.topic, body)
        store.execute(f"UPDATE {table} SET state = ?{where}", (seal(body, digest), key, version))
        previous = digest
    return edited


# ---- export and verify ---------------------------------------------------------------------------


def test_an_exported_pack_verifies_with_nothing_else_and_fails_once_one_byte_is_flipped(
    studio: Studio, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    ids = a_disputed_history(studio)
    anchored(studio, settings)
    pack = tmp_path / "fizz.pack"

    exported = aytada("audit", "export", str(ids["fizz"]), "-o", str(pack), env=env)

    assert exported.returncode == 0, exported.stderr
    empty = an_empty_place(tmp_path)
    verified = aytada("audit", "verify", str(pack), env=empty)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "pack verified" in verified.stdout
    assert not os.listdir(empty["AYTADA_DATA_DIR"])  # it wrote nothing and needed nothing
    key = stat.S_IMODE((settings.data_dir / "pack-signing.key").stat().st_mode)
    assert key == 0o600
    data = pack.read_bytes()
    lines = [json.loads(line) for line in data.splitlines()]
    assert {r["aggregate_id"] for r in lines if r["kind"] == "event"} == {
        str(ids["fizz"]),
        str(ids["alice"]),
    }
    assert sum(r["kind"] == "anchor" for r in lines) >= 2
    # One byte flipped anywhere (an event's stored bytes, a movement, the signature): refused.
    for where in (data.index(b'"state":"') + 20, data.index(b'"amount":'), len(data) - 10):
        (tmp_path / "flipped.pack").write_bytes(flipped(data, where))
        refused = aytada("audit", "verify", str(tmp_path / "flipped.pack"), env=empty)
        assert refused.returncode == 1, (where, refused.stdout)
        assert "pack NOT verified" in refused.stdout


def test_an_account_pack_holds_every_project_deleted_ones_too_and_its_statement_with_heads(
    studio: Studio, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    ids = a_disputed_history(studio)
    anchored(studio, settings)
    pack = tmp_path / "alice.pack"

    exported = aytada("audit", "export", "--account", "alice", "-o", str(pack), env=env)

    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in pack.read_bytes().splitlines()]
    projects = {r["project_id"] for r in lines if r["kind"] == "reconciliation"}
    assert projects == {str(ids["fizz"]), str(ids["spritz"])}  # Fizz was deleted
    heads = {
        r["version"]: unseal(s.state)[0]  # type: ignore[index]
        for r in lines
        if r["kind"] == "movement"
        for s in stored_history(studio, ids["alice"])
        if s.originator_version == r["version"]
    }
    movements = [r for r in lines if r["kind"] == "movement"]
    assert movements and all(m["head"] == heads[m["version"]] for m in movements)
    assert movements[-1]["balance"] == studio.account_named("alice").balance
    verified = aytada("audit", "verify", str(pack), env=an_empty_place(tmp_path))
    assert verified.returncode == 0, verified.stdout


def test_a_pack_is_refused_when_signed_by_another_key_than_the_pinned_one(
    studio: Studio, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    ids = a_disputed_history(studio)
    pack = tmp_path / "cola.pack"
    assert aytada("audit", "export", str(ids["cola"]), "-o", str(pack), env=env).returncode == 0
    printed = aytada("audit", "key", env=env)
    ours = printed.stdout.splitlines()[-1]

    assert verify(pack.read_bytes(), ours).passed
    other = "A" * 43 + "="
    refused = aytada("audit", "verify", str(pack), "--key", other, env=an_empty_place(tmp_path))
    assert refused.returncode == 1 and "pinned key" in refused.stdout


def test_a_pack_whose_statement_does_not_add_up_is_refused_though_its_signature_holds(
    studio: Studio, settings: Settings, tmp_path: Path
) -> None:
    from aytada_es.pack.export import project_pack
    from aytada_es.pack.signing import public_key_text, sign, signing_key

    ids = a_disputed_history(studio)
    key = signing_key(settings.data_dir)
    data = project_pack(studio, anchored(studio, settings), key, ids["spritz"])
    lines = data.splitlines(keepends=True)[:-1]
    # The service states a reconciliation its events do not bear out, and signs it.
    lied = [
        line.replace(b'"charged":2', b'"charged":1') if b'"reconciliation"' in line else line
        for line in lines
    ]
    body = b"".join(lied)
    signature = {
        "kind": "signature",
        "algorithm": "ed25519",
        "public_key": public_key_text(key),
        "signature": sign(key, body),
    }
    verdict = verify(body + json.dumps(signature).encode() + b"\n")

    assert body != b"".join(lines)
    assert not verdict.passed
    assert any("reconciliation says" in p for p in verdict.problems), verdict.problems


def test_the_script_in_the_docs_verifies_a_pack_and_refuses_a_flipped_one(
    studio: Studio, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    script = re.search(r"<!-- verify\.py -->\n```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert script is not None, "docs/auditing.md lost its verify.py"
    (tmp_path / "verify.py").write_text(script.group(1))
    ids = a_disputed_history(studio)
    anchored(studio, settings)
    pack = tmp_path / "alice.pack"
    assert aytada("audit", "export", "--account", "alice", "-o", str(pack), env=env).returncode == 0

    empty = an_empty_place(tmp_path)

    def docs_verify(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "verify.py", str(path)],
            cwd=tmp_path,
            env=empty,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = docs_verify(pack)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = pack.read_bytes()
    for where in (data.index(b'"state":"') + 30, data.index(b'"balance":') + 10):
        bad = tmp_path / f"bad{where}.pack"
        bad.write_bytes(flipped(data, where))
        assert docs_verify(bad).returncode == 1, where
    assert str(ids["fizz"]) in data.decode()


# ---- anchors -------------------------------------------------------------------------------------


def test_a_consistent_rewrite_passes_the_chain_but_the_audit_exits_1_on_its_anchors(
    studio: Studio, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    ids = a_disputed_history(studio)
    log = anchored(studio, settings)
    passed = aytada("audit", str(ids["fizz"]), env=env)
    assert passed.returncode == 0, passed.stdout
    last = stored_history(studio, ids["fizz"])[-1].originator_version
    assert f"anchored outside the store up to v{last}" in passed.stdout

    # Who deleted it, and every other act of Alice's, put on someone else (plain text even
    # where titles and briefs are stored sealed).
    assert rewrite_consistently(studio, ids["fizz"], b'"user:alice"', b'"user:mallory"') > 1
    assert project_audit(studio, ids["fizz"]).project["deleted_by"] == "user:mallory"  # type: ignore[index]

    assert project_audit(studio, ids["fizz"]).passed  # every hash recomputed: no break
    checked = project_audit(studio, ids["fizz"], anchors=log)
    assert not checked.passed and checked.chain.anchor_problems
    audited = aytada("audit", str(ids["fizz"]), env=env)
    assert audited.returncode == 1, audited.stdout
    assert "DIFFERS FROM ITS ANCHORS" in audited.stdout
    assert aytada("audit", str(ids["spritz"]), env=env).returncode == 0  # untouched
    # A pack exported now carries the anchors, and they give the rewrite away offline too.
    pack = tmp_path / "rewritten.pack"
    assert aytada("audit", "export", str(ids["fizz"]), "-o", str(pack), env=env).returncode == 0
    refused = aytada("audit", "verify", str(pack), env=an_empty_place(tmp_path))
    assert refused.returncode == 1 and "rewritten" in refused.stdout


def test_anchors_are_appended_privately_once_per_advanced_chain_and_sent_to_the_topic(
    studio: Studio, settings: Settings, broker: str
) -> None:
    ids = a_disputed_history(studio)
    topic = TopicNames(settings.kafka_namespace).chain_anchors

    async def run() -> list[bytes]:
        await ensure_topics(broker, [topic], 1)
        producer = clients.producer(broker)
        await clients.start(producer)
        try:
            stop = asyncio.Event()
            anchorer = Anchorer(
                studio,
                AnchorLog(settings.anchors_dir),
                interval_s=3600,
                every=1_000_000,
                producer=producer,
                topic=topic,
            )
            stop.set()  # at stop it anchors what it has not yet
            await anchorer.run(stop)
        finally:
            await producer.stop()
        records = await read_topic(broker, topic, 5)
        return [r.value for r in records]

    sent = asyncio.run(run())

    log = AnchorLog(settings.anchors_dir)
    written = log.all()
    assert {a.aggregate_id for a in written} == {str(i) for i in ids.values()}
    for anchor in written:
        history = stored_history(studio, UUID(anchor.aggregate_id))
        assert anchor.version == history[-1].originator_version
        assert anchor.head == unseal(history[-1].state)[0]  # type: ignore[index]
    assert sorted(sent) == sorted(a.line().rstrip(b"\n") for a in written)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.anchors_dir.stat().st_mode) == 0o700
    # Nothing new: nothing appended; one more event: one more anchor, for its aggregate only.
    assert Anchorer(studio, log, interval_s=1, every=1).anchor() == []
    studio.grant_credits("bob", 5, actor="cli")
    (more,) = Anchorer(studio, log, interval_s=1, every=1).anchor()
    assert more.aggregate_id == str(ids["bob"]) and log.last_position() == more.position


def test_a_refund_shows_in_the_pack_with_its_actor_reason_and_ticket_and_the_pack_reconciles(
    studio: Studio, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    a_disputed_history(studio)
    studio.adjust_credits("alice", 7, reason="charged after delete", ticket="T-42", actor="cli")
    studio.adjust_credits("alice", -2, reason="goodwill reversed", ticket="T-43", actor="cli")
    pack = tmp_path / "alice.pack"

    assert aytada("audit", "export", "--account", "alice", "-o", str(pack), env=env).returncode == 0

    lines = [json.loads(line) for line in pack.read_bytes().splitlines()]
    adjusted = [r for r in lines if r["kind"] == "movement" and r["movement"] == "adjust"]
    assert [(m["amount"], m["reason"], m["ticket"], m["actor"]) for m in adjusted] == [
        (7, "charged after delete", "T-42", "cli"),
        (-2, "goodwill reversed", "T-43", "cli"),
    ]
    (account,) = [r for r in lines if r["kind"] == "account"]
    assert account["balance"] == studio.account_named("alice").balance == adjusted[-1]["balance"]
    verified = aytada("audit", "verify", str(pack), env=an_empty_place(tmp_path))
    assert verified.returncode == 0, verified.stdout


def test_events_cut_from_the_end_of_an_anchored_history_fail_the_audit(
    studio: Studio, settings: Settings
) -> None:
    ids = a_disputed_history(studio)
    log = anchored(studio, settings)
    history = stored_history(studio, ids["fizz"])
    store = SQLStore.of(studio)
    table = "{" + getattr(studio.recorder, "events_table_name", "stored_events") + "}"
    key: object = ids["fizz"].hex if store.dialect == "sqlite" else ids["fizz"]
    last = history[-1].originator_version  # the ProjectDeleted: as if it never happened

    store.execute(
        f"DELETE FROM {table} WHERE originator_id = ? AND originator_version = ?", (key, last)
    )

    assert project_audit(studio, ids["fizz"]).chain.verified  # what is left still chains
    report = project_audit(studio, ids["fizz"], anchors=log)
    assert not report.passed
    assert report.chain.anchor_problems == [
        f"v{last} was anchored (position {history[-1].id}, {log.of(str(ids['fizz']))[0].at})"
        " but is no longer stored"
    ]


def test_exporting_what_does_not_exist_exits_2_and_writes_nothing(
    studio: Studio, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    a_disputed_history(studio)
    pack = tmp_path / "none.pack"
    for args in (
        ("audit", "export", "0b5e6a59-7d4e-4b8e-9a0e-3d2f1c4b5a69", "-o", str(pack)),
        ("audit", "export", "not-an-id", "-o", str(pack)),
        ("audit", "export", "--account", "nobody", "-o", str(pack)),
        (
            "audit",
            "export",
            "--account",
            "alice",
            "0b5e6a59-7d4e-4b8e-9a0e-3d2f1c4b5a69",
            "-o",
            "x",
        ),
        ("audit", "export", "--account", "alice"),
    ):
        refused = aytada(*args, env=env)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert refused.stderr.strip() and not refused.stdout
    assert not pack.exists() and not list(tmp_path.glob(".*.partial"))
    missing = aytada("audit", "verify", str(pack), env=an_empty_place(tmp_path))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


@pytest.mark.parametrize(
    ("interval_s", "every"), [(3600.0, 5), (0.2, 1_000_000)], ids=["every-N-events", "every-T-s"]
)
def test_the_anchorer_anchors_as_the_store_grows_by_count_or_by_time(
    studio: Studio, settings: Settings, interval_s: float, every: int
) -> None:
    log = AnchorLog(settings.anchors_dir)
    a_disputed_history(studio)

    def stored() -> int:
        return studio.recorder.max_notification_id() or 0

    async def run() -> float:
        stop = asyncio.Event()
        anchorer = Anchorer(studio, log, interval_s=interval_s, every=every)
        running = asyncio.create_task(anchorer.run(stop))
        try:
            took = await wait_for(lambda: log.last_position() >= stored(), 10, "the anchors")
            for _ in range(5):  # five events more: `every` of them, or `interval_s` later
                await asyncio.to_thread(studio.grant_credits, "bob", 1, actor="cli")
            end = stored()
            return took + await wait_for(lambda: log.last_position() >= end, 10, "the anchors")
        finally:
            stop.set()
            await running

    took = asyncio.run(run())

    assert took < 5  # long before the hour, or soon after the 0.2 s
    every_aggregate = {
        str(n.originator_id) for n in studio.recorder.select_notifications(1, 10_000)
    }
    assert {a.aggregate_id for a in log.all()} == every_aggregate
