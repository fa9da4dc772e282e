"""What plain stages acted on: one row per stage and event, so a repeated event is passed over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from .sql import SQLStore

DDL = [
    "CREATE TABLE IF NOT EXISTS {aytada_stage_acts} ("
    " stage TEXT NOT NULL,"
    " project_id TEXT NOT NULL,"
    " version BIGINT NOT NULL,"
    " acted_at TEXT NOT NULL,"
    " PRIMARY KEY (stage, project_id, version))"
]


class StageActs:
    """The events (project, version) each stage acted on, in the event store's own database."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        store.create(DDL)

    @classmethod
    def of(cls, application: Application[Any]) -> StageActs:
        return cls(SQLStore.of(application))

    def acted(self, stage: str, project_id: UUID, version: int) -> bool:
        rows = self.store.query(
            "SELECT 1 AS acted FROM {aytada_stage_acts}"
            " WHERE stage = ? AND project_id = ? AND version = ?",
            (stage, str(project_id), version),
        )
        return bool(rows)

    def record(self, stage: str, project_id: UUID, version: int) -> None:
        self.store.execute(
            "INSERT INTO {aytada_stage_acts} (stage, project_id, version, acted_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (stage, project_id, version) DO NOTHING",
            (stage, str(project_id), version, datetime.now(UTC).isoformat()),
        )
