"""`GET /api/videos` answers, kept per owner until the owner's list changes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

from pydantic_core import to_json

from ..domain.status import ACTIVE
from ..projections import ChangeFeed, MyVideos

POLL_INTERVAL_S = 8
ACTIVE_NAMES = frozenset(status.value for status in ACTIVE)


class VideoLists:
    """Each owner's last My Videos answer, reused while the change feed has nothing newer of theirs.

    Every change to an owner's list writes a change-feed row in the same transaction as the
    view, so the owner's newest change position is an exact version of their list.
    """

    def __init__(
        self, feed: ChangeFeed, videos: MyVideos, epoch: Callable[[], str], size: int = 256
    ) -> None:
        self.feed = feed
        self.videos = videos
        self.epoch = epoch
        self.size = size
        # owner -> (their newest change, the view's position then, its epoch, the answer)
        self._answers: OrderedDict[str, tuple[int, int, str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def answer(self, owner_id: UUID, min_position: int = 0) -> bytes:
        """The owner's `GET /api/videos` JSON, `position` at least `min_position` (blocking)."""
        owner = str(owner_id)
        version = self.feed.latest_of_owner(owner)
        epoch = self.epoch()
        with self._lock:
            cached = self._answers.get(owner)
            if (
                cached is not None
                and cached[0] == version
                and cached[1] >= min_position
                and cached[2] == epoch
            ):
                self._answers.move_to_end(owner)
                return cached[3]
        epoch, position, cards = self.videos.listing(owner)
        active = any(card["status"] in ACTIVE_NAMES for card in cards)
        # The read model's cards are already the contract's (VideoList documents them and the
        # tests check them): written out as they are, not validated again.
        body = to_json(
            {
                "position": position,
                "poll_interval_s": POLL_INTERVAL_S if active else None,
                "videos": cards,
                "epoch": epoch,
            }
        )
        with self._lock:
            self._answers[owner] = (version, position, epoch, body)
            self._answers.move_to_end(owner)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return body
