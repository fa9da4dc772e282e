"""Backups as files: every flipped byte refused, a non-empty target refused, keys never in clear,
and a restore that brings back readable text, the keys and the erasures as they were."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

import aytada_es.cli as aytada_es
from aytada_es.adapters.anchors import AnchorLog
from aytada_es.adapters.assets import AssetStore
from aytada_es.adapters.keys import session_key
from aytada_es.adapters.sql import SQLStore
from aytada_es.adapters.webhooks import Webhooks
from aytada_es.anchoring import Anchorer
from aytada_es.application import Studio
from aytada_es.backup.restore import restore_backup
from aytada_es.backup.take import take_backup
from aytada_es.backup.verify import verify_backup
from aytada_es.config import Settings
from aytada_es.domain.errors import BackupRefused
from aytada_es.erasure import erase_user
from aytada_es.pack.signing import signing_key
from aytada_es.projections import read_models
from conftest import PG_DSN, require_postgres

PHRASE = "a long enough passphrase"
TITLE = "Wintergreen Quill"  # sealed in the store: readable after a restore only with the keys
SECRET = "whsec_" + "Zm9yIHRoZSB0ZXN0IG9ubHk" * 2


def settings_for(data_dir: Path, database_url: str = "") -> Settings:
    env = {"AYTADA_DATA_DIR": str(data_dir), "AYTADA_PROVIDERS": "instant"}
    if database_url:
        env["AYTADA_DATABASE_URL"] = database_url
    return Settings.from_env(env)


def small_store(settings: Settings) -> dict[str, object]:
    """Two users, a project each with assets, one user erased, a webhook endpoint, anchors."""
    studio = Studio(settings.database().eventsourcing_env())
    assets = AssetStore(settings.assets_dir)
    models = read_models(studio)
    try:
        kept, _ = studio.open_account("kept", credits=50)
        gone, _ = studio.open_account("gone", credits=50)
        ids = {}
        for owner, marker in ((kept, b"kept"), (gone, b"gone")):
            project = studio.create_project(
                owner.id, title=TITLE, format="9:16", brief="Crisp.", actor="user:x"
            )
            records = [
                assets.put(marker + bytes([i]) * 300, kind="banner", content_type="image/png")
                for i in range(3)
            ]
            studio.add_assets(project.id, assets=records, actor="stage:test")
            ids[marker.decode()] = project.id
        Webhooks(SQLStore.of(studio)).add_endpoint(
            {
                "id": "wh1",
                "owner_id": str(kept.id),
                "url": "https://example.com/hook",
                "events": ["project.completed"],
                "secret": SECRET,
                "created_at": 1.0,
            },
            limit=10,
        )
        models.catch_up()
        erase_user(studio, models, assets, "gone")
        Anchorer(studio, AnchorLog(settings.anchors_dir), interval_s=1, every=1).anchor()
        session_key(settings.data_dir)  # the key files a serve makes
        signing_key(settings.data_dir)
        key = studio.text_keys.for_reading(kept.id)
        assert key is not None
        return {"kept": ids["kept"], "gone": ids["gone"], "key": key.hex()}
    finally:
        studio.close()


@dataclass(frozen=True)
class Made:
    """A small store and its backup, shared by the module's tests (none changes them)."""

    settings: Settings
    path: Path
    facts: dict[str, object]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def made(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Made]:
    home = tmp_path_factory.mktemp("source")
    schema = ""
    if request.param == "postgres":
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            pg.execute(f"CREATE SCHEMA {schema}")
    url = f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}" if schema else ""
    settings = settings_for(home / "var", url)
    try:
        facts = small_store(settings)
        path = home / "backup.tar"
        taken = take_backup(settings, path, PHRASE)
        assert taken.problems == []
        yield Made(settings, path, facts)
    finally:
        if schema:
            with psycopg.connect(PG_DSN, autocommit=True) as pg:
                pg.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def target_url(made: Made) -> Iterator[str]:
    """Where a restore goes: a fresh schema on PostgreSQL, a file under the data dir on SQLite."""
    if made.settings.database().kind == "sqlite":
        yield ""
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            left = pg.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{schema}%",)
            ).fetchall()
            for (name,) in left:
                pg.execute(f"DROP SCHEMA {name} CASCADE")


def test_a_backup_is_private_holds_no_key_in_clear_and_verifies(made: Made) -> None:
    settings = made.settings
    path, facts = made.path, made.facts
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    data = path.read_bytes()
    assert str(facts["key"]).encode() not in data
    assert SECRET.encode() not in data
    assert (settings.data_dir / "session.key").read_bytes() not in data
    assert verify_backup(path).passed  # without the passphrase: all but the keys
    verdict = verify_backup(path, PHRASE)
    assert verdict.passed, verdict.problems
    assert verdict.manifest is not None and verdict.manifest.counts.erased_accounts == 1
    assert not verify_backup(path, "not the passphrase at all").passed
    assert not list(path.parent.glob(".*partial"))


def test_every_flipped_byte_is_refused_by_verify_and_restore_leaves_the_target_untouched(
    made: Made, target_url: str, tmp_path: Path
) -> None:
    path = made.path
    data = path.read_bytes()
    size = len(data)
    # The first header (its checksum's last byte too), the manifest, the store, the padding
    # and the zeros at the end, and a spread of others.
    offsets = {0, 100, 155, 600, 1500, size // 3, size // 2, size - 700, size - 1}
    offsets |= set(random.Random(16).sample(range(size), 40))
    broken = tmp_path / "broken.tar"
    for offset in sorted(offsets):
        flipped = bytearray(data)
        flipped[offset] ^= 0x20
        broken.write_bytes(bytes(flipped))
        assert not verify_backup(broken).passed, f"a flip at byte {offset} of {size} went unseen"
    target = tmp_path / "restored"
    target.mkdir()
    settings = settings_for(target, target_url)
    for offset in (155, size // 2, size - 1):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        broken.write_bytes(bytes(flipped))
        with pytest.raises(BackupRefused, match="not an intact backup"):
            restore_backup(settings, broken, PHRASE)
        assert_untouched(target, target_url)
    with pytest.raises(BackupRefused, match="passphrase"):
        restore_backup(settings, path, "the wrong passphrase")
    assert_untouched(target, target_url)


def test_the_commands_exit_1_on_a_corrupt_backup_and_leave_the_target_untouched(
    made: Made,
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = made.path
    flipped = bytearray(path.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    broken = tmp_path / "broken.tar"
    broken.write_bytes(bytes(flipped))
    target = tmp_path / "restored"
    use(monkeypatch, target, target_url)
    assert aytada_es.main(["backup", "verify", str(path)]) == 0
    assert aytada_es.main(["backup", "verify", str(broken)]) == 1
    assert "NOT INTACT" in capsys.readouterr().out
    assert aytada_es.main(["restore", str(broken)]) == 1
    assert "nothing was restored" in capsys.readouterr().err
    assert not target.exists()
    assert_untouched(tmp_path / "absent", target_url)


def test_a_non_empty_target_is_refused_and_untouched(
    made: Made,
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = made.path
    target = tmp_path / "restored"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    use(monkeypatch, target, target_url)
    assert aytada_es.main(["restore", str(path)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "mine"
    if target_url:  # an empty data dir but a schema with a table in it
        (target / "notes.txt").unlink()
        schema = target_url.rsplit("=", 1)[1]
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            pg.execute(f"CREATE TABLE {schema}.theirs (x int)")
            pg.execute(f"INSERT INTO {schema}.theirs VALUES (7)")
        assert aytada_es.main(["restore", str(path)]) == 1
        assert "holds 1 tables" in capsys.readouterr().err
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            assert pg.execute(f"SELECT x FROM {schema}.theirs").fetchall() == [(7,)]
        assert list(target.iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if ".restoring-" in p.name]


def test_a_restore_brings_back_sealed_text_keys_secrets_and_erasures(
    made: Made,
    target_url: str,
    tmp_path: Path,
) -> None:
    path, facts, settings = made.path, made.facts, made.settings
    target = tmp_path / "restored"
    target.mkdir()  # an empty directory (a volume's mount point, say) is restored into
    restored = settings_for(target, target_url)
    done = restore_backup(restored, path, PHRASE)
    assert (done.projects, done.accounts) == (2, 2)
    assert oct(target.stat().st_mode & 0o777) == "0o700"
    for key in ("session.key", "pack-signing.key"):
        assert (target / key).read_bytes() == (settings.data_dir / key).read_bytes()
    studio = Studio(restored.database().eventsourcing_env())
    try:
        assert studio.project(facts["kept"]).title == TITLE  # type: ignore[arg-type]
        assert studio.project(facts["gone"]).title == "[erased]"  # type: ignore[arg-type]
        assert studio.text_keys.erased(studio.account_named("gone").id)
        secrets = SQLStore.of(studio).query("SELECT secret FROM {aytada_webhook_endpoints}")
        assert secrets == [{"secret": SECRET}]
        tracked = studio.recorder.max_notification_id()
        assert tracked == done.manifest.position
    finally:
        studio.close()
    assert not [p for p in tmp_path.iterdir() if ".restoring-" in p.name]


def use(monkeypatch: pytest.MonkeyPatch, target: Path, target_url: str) -> None:
    monkeypatch.setenv("AYTADA_DATA_DIR", str(target))
    monkeypatch.setenv("AYTADA_BACKUP_PASSPHRASE", PHRASE)
    if target_url:
        monkeypatch.setenv("AYTADA_DATABASE_URL", target_url)
    else:
        monkeypatch.delenv("AYTADA_DATABASE_URL", raising=False)


def assert_untouched(target: Path, target_url: str) -> None:
    """The data dir is as it was (empty or absent), nothing was left beside it, the schema empty."""
    if target.exists():
        assert list(target.iterdir()) == []
    assert not [p for p in target.parent.iterdir() if ".restoring-" in p.name]
    if target_url:
        schema = target_url.rsplit("=", 1)[1]
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            relations = pg.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s",
                (schema,),
            ).fetchone()
            aside = pg.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s",
                (f"{schema}_restoring_%",),
            ).fetchone()
        assert relations == (0,) and aside == (0,)
    assert os.path.exists(target.parent)


@pytest.mark.parametrize("made", ["sqlite"], indirect=True)  # PostgreSQL's is a schema
def test_a_database_and_anchors_kept_outside_the_data_dir_are_restored_where_they_belong(
    made: Made, tmp_path: Path
) -> None:
    database, anchors = tmp_path / "db" / "store.sqlite", tmp_path / "anchored"
    restored = Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(tmp_path / "restored"),
            "AYTADA_DATABASE_URL": f"sqlite:///{database}",
            "AYTADA_ANCHOR_DIR": str(anchors),
            "AYTADA_PROVIDERS": "instant",
        }
    )
    done = restore_backup(restored, made.path, PHRASE)  # its directory is made
    assert done.projects == 2
    assert sorted(p.name for p in database.parent.iterdir()) == ["store.sqlite"]
    assert (anchors / "anchors.jsonl").read_bytes() == (
        made.settings.anchors_dir / "anchors.jsonl"
    ).read_bytes()
    assert not (tmp_path / "restored" / "aytada.sqlite").exists()
    studio = Studio(restored.database().eventsourcing_env())
    try:
        assert studio.project(made.facts["kept"]).title == TITLE  # type: ignore[arg-type]
    finally:
        studio.close()
    assert not [p for p in tmp_path.rglob("*") if ".restoring-" in p.name]
