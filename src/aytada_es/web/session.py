"""Session cookies: an account id and an expiry, signed with HMAC-SHA256 by the data dir's key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from uuid import UUID

from ..parsing import whole_number

SESSION_COOKIE = "aytada_session"
SESSION_TTL_S = 7 * 24 * 3600


# The key itself is the service's secret key (adapters.keys).
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
        raw_expiry, _, mac = rest.partition(".")
        expiry = whole_number(raw_expiry)
        if expiry is None or not mac or expiry < (time.time() if now is None else now):
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
