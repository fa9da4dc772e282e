"""My Videos answers are reused per owner, never when older than the position a read waited for."""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import uuid4

from aytada_es.web.video_lists import VideoLists


class Feed:
    def __init__(self) -> None:
        self.latest = 3

    def latest_of_owner(self, owner: str) -> int:
        return self.latest


class Videos:
    def __init__(self) -> None:
        self.position = 5
        self.reads = 0

    def videos_of(self, owner: str) -> tuple[int, list[Any]]:
        self.reads += 1
        return self.position, []


def test_an_answer_is_reused_until_the_owner_changes_or_a_read_asks_for_a_later_position() -> None:
    feed, videos = Feed(), Videos()
    lists = VideoLists(cast(Any, feed), cast(Any, videos))
    owner = uuid4()
    assert json.loads(lists.answer(owner))["position"] == 5
    assert json.loads(lists.answer(owner, 5))["position"] == 5
    assert videos.reads == 1  # reused: nothing of the owner's changed
    videos.position = 9  # others' events applied since; this owner's list is the same
    assert json.loads(lists.answer(owner, 8))["position"] == 9
    assert videos.reads == 2
    feed.latest = 9
    lists.answer(owner)
    assert videos.reads == 3
