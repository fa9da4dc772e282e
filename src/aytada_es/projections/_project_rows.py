"""The project rows (owner, deleted flag, ...) a read model keeps beside its own, per batch."""

from __future__ import annotations

from typing import Any

from ..adapters.sql import Row, Transaction
from ..domain.project import Project
from .base import Batch, aggregate_id


class ProjectRows:
    """Loads the rows a batch needs in one query, changes them in memory, writes them once."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._rows: dict[str, Row] = {}
        self._touched: set[str] = set()

    def load(self, tx: Transaction, batch: Batch, needed_by: tuple[type[Any], ...]) -> None:
        """Read the rows of the projects whose events of these types are in the batch."""
        wanted = {aggregate_id(event) for _, event in batch if isinstance(event, needed_by)}
        self._rows = {
            row["project_id"]: row for row in tx.rows_with(self.table, "project_id", wanted)
        }
        self._touched = set()

    def created(self, project_id: str, row: Row) -> None:
        self._rows[project_id] = {"project_id": project_id, **row, "deleted": 0}
        self._touched.add(project_id)

    def mark(self, event: Project.ProjectDeleted | Project.ProjectRestored) -> None:
        project_id = aggregate_id(event)
        self.of(project_id, event)["deleted"] = int(isinstance(event, Project.ProjectDeleted))
        self._touched.add(project_id)

    def rename(self, event: Project.ProjectRenamed) -> None:
        project_id = aggregate_id(event)
        self.of(project_id, event)["title"] = event.title
        self._touched.add(project_id)

    def of(self, project_id: str, event: Project.Event) -> Row:
        found = self._rows.get(project_id)
        if found is None:
            raise LookupError(f"{type(event).__name__} of project {project_id}, never created")
        return found

    def save(self, tx: Transaction) -> None:
        tx.upsert(self.table, "project_id", [self._rows[id] for id in self._touched])
        self._rows, self._touched = {}, set()
