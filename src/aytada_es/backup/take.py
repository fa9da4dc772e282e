"""`aytada-es backup FILE`: a snapshot, the assets it names, anchors and sealed keys, in one tar."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from .. import __version__
from ..adapters.anchors import LOG_FILE, Anchor
from ..config import Settings
from .archive import Source, add, add_bytes, writing
from .contents import Contents, read_contents
from .keys import Keys, key_files
from .manifest import (
    ANCHORS,
    ASSETS,
    KEYS,
    MANIFEST,
    MANIFEST_SUM,
    STORE,
    Counts,
    Manifest,
    Member,
    StoreInfo,
)
from .sealing import seal
from .snapshot import (
    STEP_PAGES,
    STEP_PAUSE_S,
    Progress,
    Snapshot,
    postgres_snapshot,
    sqlite_snapshot,
)


@dataclass(frozen=True)
class Taken:
    """A backup written: its manifest, what did not check out, and how long it took."""

    manifest: Manifest
    problems: list[str]
    snapshot_s: float
    seconds: float


def take_backup(
    settings: Settings,
    path: Path,
    phrase: str,
    *,
    progress: Progress | None = None,
    pages: int = STEP_PAGES,
    pause_s: float = STEP_PAUSE_S,
) -> Taken:
    """Write the backup of the store `settings` names to `path` (which must not exist yet)."""
    began = time.monotonic()
    path = path.expanduser().absolute()
    if path.exists():
        raise FileExistsError(f"{path} exists; a backup never replaces a file")
    created = datetime.now(UTC)
    database = settings.database()
    with tempfile.TemporaryDirectory(prefix=".aytada-backup-", dir=path.parent) as work:
        store = Path(work) / STORE
        if database.kind == "sqlite":
            snapshot = sqlite_snapshot(
                database.path, store, pages=pages, pause_s=pause_s, progress=progress
            )
        else:
            snapshot = postgres_snapshot(database, store)
        lines = _anchor_lines(settings.anchors_dir / LOG_FILE, snapshot.position)
        anchors = [Anchor.parse(line) for line in lines]
        contents = read_contents(store, snapshot.events_table, anchors)
        problems = list(contents.problems)
        if contents.position != snapshot.position:
            problems.append(
                f"the snapshot's last event is at {contents.position}, not {snapshot.position}"
            )
        keys = Keys(snapshot.text_keys, snapshot.webhook_secrets, key_files(settings.data_dir))
        sealed, sealing = seal(keys.dump(), phrase)
        assets, missing = _assets(settings.assets_dir, contents)
        for asset in missing:
            problems.append(f"asset {asset} is named by an event but missing from the data dir")
        anchors_bytes = b"".join(lines)
        members = {
            STORE: Member(sha256=_file_sha256(store), size=store.stat().st_size),
            ANCHORS: _member(anchors_bytes),
            KEYS: _member(sealed),
            **{s.name: Member(sha256=s.sha256 or "", size=s.size) for s in assets},
        }
        manifest = Manifest(
            version=__version__,
            created_at=created.isoformat().replace("+00:00", "Z"),
            position=snapshot.position,
            store=StoreInfo(
                kind=database.kind, events_table=snapshot.events_table, tables=snapshot.tables
            ),
            counts=_counts(contents, snapshot, len(assets), len(anchors)),
            keys=sealing,
            members=members,
            missing_assets=missing,
        )
        body = manifest.body()
        mtime = int(created.timestamp())
        with writing(path) as tar:
            add_bytes(tar, MANIFEST, body, mtime)
            add_bytes(tar, MANIFEST_SUM, hashlib.sha256(body).hexdigest().encode() + b"\n", mtime)
            add(
                tar,
                Source(STORE, members[STORE].size, _reader(store), members[STORE].sha256),
                mtime,
            )
            add_bytes(tar, ANCHORS, anchors_bytes, mtime)
            add_bytes(tar, KEYS, sealed, mtime)
            for source in assets:
                add(tar, source, mtime)
    return Taken(manifest, problems, snapshot.seconds, time.monotonic() - began)


def _anchor_lines(log: Path, position: int) -> list[bytes]:
    """The anchor log's lines up to the snapshot's position: later ones name events it lacks."""
    try:
        with log.open("rb") as f:
            lines = [line for line in f if line.strip()]
    except FileNotFoundError:
        return []
    kept = []
    for line in lines:
        if not line.endswith(b"\n"):
            break  # an append in progress
        if int(json.loads(line)["position"]) <= position:
            kept.append(line)
    return kept


def _assets(root: Path, contents: Contents) -> tuple[list[Source], list[str]]:
    """Every named asset the data dir holds; the needed ones it does not."""
    sources, missing = [], []
    needed = contents.needed_assets()
    for asset in sorted(contents.named):
        file = root / asset[:2] / asset
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            if asset in needed:
                missing.append(asset)
            continue
        opener = _reader(file)
        sources.append(Source(f"{ASSETS}{asset[:2]}/{asset}", size, opener, sha256=asset))
    return sources, missing


def _counts(contents: Contents, snapshot: Snapshot, assets: int, anchors: int) -> Counts:
    return Counts(
        events=contents.events,
        aggregates=contents.aggregates,
        projects=len(contents.projects),
        accounts=len(contents.accounts),
        erased_accounts=len(contents.erased_accounts),
        assets=assets,
        anchors=anchors,
        text_keys=len(snapshot.text_keys),
        webhook_secrets=len(snapshot.webhook_secrets),
    )


def _member(data: bytes) -> Member:
    return Member(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _reader(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")
