"""Rate limits: logins per client address, API writes per user; in memory, per process."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ..domain.errors import TooManyRequests


class RateLimit:
    """At most `per_minute` hits in any 60 seconds for each key (a moving window); 0: no limit."""

    def __init__(self, per_minute: int, what: str) -> None:
        self.per_minute = per_minute
        self.what = what
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage()) if self._item else None

    def hit(self, key: str) -> None:
        """Count one for `key`; TooManyRequests (429, with Retry-After) when it is one too many."""
        if self._item is None or self._limiter is None:
            return
        if self._limiter.hit(self._item, key):
            return
        reset_at, _ = self._limiter.get_window_stats(self._item, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise TooManyRequests(
            f"too many {self.what}: at most {self.per_minute} a minute; "
            f"try again in {retry_after} s",
            retry_after,
        )
