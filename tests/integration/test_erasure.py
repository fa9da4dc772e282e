"""Erasure by crypto-shredding: `aytada-es users erase NAME` leaves no byte of the text behind."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
import pytest
from polling import read_topic

import aytada_es.cli as aytada_es
from aytada_es.adapters.sealed_text import SealedTextMapper
from aytada_es.adapters.sql import SQLStore
from aytada_es.adapters.webhooks import Webhooks
from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.domain.account import Account
from aytada_es.kafka.topics import ACCOUNT_EVENTS, DEAD_LETTERS, PROJECT_EVENTS
from aytada_es.testing import wait_for
from aytada_es.testing.studio_run import StudioRun

WORD = "Quixotrelle"  # alice's: in her title and brief, so in her ideas, script and scenes
KEPT = "Borvantique"  # bob's: must stay readable
RENAMED = "Zephyrquill"  # alice's new title, after a rename


def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("AYTADA_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AYTADA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AYTADA_PROVIDERS", "instant")
    monkeypatch.setenv("AYTADA_KAFKA_NAMESPACE", settings.kafka_namespace)
    return aytada_es.main(list(args))


def files_holding(settings: Settings, word: bytes) -> list[Path]:
    """Every file of the data directory, and of the SQLite database (journal included) when
    the test keeps it elsewhere, that holds the word."""
    files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    if settings.database_url.startswith("sqlite:///"):
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        assert database.exists()
        files += [p for p in database.parent.glob(database.name + "*") if p.is_file()]
    return [p for p in files if word in p.read_bytes()]


def postgres_rows_holding(settings: Settings, word: str) -> list[str]:
    """Every table of the schema whose rows' text (or bytes) hold the word."""
    schema = settings.database_url.rsplit("schema=", 1)[1]
    found = []
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as pg:
        tables = pg.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        for table, column, kind in tables:
            where = (
                f"position(convert_to(%s, 'UTF8') in \"{column}\") > 0"
                if kind == "bytea"
                else f"\"{column}\"::text LIKE '%%' || %s || '%%'"
            )
            sql = f'SELECT count(*) FROM "{schema}"."{table}" WHERE {where}'
            row = pg.execute(sql.encode(), (word,)).fetchone()  # type: ignore[call-overload]
            if row and row[0]:
                found.append(f"{table}.{column}")
    return found


async def test_an_erased_users_text_is_nowhere_and_their_audits_still_pass(
    settings: Settings,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = await StudioRun.start(settings, broker, ())
    try:
        alice, bob = run.user("alice"), run.user("bob")
        # A webhook endpoint of alice's: its deliveries' bodies hold her cards (titles).
        hooks = Webhooks(SQLStore.of(run.studio))
        endpoint = {
            "id": str(uuid.uuid4()),
            "owner_id": str(alice),
            "url": "http://127.0.0.1:9/hook",
            "events": ["project.completed", "project.status_changed"],
            "secret": "whsec_" + "A" * 32,
            "created_at": time.time() - 60,
        }
        hooks.add_endpoint(endpoint, limit=10)
        erased = run.autopilot_project(alice, title=f"{WORD} Soda", brief=f"A {WORD} fizz.")
        kept = run.autopilot_project(bob, title=f"{KEPT} Tea", brief=f"{KEPT} leaves.")
        for project in (erased, kept):
            await run.until_event(project, "VideoStitched")
        # A rename's title is personal text too, sealed like the first one.
        run.studio.rename_project(alice, erased, title=f"{RENAMED} Fizz", actor="user:alice")
        await wait_for(
            lambda: any(
                f"{WORD} Soda" in str(r["body"])
                for r in SQLStore.of(run.studio).query(
                    "SELECT body FROM {aytada_webhook_deliveries}"
                )
            ),
            what="a delivery of alice's card",
        )
        # Everything stored is on the topics (read_topic waits for all of it): topics are
        # append-only, so these messages are what they will always hold.
        stored = run.studio.recorder.max_notification_id() or 0
        topics = [settings.topic(t) for t in (PROJECT_EVENTS, ACCOUNT_EVENTS, DEAD_LETTERS)]
        records = await read_topic(broker, topics, stored)
        run.system.read_models.catch_up()
        assert run.system.read_models.videos.videos_of(alice)[1][0]["title"] == f"{RENAMED} Fizz"
        assets = [a["id"] for a in run.project(erased).assets]
        bobs = [a["id"] for a in run.project(kept).assets]
        assert assets and all(run.system.assets.path(a).exists() for a in assets)
    finally:
        await run.stop()

    assert cli(settings, monkeypatch, "users", "erase", "alice") == 2  # no --yes: nothing done
    assert files_holding(settings, WORD.encode())  # the assets, and SQLite's read models
    assert cli(settings, monkeypatch, "users", "erase", "alice", "--yes") == 0
    assert "erased 'alice'" in capsys.readouterr().out

    # Nowhere in the data directory (the SQLite file and its journal, the assets) ...
    assert files_holding(settings, WORD.encode()) == []
    assert files_holding(settings, RENAMED.encode()) == []
    if "postgres" in settings.database_url:  # ... nor in any table, events included
        assert postgres_rows_holding(settings, WORD) == []
        assert postgres_rows_holding(settings, RENAMED) == []
        assert postgres_rows_holding(settings, KEPT) != []
    # ... nor on any topic: it was sealed there from the start.
    assert len(records) >= stored and not [r for r in records if WORD.encode() in (r.value or b"")]
    assert not [r for r in records if RENAMED.encode() in (r.value or b"")]
    assert not [r for r in records if KEPT.encode() in (r.value or b"")]  # sealed too

    assert cli(settings, monkeypatch, "audit", str(erased)) == 0
    assert cli(settings, monkeypatch, "users", "rotate-token", "alice") == 2  # for good
    assert "was erased" in capsys.readouterr().err
    assert cli(settings, monkeypatch, "audit", "--account", "alice") == 0
    assert cli(settings, monkeypatch, "audit", str(kept)) == 0
    assert not [a for a in assets if (settings.assets_dir / a[:2] / a).exists()]
    assert all((settings.assets_dir / a[:2] / a).exists() for a in bobs)  # theirs stay

    run = await StudioRun.start(settings, broker, ())
    try:
        project = run.project(erased)
        assert (project.title, project.brief) == ("[erased]", "[erased]")
        assert project.script is not None and project.script["text"] == "[erased]"
        assert run.project(kept).title == f"{KEPT} Tea"  # bob's text is untouched
        account = run.studio.account(alice)
        assert account.erased and account.disabled
        run.system.read_models.catch_up()
        assert [c["title"] for c in run.system.read_models.videos.videos_of(alice)[1]] == [
            "[erased]"
        ]
        assert [c["title"] for c in run.system.read_models.videos.videos_of(bob)[1]] == [
            f"{KEPT} Tea"
        ]
        statement = run.system.read_models.credits
        assert statement is not None
        history = run.studio.events.get(alice)
        assert type(list(history)[-1]).__name__ == Account.AccountErased.__name__
    finally:
        await run.stop()


def test_erasing_a_user_with_release_one_plaintext_says_what_stays_and_keeps_the_chain(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    studio = Studio(settings.database().eventsourcing_env())
    try:
        owner, _ = studio.open_account("carol", credits=10, actor="cli")
        assert isinstance(studio.mapper, SealedTextMapper)
        studio.mapper.keys = None  # writing as release 1 did: the text as it came
        project = studio.create_project(
            owner.id, title="Plain Soda", format="9:16", brief="Plain.", actor="user:carol"
        )
        stored = studio.recorder.select_events(project.id)
        assert b"Plain Soda" in stored[0].state
    finally:
        studio.close()

    assert cli(settings, monkeypatch, "users", "erase", "carol", "--yes") == 1
    assert "1 event(s) of 'carol' were stored before text was sealed" in capsys.readouterr().err
    assert cli(settings, monkeypatch, "audit", str(project.id)) == 0
    assert cli(settings, monkeypatch, "audit", "--account", "carol") == 0


async def test_a_process_that_cached_the_text_reads_erased_once_another_erased_it(
    settings: Settings,
) -> None:
    serving = Studio(settings.database().eventsourcing_env(), sole_writer=True)
    other = Studio(settings.database().eventsourcing_env())
    try:
        owner, _ = serving.open_account("dora", credits=10, actor="cli")
        project = serving.create_project(
            owner.id, title=f"{WORD} Tea", format="9:16", brief="Hot.", actor="user:dora"
        )
        assert serving.project(project.id).title == f"{WORD} Tea"  # now in its cache
        other.erase_account("dora")
        await wait_for(
            lambda: serving.project(project.id).title == "[erased]", timeout_s=10, what="erased"
        )
        assert serving.project(project.id).brief == "[erased]"
    finally:
        other.close()
        serving.close()


def test_an_asset_file_another_users_project_holds_is_kept(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aytada_es.adapters.assets import AssetStore

    studio = Studio(settings.database().eventsourcing_env())
    try:
        store = AssetStore(settings.assets_dir)
        shared = store.put(b"the same still", kind="scene_still", content_type="image/png")
        own = store.put(b"erin's own still", kind="scene_still", content_type="image/png")
        ids = []
        for name, assets in (("erin", [shared, own]), ("fred", [shared])):
            owner, _ = studio.open_account(name, credits=10, actor="cli")
            project = studio.create_project(
                owner.id, title="Stills", format="1:1", brief="Two.", actor=f"user:{name}"
            )
            studio.add_assets(project.id, assets=assets, actor="cli")
            ids.append(project.id)
    finally:
        studio.close()

    assert cli(settings, monkeypatch, "users", "erase", "erin", "--yes") == 0
    assert store.path(shared["id"]).exists()  # fred's too
    assert not store.path(own["id"]).exists()
