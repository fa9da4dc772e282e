"""Signed, expiring links to single assets, for remote renderers that cannot log in."""

from __future__ import annotations

import hashlib
import hmac
import time

from ..parsing import whole_number

LINK_TTL_S = 24 * 3600


class AssetLinks:
    """`{public_url}/public/assets/{id}?expires=T&signature=S`, valid for one asset until T."""

    def __init__(self, key: bytes, public_url: str, ttl_s: int = LINK_TTL_S) -> None:
        self.key = key
        self.public_url = public_url.rstrip("/")
        self.ttl_s = ttl_s

    def url(self, asset_id: str, *, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.ttl_s)
        return (
            f"{self.public_url}/public/assets/{asset_id}"
            f"?expires={expires}&signature={self._sign(asset_id, expires)}"
        )

    def valid(
        self, asset_id: str, expires: str, signature: str, *, now: float | None = None
    ) -> bool:
        """Whether a link's signature is ours and it has not expired."""
        expiry = whole_number(expires)
        if expiry is None or expiry < (now or time.time()):
            return False
        return hmac.compare_digest(self._sign(asset_id, expiry), signature)

    def _sign(self, asset_id: str, expires: int) -> str:
        message = f"asset:{asset_id}:{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()
