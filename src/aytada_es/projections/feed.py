"""The My Videos change feed: every owner's changes in position order, read from its table."""

from __future__ import annotations

from uuid import UUID

from ..adapters.sql import Row, SQLStore, from_json
from .base import CardChange


class ChangeFeed:
    """Reads `aytada_video_changes`, which the My Videos projection appends to in position order."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store

    def latest(self) -> int:
        """The position of the newest change, 0 when there is none."""
        rows = self.store.query("SELECT MAX(position) AS latest FROM {aytada_video_changes}")
        latest = rows[0]["latest"] if rows else None
        return 0 if latest is None else int(latest)

    def latest_of_owner(self, owner_id: UUID | str) -> int:
        """The position of the owner's newest change, 0 when there is none."""
        rows = self.store.query(
            "SELECT MAX(position) AS latest FROM {aytada_video_changes} WHERE owner_id = ?",
            (str(owner_id),),
        )
        latest = rows[0]["latest"] if rows else None
        return 0 if latest is None else int(latest)

    def after(self, position: int, limit: int) -> list[CardChange]:
        """Every owner's changes after a position, in order, at most `limit`."""
        rows = self.store.query(
            "SELECT * FROM {aytada_video_changes} WHERE position > ? ORDER BY position LIMIT ?",
            (position, limit),
        )
        return [_change(row) for row in rows]

    def of_owner_after(self, owner_id: UUID | str, position: int, limit: int) -> list[CardChange]:
        """One owner's changes after a position, in order, at most `limit`."""
        rows = self.store.query(
            "SELECT * FROM {aytada_video_changes} WHERE owner_id = ? AND position > ?"
            " ORDER BY position LIMIT ?",
            (str(owner_id), position, limit),
        )
        return [_change(row) for row in rows]


def _change(row: Row) -> CardChange:
    return CardChange(
        position=int(row["position"]),
        owner_id=row["owner_id"],
        kind=row["kind"],
        project_id=row["project_id"],
        card=from_json(row["card"]),
    )
