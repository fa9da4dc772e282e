"""Rolling the bundled broker: restarted empty at a quiet moment once its memory passes a size.

Tansu's memory storage keeps every record it was given, with no retention. Rolled, it holds
again only what the relay republishes after a loss: the retention window and the active
projects' events (`relay.py`). Stages act once per event, and their consumers start from the
earliest offset of the fresh topics, so a roll loses no request and acts on none twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from .._waiting import wait_or_timeout
from .broker import BundledBroker

log = logging.getLogger(__name__)
CHECK_S = 10.0
# At most one roll this often, whatever the sizes say.
MIN_INTERVAL_S = 300.0


class Publishing(Protocol):
    """What a roll asks of the relay: whether it is current, and what the broker holds."""

    leading: bool
    replay_until: int
    position: int
    published_since_loss: int
    last_replay: int


class BrokerRoll:
    """Restarts the bundled broker when its memory passes `limit_mb`, at a quiet moment."""

    def __init__(
        self,
        broker: BundledBroker,
        *,
        limit_mb: int,
        quiet: Callable[[], bool],
        relay: Callable[[], Publishing | None],
        last_position: Callable[[], int],
        check_s: float = CHECK_S,
        min_interval_s: float = MIN_INTERVAL_S,
    ) -> None:
        self.broker = broker
        self.limit_bytes = limit_mb * 1024 * 1024
        self.quiet = quiet
        self.relay = relay
        self.last_position = last_position
        self.check_s = check_s
        self.min_interval_s = min_interval_s
        self.rolls = 0
        self.rolled_at = time.monotonic()
        self.peak_bytes = 0

    def due(self, rss: int, last_position: int) -> bool:
        """Whether to roll now: too big, a roll frees most of it, and nothing is in flight."""
        relay = self.relay()
        if rss <= self.limit_bytes or relay is None or not relay.leading or relay.replay_until:
            return False
        if time.monotonic() - self.rolled_at < self.min_interval_s:
            return False
        # What a roll brings back is about the last replay: roll when it frees at least half.
        if relay.published_since_loss <= 2 * relay.last_replay:
            return False
        return relay.position >= last_position and self.quiet()

    async def run(self, stop: asyncio.Event) -> None:
        """Check every `check_s` until stopped."""
        while not stop.is_set():
            await wait_or_timeout(stop, self.check_s)
            if stop.is_set():
                return
            rss = self.broker.rss_bytes()
            self.peak_bytes = max(self.peak_bytes, rss)
            if rss <= self.limit_bytes:
                continue
            if self.due(rss, await asyncio.to_thread(self.last_position)):
                await self.roll(rss)

    async def roll(self, rss: int) -> None:
        """Restart the broker empty on the same port; the relay notices and republishes."""
        log.warning(
            "bundled broker holds %.0f MB (limit %.0f MB): rolling it; the relay republishes"
            " the retention window and the active projects' events",
            rss / 2**20,
            self.limit_bytes / 2**20,
        )
        await asyncio.to_thread(self.broker.restart)
        self.rolls += 1
        self.rolled_at = time.monotonic()
