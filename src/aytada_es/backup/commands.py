"""`aytada-es backup FILE`, `aytada-es backup verify FILE` and `aytada-es restore FILE`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

VERIFY = "verify"


def add_commands(commands: Any) -> None:
    """Register `backup` and `restore` with the CLI's subparsers."""
    backup = commands.add_parser(
        "backup",
        usage="aytada-es backup FILE | aytada-es backup verify FILE",
        help="`backup FILE`: write a backup while the service runs (store snapshot, assets,"
        " anchors, keys sealed with AYTADA_BACKUP_PASSPHRASE); `backup verify FILE`: check one"
        " without a store or service, exit 0 when intact and 1 otherwise",
    )
    backup.add_argument("words", nargs="+", metavar="FILE", help="verify FILE, or FILE")
    backup.set_defaults(usage=backup)
    restore = commands.add_parser(
        "restore",
        help="restore a backup into an empty AYTADA_DATA_DIR (and empty schema on PostgreSQL);"
        " exit 0 only once the restored copy is proven whole",
    )
    restore.add_argument("file", metavar="FILE", type=Path)


def run(args: argparse.Namespace) -> int:
    """Run `backup`, `backup verify` or `restore`; 0 done, 1 refused or not intact, 2 bad input."""
    import sqlite3

    from ..domain.errors import BackupRefused

    try:
        if args.command == "restore":
            return _restore(args.file)
        words = list(args.words)
        if words[0] == VERIFY and len(words) == 2:
            return _verify(Path(words[1]))
        if len(words) != 1:
            args.usage.error("give FILE, or verify FILE")
        return _backup(Path(words[0]))
    except BackupRefused as e:
        print(f"aytada-es: {e.message}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as e:  # no such directory, no store to back up, ...
        print(f"aytada-es: {args.command} failed, nothing was written: {e}", file=sys.stderr)
        return 1


def _backup(path: Path) -> int:
    from ..config import Settings
    from ..domain.errors import BackupRefused
    from .sealing import passphrase
    from .take import take_backup

    phrase = passphrase(os.environ)
    settings = Settings.from_env(os.environ)
    try:
        taken = take_backup(settings, path, phrase)
    except FileExistsError as e:
        raise BackupRefused(str(e)) from None
    m = taken.manifest
    print(
        f"wrote {path}: {m.counts.events} events up to position {m.position},"
        f" {m.counts.projects} projects, {m.counts.accounts} accounts, {m.counts.assets} assets,"
        f" {m.counts.anchors} anchors, keys sealed (snapshot {taken.snapshot_s:.2f} s,"
        f" all {taken.seconds:.2f} s)"
    )
    for problem in taken.problems[:20]:
        print(f"aytada-es: {problem}", file=sys.stderr)
    if taken.problems:
        print(
            f"aytada-es: {len(taken.problems)} problem(s): this backup will not verify",
            file=sys.stderr,
        )
        return 1
    return 0


def _verify(path: Path) -> int:
    from .sealing import PASSPHRASE_VARIABLE
    from .verify import verify_backup

    if not path.is_file():
        print(f"aytada-es: {path} is not a file", file=sys.stderr)
        return 1
    verdict = verify_backup(path, os.environ.get(PASSPHRASE_VARIABLE) or None)
    print("\n".join(verdict.summary()))
    return 0 if verdict.passed else 1


def _restore(path: Path) -> int:
    from ..config import Settings
    from .restore import restore_backup
    from .sealing import passphrase

    phrase = passphrase(os.environ)
    settings = Settings.from_env(os.environ)
    done = restore_backup(settings, path, phrase, progress=_bar)
    sys.stderr.write("\n")
    m = done.manifest
    print(
        f"restored {path} into {settings.data_dir}: {m.counts.events} events up to position"
        f" {m.position} (made {m.created_at}), {done.projects} projects and {done.accounts}"
        f" accounts audited, {done.assets} assets checked, read models rebuilt from"
        f" {done.rebuilt} events in {done.seconds:.2f} s: proven whole. Events after position"
        f" {m.position} are not in it; `aytada-es serve` republishes the topics from it."
    )
    return 0


def _bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events")
    sys.stderr.flush()
