"""The soft-delete view of support: deleted projects, whose they are, who deleted them and when."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from ..adapters.sql import SQLStore, Transaction
from ..domain.account import Account
from ..domain.project import Project
from ..notation import utc_iso
from .base import Batch, CardChange, DomainEvent, Projection, aggregate_id

# Every project, with its deletion while it is soft-deleted: a deletion event names neither the
# owner nor the title, and this view must not read another view that may be behind it.
DELETIONS = "aytada_project_deletions"
OWNERS = "aytada_owner_names"


class DeletedProject(TypedDict):
    """One row of the soft-delete view."""

    project_id: str
    owner_id: str
    owner_name: str | None
    title: str
    deleted_at: str
    deleted_by: str
    position: int


class DeletedProjects(Projection):
    """Soft-deleted projects, gone again when restored."""

    name = "deleted"
    tables = (DELETIONS, OWNERS)
    events = (
        Account.AccountOpened,
        Project.ProjectCreated,
        Project.ProjectDeleted,
        Project.ProjectRestored,
        Project.ProjectRenamed,
    )
    personal = {DELETIONS: ("project_id", ("title",))}
    reads = {"ProjectCreated": ("title",), "ProjectRenamed": ("title",)}
    ddl = (
        """CREATE TABLE IF NOT EXISTS {aytada_project_deletions} (
            project_id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            title TEXT NOT NULL,
            deleted_at TEXT,
            deleted_by TEXT,
            position BIGINT
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_project_deletions_by_position"
        " ON {aytada_project_deletions} (position)",
        "CREATE TABLE IF NOT EXISTS {aytada_owner_names}"
        " (account_id TEXT PRIMARY KEY, name TEXT NOT NULL)",
    )

    def __init__(self, store: SQLStore) -> None:
        super().__init__(store)
        self._owners: list[tuple[str, str]] = []
        self._projects: list[tuple[str, str, str]] = []
        self._deletions: list[tuple[Any, ...]] = []  # in event order
        self._renames: list[tuple[str, str]] = []

    def begin(self, tx: Transaction, batch: Batch) -> None:
        self._owners, self._projects, self._deletions, self._renames = [], [], [], []

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        id = aggregate_id(event)
        if isinstance(event, Account.AccountOpened):
            self._owners.append((id, event.name))
        elif isinstance(event, Project.ProjectCreated):
            self._projects.append((id, str(event.owner_id), event.title))
        elif isinstance(event, Project.ProjectDeleted):
            self._deletions.append((utc_iso(event.timestamp), event.actor, position, id))
        elif isinstance(event, Project.ProjectRestored):
            self._deletions.append((None, None, None, id))
        elif isinstance(event, Project.ProjectRenamed):
            self._renames.append((event.title, id))
        return ()

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        tx.executemany(
            "INSERT INTO {aytada_owner_names} (account_id, name) VALUES (?, ?)", self._owners
        )
        tx.executemany(
            "INSERT INTO {aytada_project_deletions} (project_id, owner_id, title) VALUES (?, ?, ?)",
            self._projects,
        )
        tx.executemany(
            "UPDATE {aytada_project_deletions} SET deleted_at = ?, deleted_by = ?, position = ?"
            " WHERE project_id = ?",
            self._deletions,
        )
        tx.executemany(
            "UPDATE {aytada_project_deletions} SET title = ? WHERE project_id = ?", self._renames
        )
        return ()

    # ---- queries -----------------------------------------------------------------------

    def deleted_projects(self) -> list[DeletedProject]:
        """Every soft-deleted project, the latest deletion first."""
        rows = self.store.query(
            "SELECT d.project_id, d.owner_id, o.name AS owner_name, d.title, d.deleted_at,"
            " d.deleted_by, d.position FROM {aytada_project_deletions} d"
            " LEFT JOIN {aytada_owner_names} o ON o.account_id = d.owner_id"
            " WHERE d.deleted_at IS NOT NULL ORDER BY d.position DESC"
        )
        return [
            {
                "project_id": row["project_id"],
                "owner_id": row["owner_id"],
                "owner_name": row["owner_name"],
                "title": row["title"],
                "deleted_at": row["deleted_at"],
                "deleted_by": row["deleted_by"],
                "position": int(row["position"]),
            }
            for row in rows
        ]
