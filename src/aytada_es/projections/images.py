"""My Images, and whose every stored asset is: the web edge asks it before serving a file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict
from uuid import UUID

from ..adapters.sql import Row, SQLStore, Transaction
from ..domain.assets import IMAGE_KINDS
from ..domain.project import Project
from ._project_rows import ProjectRows
from .base import Batch, CardChange, DomainEvent, Projection, aggregate_id
from .videos import _shown, _sortable

ASSETS = "aytada_assets"
# Each project's owner and deleted flag: an asset event names neither.
PROJECTS = "aytada_asset_projects"

_ASSET_COLUMNS = ("id", "project_id", "owner_id", "kind", "content_type", "created_at", "position")
_ASSET_EVENTS = (
    Project.ClipRendered,
    Project.VoiceoverGenerated,
    Project.VideoStitched,
    Project.AssetsAdded,
    Project.AddOnCompleted,
)


class ImageView(TypedDict):
    """One generated image as My Images lists it."""

    id: str
    project_id: str
    kind: str
    url: str
    created_at: str


class AssetView(TypedDict):
    """One stored asset of one project, with whose it is."""

    id: str
    project_id: str
    owner_id: str
    kind: str
    content_type: str | None
    url: str
    created_at: str
    deleted: bool


class MyImages(Projection):
    """Every asset of every project (one row per project that holds it), images listed per owner."""

    name = "images"
    tables = (ASSETS, PROJECTS)
    events = (
        Project.ProjectCreated,
        Project.ProjectDeleted,
        Project.ProjectRestored,
        *_ASSET_EVENTS,
    )
    reads = {"ProjectCreated": ()}
    ddl = (
        """CREATE TABLE IF NOT EXISTS {aytada_asset_projects} (
            project_id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            deleted INTEGER NOT NULL
        )""",
        # Assets are named by content hash, so two projects can hold the same one.
        """CREATE TABLE IF NOT EXISTS {aytada_assets} (
            id TEXT NOT NULL,
            project_id TEXT NOT NULL,
            owner_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            content_type TEXT,
            created_at TEXT NOT NULL,
            position BIGINT NOT NULL,
            PRIMARY KEY (id, project_id)
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_assets_by_owner"
        " ON {aytada_assets} (owner_id, kind, created_at)",
    )

    def __init__(self, store: SQLStore) -> None:
        super().__init__(store)
        self._projects = ProjectRows(PROJECTS)
        self._assets: dict[tuple[str, str], Row] = {}  # new in this batch, first record kept

    def begin(self, tx: Transaction, batch: Batch) -> None:
        needed_by = (*_ASSET_EVENTS, Project.ProjectDeleted, Project.ProjectRestored)
        self._projects.load(tx, batch, needed_by)
        self._assets = {}

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if not isinstance(event, Project.Event):
            return ()
        id = aggregate_id(event)
        if isinstance(event, Project.ProjectCreated):
            self._projects.created(id, {"owner_id": str(event.owner_id)})
        elif isinstance(event, (Project.ProjectDeleted, Project.ProjectRestored)):
            self._projects.mark(event)
        elif records := _records(event):
            owner_id = self._projects.of(id, event)["owner_id"]
            for record in records:
                asset = _asset(record, id, owner_id, position, event.timestamp)
                self._assets.setdefault((asset["id"], id), asset)
        return ()

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        self._projects.save(tx)
        tx.executemany(
            "INSERT INTO {aytada_assets}"
            " (id, project_id, owner_id, kind, content_type, created_at, position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id, project_id) DO NOTHING",
            ([a[column] for column in _ASSET_COLUMNS] for a in self._assets.values()),
        )
        self._assets = {}
        return ()

    # ---- queries -----------------------------------------------------------------------

    def images_of(self, owner_id: UUID | str) -> list[ImageView]:
        """The owner's generated images of projects not deleted, newest first."""
        rows = self.store.query(
            "SELECT a.id, a.project_id, a.kind, a.created_at FROM {aytada_assets} a"
            " JOIN {aytada_asset_projects} p ON p.project_id = a.project_id"
            " WHERE a.owner_id = ? AND a.kind IN (?, ?, ?, ?) AND p.deleted = 0"
            " ORDER BY a.created_at DESC, a.position DESC, a.id DESC",
            (str(owner_id), *IMAGE_KINDS),
        )
        return [
            {
                "id": row["id"],
                "project_id": row["project_id"],
                "kind": row["kind"],
                "url": _url(row["id"]),
                "created_at": _shown(row["created_at"]),
            }
            for row in rows
        ]

    def asset_owners(self, asset_id: str) -> set[tuple[str, str, bool]]:
        """Every (owner id, project id, project deleted) that holds the asset."""
        return {
            (asset["owner_id"], asset["project_id"], asset["deleted"])
            for asset in self._holders(asset_id)
        }

    def asset_for(self, owner_id: UUID | str, asset_id: str) -> AssetView | None:
        """The asset if one of the owner's projects not deleted holds it, else None."""
        owner_id = str(owner_id)
        return next(
            (a for a in self._holders(asset_id) if a["owner_id"] == owner_id and not a["deleted"]),
            None,
        )

    def asset(self, asset_id: str) -> AssetView | None:
        """The asset as the first project to hold it recorded it, deleted or not (auditors)."""
        return next(iter(self._holders(asset_id)), None)

    def _holders(self, asset_id: str) -> list[AssetView]:
        rows = self.store.query(
            "SELECT a.*, p.deleted FROM {aytada_assets} a"
            " JOIN {aytada_asset_projects} p ON p.project_id = a.project_id"
            " WHERE a.id = ? ORDER BY a.position, a.project_id",
            (asset_id,),
        )
        return [_view(row) for row in rows]


def _records(event: Project.Event) -> list[dict[str, Any]]:
    """The asset records an event carries."""
    if isinstance(event, (Project.ClipRendered, Project.VoiceoverGenerated)):
        return [event.asset]
    if isinstance(event, Project.VideoStitched):
        return [event.video, event.thumbnail]
    if isinstance(event, (Project.AssetsAdded, Project.AddOnCompleted)):
        return list(event.assets)
    return []


def _asset(
    record: dict[str, Any], project_id: str, owner_id: str, position: int, at: datetime
) -> Row:
    content_type = record.get("content_type")
    return {
        "id": str(record["id"]),
        "project_id": project_id,
        "owner_id": owner_id,
        "kind": str(record.get("kind") or "unknown"),
        "content_type": None if content_type is None else str(content_type),
        "created_at": _sortable(_moment(record.get("created_at"), at)),
        "position": position,
    }


def _moment(text: object, default: datetime) -> datetime:
    """The record's own time when it states one with its zone, else the event's."""
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return default
        if moment.tzinfo is not None:
            return moment
    return default


def _view(row: Row) -> AssetView:
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "owner_id": row["owner_id"],
        "kind": row["kind"],
        "content_type": row["content_type"],
        "url": _url(row["id"]),
        "created_at": _shown(row["created_at"]),
        "deleted": bool(row["deleted"]),
    }


def _url(asset_id: str) -> str:
    return f"/api/assets/{asset_id}"
