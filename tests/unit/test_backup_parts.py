"""The parts of a backup: the stepped SQLite snapshot, the sealed keys, what events name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aytada_es.backup.contents import Contents, _asset_ids
from aytada_es.backup.sealing import WrongPassphrase, open_sealed, passphrase, seal
from aytada_es.backup.snapshot import SQLITE_EVENTS, sqlite_snapshot
from aytada_es.domain.errors import ConfigError

ASSET = "ab" * 32


def a_store(path: Path, events: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(
        f"CREATE TABLE {SQLITE_EVENTS} (originator_id TEXT, originator_version INTEGER,"
        " topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    db.execute(
        "CREATE TABLE aytada_text_keys (owner_id TEXT PRIMARY KEY, key TEXT, erased_at TEXT)"
    )
    db.execute("INSERT INTO aytada_text_keys VALUES ('u1', 'k' || hex(randomblob(32)), NULL)")
    db.execute("INSERT INTO aytada_text_keys VALUES ('u2', NULL, '2026-01-01')")
    db.executemany(
        f"INSERT INTO {SQLITE_EVENTS} VALUES (?, ?, 't', ?)",
        [(f"{i:032x}", 1, b"x" * 2000) for i in range(events)],
    )
    db.close()


def test_a_stepped_snapshot_is_of_one_moment_however_much_is_written_between_its_steps(
    tmp_path: Path,
) -> None:
    source = tmp_path / "store.sqlite"
    a_store(source, 2000)
    writer = sqlite3.connect(source, isolation_level=None)
    written = 0

    def write_between_steps(done: int, total: int) -> None:
        nonlocal written  # another connection commits between every two steps
        if written >= 1000:
            return  # a backup that restarts on each write would never end otherwise
        writer.execute(
            f"INSERT INTO {SQLITE_EVENTS} VALUES (?, 1, 't', x'00')",
            (f"new{written}",),
        )
        written += 1

    snapshot = sqlite_snapshot(
        str(source), tmp_path / "copy.sqlite", pages=8, pause_s=0, progress=write_between_steps
    )
    writer.close()

    assert 50 <= written < 1000, "a backup of 1,000 pages in steps of 8 takes about 125"
    assert snapshot.steps == written  # never restarted
    copy = sqlite3.connect(tmp_path / "copy.sqlite")
    assert copy.execute(f"SELECT COUNT(*), MAX(rowid) FROM {SQLITE_EVENTS}").fetchone() == (
        2000,
        snapshot.position,
    )
    # The key is out of the copy, handed back; the erased user's row stays, keyless.
    assert list(snapshot.text_keys) == ["u1"]
    assert copy.execute("SELECT owner_id, key FROM aytada_text_keys").fetchall() == [("u2", None)]
    assert snapshot.text_keys["u1"].encode() not in (tmp_path / "copy.sqlite").read_bytes()


def test_sealed_keys_open_with_their_passphrase_only() -> None:
    sealed, how = seal(b'{"text_keys": {}}', "twelve chars!")
    assert open_sealed(sealed, how, "twelve chars!") == b'{"text_keys": {}}'
    with pytest.raises(WrongPassphrase):
        open_sealed(sealed, how, "twelve chars?")
    with pytest.raises(WrongPassphrase):
        open_sealed(sealed[:-1] + bytes([sealed[-1] ^ 1]), how, "twelve chars!")


def test_a_missing_or_short_passphrase_fails_loudly() -> None:
    with pytest.raises(ConfigError, match="AYTADA_BACKUP_PASSPHRASE"):
        passphrase({})
    with pytest.raises(ConfigError, match="at least 12"):
        passphrase({"AYTADA_BACKUP_PASSPHRASE": "short"})
    assert passphrase({"AYTADA_BACKUP_PASSPHRASE": "long enough, really"})


def test_assets_are_the_records_events_name_and_erased_owners_need_none() -> None:
    data = {
        "video": {"id": ASSET, "kind": "final_video", "content_type": "video/mp4"},
        "assets": [{"id": "cd" * 32, "kind": "banner", "content_type": "image/png"}],
        "token_hash": "ef" * 32,  # 64 hex characters, but no asset record
        "other": {"id": "12" * 32},
    }
    assert sorted(_asset_ids(data)) == [ASSET, "cd" * 32]
    contents = Contents(owners={"p1": "alice", "p2": "bob"}, erased_accounts={"bob"})
    contents.named[ASSET] = {"p1", "p2"}  # shared: alice still needs it
    contents.named["cd" * 32] = {"p2"}
    assert contents.needed_assets() == {ASSET}
