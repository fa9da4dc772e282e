"""My Videos: one card per project, newest first, and the change feed the live push resumes from."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from ..adapters.sealed_text import ERASED
from ..adapters.sql import Row, SQLStore, Transaction, from_json, to_json
from ..domain.project import Project, paused_at
from ..domain.status import PROGRESS_FLOOR, VIDEO_PROGRESS_CEILING, Status
from ..domain.steps import SPECS, Step
from ..notation import utc_iso
from .base import Batch, Card, CardChange, DomainEvent, Projection, aggregate_id, chunks
from .generations import epoch_of

VIDEOS = "aytada_videos"
CHANGES = "aytada_video_changes"

# The event that records each step's result, and so finishes it.
_RESULTS: dict[type[Project.Event], Step] = {
    Project.IdeasGenerated: Step.IDEAS,
    Project.ScriptGenerated: Step.SCRIPT,
    Project.ScenesGenerated: Step.SCENES,
    Project.VideoGenerated: Step.VIDEO,
    Project.VoiceoverGenerated: Step.VOICEOVER,
    Project.VideoStitched: Step.STITCHING,
}


def _sortable(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds always written, so that text order is time order."""
    if moment.tzinfo is not UTC:  # stored times come back in UTC: no copy for them
        moment = moment.astimezone(UTC)
    if moment.year >= 1000:  # what strftime writes, three times faster
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shown(stored: str) -> str:
    # isoformat() leaves out a zero fraction; the stored text always has one.
    return stored.replace(".000000Z", "Z")


def asset_url(asset_id: str | None) -> str | None:
    return None if asset_id is None else f"/api/assets/{asset_id}"


def card(row: Row) -> Card:
    """The contract's card of a My Videos row."""
    return {
        "id": str(row["id"]),
        "title": row["title"],
        "format": row["format"],
        "created_at": _shown(row["created_at"]),
        "updated_at": _shown(row["updated_at"]),
        "status": row["status"],
        "progress": int(row["progress"]),
        "action": row["action"],
        "thumbnail_url": asset_url(row["thumbnail_id"]),
        "paused": paused_at(row["status"], from_json(row["paused"]) if row["paused"] else None),
    }


def project_card(project: Project) -> Card:
    """The same card from the aggregate itself, for answers given before the view catches up."""
    thumbnail = project.thumbnail
    return {
        "id": str(project.id),
        "title": project.title,
        "format": project.format,
        "created_at": utc_iso(project.created_on),
        "updated_at": utc_iso(project.updated_on),
        "status": str(project.status),
        "progress": project.progress,
        "action": project.action,
        "thumbnail_url": asset_url(thumbnail["id"] if thumbnail else None),
        "paused": project.waiting_for_credits,
    }


class MyVideos(Projection):
    """Every project's card, and one change-feed row per project changed in a batch."""

    name = "videos"
    version = 2  # 2: the autopilot pause (`paused`)
    tables = (VIDEOS, CHANGES)
    events = (Project.Event,)
    personal = {VIDEOS: ("id", ("title",))}
    reads: ClassVar[dict[str, tuple[str, ...]]] = {
        "ProjectCreated": ("title",),
        "ProjectRenamed": ("title",),
        "IdeasGenerated": (),
        "ScriptGenerated": (),
        "ScenesGenerated": (),  # only how many
    }

    def erase(self, tx: Transaction, project_ids: Sequence[str]) -> None:
        super().erase(tx, project_ids)
        for chunk in chunks(project_ids):
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT position, card FROM {aytada_video_changes}"  # noqa: S608 (our names)
                f" WHERE project_id IN ({marks}) AND card IS NOT NULL"
            )
            rows = tx.query(sql, chunk)
            erased = [
                (to_json({**from_json(r["card"]), "title": ERASED}), r["position"]) for r in rows
            ]
            tx.executemany("UPDATE {aytada_video_changes} SET card = ? WHERE position = ?", erased)

    ddl = (
        """CREATE TABLE IF NOT EXISTS {aytada_videos} (
            id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            title TEXT NOT NULL,
            format TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            status TEXT NOT NULL,
            progress INTEGER NOT NULL,
            action TEXT,
            thumbnail_id TEXT,
            deleted INTEGER NOT NULL,
            position BIGINT NOT NULL,
            scene_count INTEGER NOT NULL,
            clip_scenes TEXT NOT NULL,
            paused TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_videos_by_owner"
        " ON {aytada_videos} (owner_id, deleted, created_at, id)",
        """CREATE TABLE IF NOT EXISTS {aytada_video_changes} (
            position BIGINT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            project_id TEXT NOT NULL,
            card TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_video_changes_by_owner"
        " ON {aytada_video_changes} (owner_id, position)",
    )

    def __init__(self, store: SQLStore) -> None:
        super().__init__(store)
        self._videos: dict[str, Row] = {}  # the rows this batch touches
        self._listed_before: dict[str, bool] = {}
        self._last: dict[str, int] = {}  # each touched project's last position in the batch
        self._updated: dict[str, datetime] = {}  # written in `flush`: strftime is slow

    def begin(self, tx: Transaction, batch: Batch) -> None:
        # The runner hands over only `events` (project events).
        known = {
            aggregate_id(event)
            for _, event in batch
            if not isinstance(event, Project.ProjectCreated)
        }
        self._videos = {row["id"]: row for row in tx.rows_with(VIDEOS, "id", known)}
        for video in self._videos.values():
            video["clip_scenes"] = from_json(video["clip_scenes"])
        self._listed_before = {id: not video["deleted"] for id, video in self._videos.items()}
        self._last, self._updated = {}, {}

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if not isinstance(event, Project.Event):
            return ()
        id = aggregate_id(event)
        if isinstance(event, Project.ProjectCreated):
            video = self._videos[id] = _created(event)
            self._listed_before[id] = False
        elif (found := self._videos.get(id)) is None:
            raise LookupError(f"{type(event).__name__} of project {id}, never created")
        else:
            video = found
        changes_row, keeps_time = _effects(event.__class__)
        if changes_row:
            _apply(video, event)
        if not keeps_time:
            self._updated[id] = event.timestamp
        video["position"] = position
        self._last[id] = position
        return ()

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        for id, moment in self._updated.items():
            self._videos[id]["updated_at"] = _sortable(moment)
        touched = [self._videos[id] for id in self._last]
        tx.upsert(VIDEOS, "id", [{**v, "clip_scenes": to_json(v["clip_scenes"])} for v in touched])
        changes = []
        for video in touched:
            listed = not video["deleted"]
            if listed or self._listed_before[video["id"]]:
                changes.append(
                    CardChange(
                        position=self._last[video["id"]],
                        owner_id=video["owner_id"],
                        kind="update" if listed else "removed",
                        project_id=video["id"],
                        card=card(video) if listed else None,
                    )
                )
        changes.sort(key=lambda c: c.position)
        tx.executemany(
            "INSERT INTO {aytada_video_changes} (position, owner_id, kind, project_id, card)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                (
                    c.position,
                    c.owner_id,
                    c.kind,
                    c.project_id,
                    None if c.card is None else to_json(c.card),
                )
                for c in changes
            ),
        )
        self._videos.clear()
        self._updated = {}
        return changes

    # ---- queries -----------------------------------------------------------------------

    def videos_of(self, owner_id: UUID | str) -> tuple[int, list[Card]]:
        """The position of the view and the owner's listed cards, newest first."""
        _, position, cards = self.listing(owner_id)
        return position, cards

    def listing(self, owner_id: UUID | str) -> tuple[str, int, list[Card]]:
        """The epoch of the generation read, the view's position and the owner's cards."""
        with self.store.reading() as tx:
            epoch = epoch_of(tx.generation)
            # Position first: on PostgreSQL each statement sees the latest commits, and cards
            # newer than the position are only replayed, never missed, by a client that resumes.
            position = self.position(tx)
            rows = tx.query(
                "SELECT * FROM {aytada_videos} WHERE owner_id = ? AND deleted = 0"
                " ORDER BY created_at DESC, id DESC",
                (str(owner_id),),
            )
        return epoch, position, [card(row) for row in rows]

    def title_of(self, project_id: UUID | str) -> str | None:
        """A project's current title (deleted ones too), None when the view has no such project."""
        rows = self.store.query(
            "SELECT title FROM {aytada_videos} WHERE id = ?", (str(project_id),)
        )
        return str(rows[0]["title"]) if rows else None

    def changes_after(self, owner_id: UUID | str, after: int) -> list[CardChange]:
        """The owner's changes after a position, in order."""
        rows = self.store.query(
            "SELECT * FROM {aytada_video_changes} WHERE owner_id = ? AND position > ?"
            " ORDER BY position",
            (str(owner_id), after),
        )
        return [
            CardChange(
                position=int(row["position"]),
                owner_id=row["owner_id"],
                kind=row["kind"],
                project_id=row["project_id"],
                card=from_json(row["card"]),
            )
            for row in rows
        ]

    def oldest_change_position(self) -> int | None:
        """The position of the oldest change still in the feed, if any."""
        rows = self.store.query("SELECT MIN(position) AS oldest FROM {aytada_video_changes}")
        oldest = rows[0]["oldest"] if rows else None
        return None if oldest is None else int(oldest)


def _created(event: Project.ProjectCreated) -> Row:
    return {
        "id": aggregate_id(event),
        "owner_id": str(event.owner_id),
        "title": event.title,
        "format": event.format,
        "created_at": _sortable(event.timestamp),
        "updated_at": _sortable(event.timestamp),
        "status": Status.DRAFT.value,
        "progress": PROGRESS_FLOOR[Status.DRAFT],
        "action": Status.DRAFT.action,
        "thumbnail_id": None,
        "deleted": 0,
        "position": 0,
        "scene_count": 0,
        "clip_scenes": [],
        "paused": None,
    }


_KEEP_TIME = (Project.ProjectDeleted, Project.ProjectRestored)  # they leave the card as it was
_CHANGE_ROW: tuple[type[Project.Event], ...] = (
    Project.StepRequested,
    Project.ClipRendered,
    *_RESULTS,
    Project.StepFailed,
    Project.StepCancelled,
    Project.ProjectRenamed,
    Project.AutopilotPaused,
    *_KEEP_TIME,
)


@functools.cache
def _effects(kind: type[Any]) -> tuple[bool, bool]:
    """Whether `_apply` may change the row for events of this class; whether they keep its time."""
    return issubclass(kind, _CHANGE_ROW), issubclass(kind, _KEEP_TIME)


def _apply(video: Row, event: Project.Event) -> None:
    """Mirror, on a row, what the event does to the aggregate's status, progress and flags."""
    if isinstance(event, Project.StepRequested):
        _advance(video, SPECS[event.STEP].status)
        if isinstance(event, Project.VideoRequested):
            video["clip_scenes"] = []
    elif isinstance(event, Project.ClipRendered):
        scenes = set(video["clip_scenes"]) | {event.scene}
        video["clip_scenes"] = sorted(scenes)
        total = max(video["scene_count"], 1)
        floor = PROGRESS_FLOOR[Status.GENERATING_VIDEO]
        reached = floor + (VIDEO_PROGRESS_CEILING - floor) * min(len(scenes), total) // total
        video["progress"] = max(video["progress"], reached)
    elif (step := _RESULTS.get(type(event))) is not None:
        if isinstance(event, Project.ScenesGenerated):
            video["scene_count"] = len(event.scenes)
        elif isinstance(event, Project.VideoStitched):
            video["thumbnail_id"] = str(event.thumbnail["id"])
        done = SPECS[step].done_status
        if done is not None:
            _advance(video, done)
    elif isinstance(event, (Project.StepFailed, Project.StepCancelled)):
        _set_status(video, Status.FAILED)
    elif isinstance(event, Project.ProjectRenamed):
        video["title"] = event.title
    elif isinstance(event, Project.AutopilotPaused):
        paused = {"step": event.step, "needed": event.needed, "balance": event.balance}
        video["paused"] = to_json(paused)
    elif isinstance(event, Project.ProjectDeleted):
        video["deleted"] = 1
    elif isinstance(event, Project.ProjectRestored):
        video["deleted"] = 0


def _advance(video: Row, status: Status) -> None:
    _set_status(video, status)
    video["progress"] = max(video["progress"], PROGRESS_FLOOR[status])


def _set_status(video: Row, status: Status) -> None:
    video["status"] = status.value
    video["action"] = status.action
