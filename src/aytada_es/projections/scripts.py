"""My Scripts: every script ever generated for a user's projects, regenerations included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict
from uuid import UUID

from ..adapters.sealed_text import ERASED, each_string
from ..adapters.sql import Row, SQLStore, Transaction, from_json, to_json
from ..domain.project import Project
from ._project_rows import ProjectRows
from .base import Batch, CardChange, DomainEvent, Projection, aggregate_id, chunks
from .videos import _shown, _sortable

SCRIPTS = "aytada_scripts"
# Each project's owner, title, format and deleted flag: a script event names none of them.
PROJECTS = "aytada_script_projects"


class ScriptView(TypedDict):
    """One script as My Scripts lists it."""

    id: str
    project_id: str
    project_title: str
    format: str
    title: str | None
    text: str
    words: int
    idea: dict[str, Any] | None
    created_at: str


class MyScripts(Projection):
    """One row per generated script, hidden while its project is soft-deleted."""

    name = "scripts"
    tables = (SCRIPTS, PROJECTS)
    events = (
        Project.ProjectCreated,
        Project.ScriptGenerated,
        Project.ProjectDeleted,
        Project.ProjectRestored,
        Project.ProjectRenamed,
    )
    personal = {
        PROJECTS: ("project_id", ("title",)),
        SCRIPTS: ("project_id", ("project_title", "title", "text")),
    }
    reads = {
        "ProjectCreated": ("title",),
        "ProjectRenamed": ("title",),
        "ScriptGenerated": ("script",),
    }

    def erase(self, tx: Transaction, project_ids: Sequence[str]) -> None:
        super().erase(tx, project_ids)
        for chunk in chunks(project_ids):
            marks = ",".join("?" * len(chunk))
            rows = tx.query(
                f"SELECT id, idea FROM {{aytada_scripts}} WHERE project_id IN ({marks})"  # noqa: S608
                " AND idea IS NOT NULL",
                chunk,
            )
            erased = [
                (to_json(each_string(from_json(r["idea"]), lambda _: ERASED)), r["id"])
                for r in rows
            ]
            tx.executemany("UPDATE {aytada_scripts} SET idea = ? WHERE id = ?", erased)

    ddl = (
        """CREATE TABLE IF NOT EXISTS {aytada_script_projects} (
            project_id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            title TEXT NOT NULL,
            format TEXT NOT NULL,
            deleted INTEGER NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS {aytada_scripts} (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            owner_id TEXT NOT NULL,
            project_title TEXT NOT NULL,
            format TEXT NOT NULL,
            title TEXT,
            text TEXT NOT NULL,
            words INTEGER NOT NULL,
            idea TEXT,
            idea_index INTEGER,
            created_at TEXT NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_scripts_by_owner"
        " ON {aytada_scripts} (owner_id, created_at, position)",
    )

    def __init__(self, store: SQLStore) -> None:
        super().__init__(store)
        self._projects = ProjectRows(PROJECTS)
        self._scripts: list[Row] = []
        self._renamed: dict[str, str] = {}  # project id -> its latest title in the batch

    def begin(self, tx: Transaction, batch: Batch) -> None:
        needed_by = (
            Project.ScriptGenerated,
            Project.ProjectDeleted,
            Project.ProjectRestored,
            Project.ProjectRenamed,
        )
        self._projects.load(tx, batch, needed_by)
        self._scripts, self._renamed = [], {}

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if not isinstance(event, Project.Event):
            return ()
        id = aggregate_id(event)
        if isinstance(event, Project.ProjectCreated):
            self._projects.created(
                id, {"owner_id": str(event.owner_id), "title": event.title, "format": event.format}
            )
        elif isinstance(event, Project.ScriptGenerated):
            self._scripts.append(_script(self._projects.of(id, event), position, event))
        elif isinstance(event, (Project.ProjectDeleted, Project.ProjectRestored)):
            self._projects.mark(event)
        elif isinstance(event, Project.ProjectRenamed):
            self._projects.rename(event)
            self._renamed[id] = event.title
        return ()

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        self._projects.save(tx)
        if self._scripts:
            columns = list(self._scripts[0])
            tx.executemany(
                f"INSERT INTO {{{SCRIPTS}}} ({', '.join(columns)})"  # noqa: S608 (our names)
                f" VALUES ({','.join('?' * len(columns))})",
                ([script[c] for c in columns] for script in self._scripts),
            )
        # Scripts written before a rename (in earlier batches or this one) show the new title.
        tx.executemany(
            "UPDATE {aytada_scripts} SET project_title = ? WHERE project_id = ?",
            [(title, id) for id, title in self._renamed.items()],
        )
        self._scripts, self._renamed = [], {}
        return ()

    # ---- queries -----------------------------------------------------------------------

    def scripts_of(self, owner_id: UUID | str) -> list[ScriptView]:
        """The owner's scripts of projects not deleted, newest first."""
        rows = self.store.query(
            "SELECT s.* FROM {aytada_scripts} s"
            " JOIN {aytada_script_projects} p ON p.project_id = s.project_id"
            " WHERE s.owner_id = ? AND p.deleted = 0"
            " ORDER BY s.created_at DESC, s.position DESC",
            (str(owner_id),),
        )
        return [_view(row) for row in rows]


def _script(project: Row, position: int, event: Project.ScriptGenerated) -> Row:
    script = event.script
    text = str(script.get("text") or "")
    words = script.get("words")
    idea = script.get("idea")
    idea_index = script.get("idea_index")
    return {
        "id": f"{project['project_id']}:{event.originator_version}",
        "project_id": project["project_id"],
        "owner_id": project["owner_id"],
        "project_title": project["title"],
        "format": project["format"],
        "title": None if script.get("title") is None else str(script["title"]),
        "text": text,
        "words": words if isinstance(words, int) else len(text.split()),
        "idea": to_json(idea) if isinstance(idea, dict) else None,
        "idea_index": idea_index if isinstance(idea_index, int) else None,
        "created_at": _sortable(event.timestamp),
        "position": position,
    }


def _view(row: Row) -> ScriptView:
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "project_title": row["project_title"],
        "format": row["format"],
        "title": row["title"],
        "text": row["text"],
        "words": int(row["words"]),
        "idea": from_json(row["idea"]),
        "created_at": _shown(row["created_at"]),
    }
