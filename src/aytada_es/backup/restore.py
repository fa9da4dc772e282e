"""`aytada-es restore FILE`: into an empty target only, proven whole before it is moved into place.

Nothing of the target is touched until the end: the backup is checked byte by byte first, then
restored aside (a directory beside the data dir; on PostgreSQL a schema beside the target one),
its read models rebuilt and every chain, reconciliation and asset proven there. Only then is it
renamed into place. A corrupt file, a wrong passphrase, a non-empty target or a copy that does
not prove whole is refused, and what was made aside is removed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.anchors import LOG_FILE
from ..adapters.permissions import PRIVATE_DIR, PRIVATE_FILE, private_dir
from ..adapters.sqlite import LOCK_SUFFIX
from ..config import Database, Settings
from ..domain.errors import BackupRefused
from . import schemas
from .archive import unpack
from .keys import Keys
from .manifest import ANCHORS, ASSETS, STORE, Manifest
from .proof import prove
from .snapshot import ENDPOINTS, TEXT_KEYS, Progress
from .verify import check

SQLITE_TRACKING = "tracking"  # the relay's position: a restored store was never published


@dataclass(frozen=True)
class Restored:
    """A restore that was proven whole and moved into place."""

    manifest: Manifest
    projects: int
    accounts: int
    assets: int
    rebuilt: int
    seconds: float


@dataclass
class _Aside:
    """What a restore made aside (beside or inside its empty target), to move or to remove."""

    data_dir: Path
    moves: list[tuple[Path, Path]] = field(default_factory=list)  # (aside, final)
    schema: str | None = None  # PostgreSQL: the schema restored into
    moved: bool = False  # the data dir made aside is in place
    inside: bool = False  # made inside the empty target dir, whose entries it becomes


def restore_backup(
    settings: Settings, path: Path, phrase: str, *, progress: Progress | None = None
) -> Restored:
    """Restore the backup at `path` into the empty target `settings` names, or refuse."""
    began = time.monotonic()
    database = settings.database()
    path = path.expanduser().absolute()
    if not path.is_file():
        raise BackupRefused(f"{path} is not a file")
    _refuse_non_empty(settings, database)
    token = secrets.token_hex(4)
    target = settings.data_dir
    if target.is_dir():  # empty; perhaps a mount point (a volume): restored inside, then moved up
        aside = _Aside(target / f".restoring-{token}", inside=True)
    else:
        aside = _Aside(target.parent / f".{target.name}.restoring-{token}")
        target.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    aside.data_dir.mkdir(mode=PRIVATE_DIR)
    try:
        unpacked = unpack(path, aside.data_dir / ".backup")
        verdict = check(unpacked, phrase)
        if not verdict.passed:
            raise BackupRefused(
                f"{path} is not an intact backup; nothing was restored:\n  "
                + "\n  ".join(verdict.problems[:20])
            )
        manifest, keys, contents = verdict.manifest, verdict.keys, verdict.contents
        assert manifest is not None and keys is not None and contents is not None
        if manifest.store.kind != database.kind:
            raise BackupRefused(
                f"{path} is a backup of a {manifest.store.kind} store; AYTADA_DATABASE_URL names"
                f" a {database.kind} one (restore it into the kind it came from)"
            )
        anchors_dir = _place(aside, settings.anchors_dir, target, token)
        anchors_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        os.replace(unpacked.path(ANCHORS), anchors_dir / LOG_FILE)
        assets = unpacked.path(ASSETS.rstrip("/"))
        if assets.exists():
            os.replace(assets, aside.data_dir / "assets")
        for name, content in keys.files.items():
            _write_private(aside.data_dir / name, content)
        if database.kind == "sqlite":
            db = _place(aside, Path(database.path).absolute(), target, token)
            db.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            os.replace(unpacked.path(STORE), db)
            _keys_back_sqlite(db, keys)
            env = Database(kind="sqlite", path=str(db)).eventsourcing_env()
        else:
            aside.schema = schemas.aside_name(database, token)
            env = schemas.load(database, aside.schema, unpacked.path(STORE), manifest, keys)
        problems, rebuilt = prove(
            env, anchors_dir, aside.data_dir / "assets", manifest, contents, progress
        )
        if problems:
            raise BackupRefused(
                "the restored copy did not prove whole, so it was not moved into place:\n  "
                + "\n  ".join(problems[:20])
            )
        shutil.rmtree(aside.data_dir / ".backup")
        if database.kind == "sqlite":
            _settle_sqlite(db)
        _move_into_place(aside, target, database)
    except BaseException:
        _remove(aside, database)
        raise
    return Restored(
        manifest,
        len(contents.projects),
        len(contents.accounts),
        manifest.counts.assets,
        rebuilt,
        time.monotonic() - began,
    )


def _refuse_non_empty(settings: Settings, database: Database) -> None:
    """Refuse, touching nothing, unless every place the restore writes to is empty."""
    found = []
    data_dir = settings.data_dir
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        found.append(f"the data directory {data_dir} is not empty")
    if database.kind == "sqlite":
        db = Path(database.path).absolute()
        if not db.is_relative_to(data_dir) and db.exists():
            found.append(f"the database {db} exists")
    anchors = settings.anchors_dir
    if not anchors.is_relative_to(data_dir) and anchors.exists() and any(anchors.iterdir()):
        found.append(f"the anchor directory {anchors} is not empty")
    if database.kind == "postgres":
        relations = schemas.relations(database, database.db_schema or "public")
        if relations:
            found.append(
                f"the schema {database.db_schema or 'public'} of {database.name} holds"
                f" {relations} tables, sequences or other relations"
            )
    if found:
        raise BackupRefused(
            "refusing to restore over existing data (nothing was changed): "
            + "; ".join(found)
            + ". Restore into an empty AYTADA_DATA_DIR (and an empty schema on PostgreSQL)."
        )


def _place(aside: _Aside, final: Path, target: Path, token: str) -> Path:
    """Where `final` is made aside: inside the data dir made aside, or beside it."""
    if final.is_relative_to(target):
        return aside.data_dir / final.relative_to(target)
    made = final.with_name(f".{final.name}.restoring-{token}")
    aside.moves.append((made, final))
    return made


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())


def _keys_back_sqlite(db: Path, keys: Keys) -> None:
    connection = sqlite3.connect(db, isolation_level=None)
    try:
        tables = _sqlite_tables(connection)
        connection.execute("BEGIN")
        if TEXT_KEYS in tables:
            connection.executemany(
                f"INSERT INTO {TEXT_KEYS} (owner_id, key) VALUES (?, ?)"  # noqa: S608
                " ON CONFLICT (owner_id) DO UPDATE SET key = excluded.key",
                sorted(keys.text_keys.items()),
            )
        if ENDPOINTS in tables:
            connection.executemany(
                f"UPDATE {ENDPOINTS} SET secret = ? WHERE id = ?",  # noqa: S608
                [(secret, id) for id, secret in sorted(keys.webhook_secrets.items())],
            )
        if SQLITE_TRACKING in tables:
            connection.execute(f"DELETE FROM {SQLITE_TRACKING}")  # noqa: S608
        connection.execute("COMMIT")
    finally:
        connection.close()


def _sqlite_tables(connection: sqlite3.Connection) -> set[str]:
    return {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _settle_sqlite(db: Path) -> None:
    """Fold the write-ahead log into the file and drop the lock file made aside."""
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    for suffix in ("-wal", "-shm", LOCK_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{db}{suffix}").unlink()


def _move_into_place(aside: _Aside, target: Path, database: Database) -> None:
    """Rename what was made aside onto the (empty) target: the schema, then the data dir."""
    if target.exists() and any(e != aside.data_dir for e in target.iterdir()):
        raise BackupRefused(f"{target} is no longer empty; nothing was restored")
    if aside.schema is not None:
        schemas.rename(database, aside.schema)
        aside.schema = None
    if aside.inside:
        for entry in sorted(aside.data_dir.iterdir()):
            os.rename(entry, target / entry.name)
        aside.data_dir.rmdir()
        private_dir(target)  # 0700, as the service keeps it
    else:
        os.rename(aside.data_dir, target)
    aside.moved = True
    for made, final in aside.moves:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.rename(f"{made}{suffix}", f"{final}{suffix}")
    aside.moves = []
    _sync(target.parent)


def _remove(aside: _Aside, database: Database) -> None:
    """Remove what a failed restore made aside; the target was never touched."""
    if not aside.moved:
        shutil.rmtree(aside.data_dir, ignore_errors=True)
    for made, _ in aside.moves:
        for suffix in ("", "-wal", "-shm", LOCK_SUFFIX):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                Path(f"{made}{suffix}").unlink()
        if made.is_dir():
            shutil.rmtree(made, ignore_errors=True)
    if aside.schema is not None:
        schemas.drop(database, aside.schema)


def _sync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
