"""The service's secret key: `AYTADA_SECRET_KEY`, or a random one kept in the data directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from ..domain.errors import ConfigError
from .permissions import PRIVATE_FILE, private_dir

KEY_FILE = "session.key"
MIN_KEY_LENGTH = 16


def session_key(data_dir: Path, configured: str | None = None) -> bytes:
    """`AYTADA_SECRET_KEY`, or a random key kept in the data dir so its processes share it."""
    if configured:
        if len(configured) < MIN_KEY_LENGTH:
            raise ConfigError(f"AYTADA_SECRET_KEY must have at least {MIN_KEY_LENGTH} characters")
        return configured.encode()
    path = data_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    private_dir(data_dir)
    # Written aside then linked into place: of two processes starting at once, one key wins.
    fd, temporary = _private_file(data_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_key(path)


def _private_file(directory: Path) -> tuple[int, str]:
    name = str(directory / f".{KEY_FILE}.{secrets.token_hex(8)}")
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), name


def _read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < MIN_KEY_LENGTH:
        raise ConfigError(f"{path} does not hold a secret key; delete it to make a new one")
    return text.encode()
