"""Session cookies: an account id and an expiry, signed with HMAC-SHA256 by the data dir's key."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from uuid import UUID

from ..domain.errors import ConfigError

SESSION_COOKIE = "aytada_session"
SESSION_TTL_S = 7 * 24 * 3600
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
    data_dir.mkdir(parents=True, exist_ok=True)
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
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name


def _read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < MIN_KEY_LENGTH:
        raise ConfigError(f"{path} does not hold a session key; delete it to make a new one")
    return text.encode()


class SessionSigner:
    """Issues and checks session cookie values: `account.expiry.mac`.

    The MAC also covers the account's token hash, so a rotated token ends its sessions.
    """

    def __init__(self, key: bytes, ttl_s: int = SESSION_TTL_S) -> None:
        self._key = key
        self.ttl_s = ttl_s

    def issue(self, account_id: UUID, token_hash: str, *, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + self.ttl_s)
        payload = f"{account_id}.{expiry}"
        return f"{payload}.{self._mac(payload, token_hash)}"

    def claimed(self, value: str, *, now: float | None = None) -> UUID | None:
        """The account a cookie names if it has not expired; check it with `verify` next."""
        account, _, rest = value.partition(".")
        expiry, _, mac = rest.partition(".")
        if not (expiry.isascii() and expiry.isdigit() and mac):
            return None
        if int(expiry) < (time.time() if now is None else now):
            return None
        try:
            return UUID(account)
        except ValueError:
            return None

    def verify(self, value: str, token_hash: str) -> bool:
        """Whether this cookie was issued by us for the account with this token hash."""
        payload, _, mac = value.rpartition(".")
        return hmac.compare_digest(mac, self._mac(payload, token_hash))

    def _mac(self, payload: str, token_hash: str) -> str:
        digest = hmac.new(self._key, f"{payload}|{token_hash}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
