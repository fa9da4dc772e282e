"""`aytada-es backup verify FILE`: every byte, the snapshot's chains against its anchors, the
assets, and (given the passphrase) the sealed keys, with no store and no service."""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.anchors import Anchor
from .archive import Unpacked, unpack
from .contents import Contents, read_contents
from .keys import Keys
from .manifest import ANCHORS, ASSETS, KEYS, STORE, Manifest
from .sealing import WrongPassphrase, open_sealed


@dataclass
class Verdict:
    """What a check of a backup found."""

    manifest: Manifest | None
    problems: list[str] = field(default_factory=list)
    contents: Contents | None = None
    keys: Keys | None = None  # opened when a passphrase was given

    @property
    def passed(self) -> bool:
        return self.manifest is not None and not self.problems

    def summary(self) -> list[str]:
        lines = []
        m = self.manifest
        if m is not None:
            c = m.counts
            lines.append(
                f"backup of a {m.store.kind} store made {m.created_at} by aytada-es {m.version}:"
                f" {c.events} events up to position {m.position}, {c.projects} projects,"
                f" {c.accounts} accounts ({c.erased_accounts} erased), {c.assets} assets,"
                f" {c.anchors} anchors, {c.text_keys} text keys"
            )
            if self.keys is None:
                lines.append("keys: sealed (not opened: AYTADA_BACKUP_PASSPHRASE not given)")
            else:
                lines.append("keys: opened with the passphrase")
        lines += [f"problem: {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"... and {len(self.problems) - 50} more problems")
        lines.append("intact" if self.passed else "NOT INTACT: do not rely on this backup")
        return lines


def verify_backup(path: Path, phrase: str | None = None) -> Verdict:
    """Check a backup file in a temporary directory that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=".aytada-verify-") as work:
        return check(unpack(path, Path(work)), phrase)


def check(unpacked: Unpacked, phrase: str | None) -> Verdict:
    """Check an unpacked backup: its members, its snapshot, its anchors, assets and keys."""
    manifest = unpacked.manifest
    verdict = Verdict(manifest, list(unpacked.problems))
    if manifest is None or verdict.problems:
        return verdict
    problems = verdict.problems
    store = unpacked.path(STORE)
    try:
        connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as e:
        integrity = str(e)
    if integrity != "ok":
        problems.append(f"the snapshot fails SQLite's integrity check: {integrity}")
        return verdict
    anchors = _anchors(unpacked.path(ANCHORS), manifest.position, problems)
    contents = read_contents(store, manifest.store.events_table, anchors)
    verdict.contents = contents
    problems += contents.problems
    _compare_counts(manifest, contents, len(anchors), problems)
    _check_assets(manifest, contents, problems)
    if phrase is not None:
        try:
            keys = Keys.load(open_sealed(unpacked.path(KEYS).read_bytes(), manifest.keys, phrase))
        except WrongPassphrase as e:
            problems.append(str(e))
        except ValueError as e:
            problems.append(f"the sealed keys cannot be read: {e}")
        else:
            verdict.keys = keys
            if len(keys.text_keys) != manifest.counts.text_keys:
                problems.append("the sealed keys do not hold the manifest's text keys")
    return verdict


def _anchors(path: Path, position: int, problems: list[str]) -> list[Anchor]:
    anchors = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            anchor = Anchor.parse(line)
        except (ValueError, KeyError, TypeError):
            problems.append(f"anchor line {number} cannot be read")
            continue
        if anchor.position > position:
            problems.append(f"anchor line {number} is past the snapshot's position")
        anchors.append(anchor)
    return anchors


def _compare_counts(
    manifest: Manifest, contents: Contents, anchors: int, problems: list[str]
) -> None:
    c = manifest.counts
    found = {
        "events": (contents.events, c.events),
        "aggregates": (contents.aggregates, c.aggregates),
        "projects": (len(contents.projects), c.projects),
        "accounts": (len(contents.accounts), c.accounts),
        "erased accounts": (len(contents.erased_accounts), c.erased_accounts),
        "anchors": (anchors, c.anchors),
        "last position": (contents.position, manifest.position),
    }
    for what, (seen, claimed) in found.items():
        if seen != claimed:
            problems.append(f"the snapshot holds {seen} {what}, the manifest says {claimed}")


def _check_assets(manifest: Manifest, contents: Contents, problems: list[str]) -> None:
    present = set()
    for name, member in manifest.members.items():
        if name.startswith(ASSETS):
            asset = name.rpartition("/")[2]
            if member.sha256 != asset:
                problems.append(f"{name}: its content is not the asset {asset}")
            present.add(asset)
    if len(present) != manifest.counts.assets:
        problems.append(
            f"{len(present)} assets in the file, the manifest says {manifest.counts.assets}"
        )
    for asset in sorted(contents.needed_assets() - present):
        problems.append(f"asset {asset} is named by an event but not in the backup")
    for asset in manifest.missing_assets:
        problems.append(f"asset {asset} was missing from the data dir when the backup was made")
