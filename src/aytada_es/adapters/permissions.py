"""The data directory and what we write in it are private to the service's user (0700, 0600)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OTHERS = 0o077  # group and others: read, write, search


def private_dir(path: Path) -> None:
    """Create `path` (and its missing parents) 0700; tighten it if it exists with looser bits.

    When an existing data dir was loose, what we keep in it is tightened once too: its files and
    the assets tree (not other folders someone put there). At later starts the directory is
    already 0700, so nothing is walked again.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        return
    if not mode & _OTHERS:
        return
    try:
        path.chmod(PRIVATE_DIR)
    except PermissionError:
        log.warning("%s is readable by other users and not ours to change (mode %o)", path, mode)
        return
    log.info("tightened %s to 0700 (was %o) and what it holds to owner-only", path, mode)
    for entry in path.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_file():
            _tighten(entry)
    assets = path / "assets"
    if assets.is_dir() and not assets.is_symlink():
        _tighten(assets)
        for root, folders, files in os.walk(assets):
            for name in [*folders, *files]:
                _tighten(Path(root, name))


def _tighten(path: Path) -> None:
    with contextlib.suppress(OSError):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            return
        mode = stat.S_IMODE(info.st_mode)
        if mode & _OTHERS:
            path.chmod(mode & ~_OTHERS)


def private_file(path: Path | str) -> None:
    """Create an empty file 0600 unless it exists (SQLite then gives its journals that mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
