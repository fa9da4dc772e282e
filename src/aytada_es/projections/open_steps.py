"""The steps waiting for their stage, with when each was requested: what the deadlines watch."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar
from uuid import UUID

from ..adapters.sql import Row, SQLStore, Transaction
from ..domain.project import Project
from ..domain.steps import SPECS
from .base import Batch, CardChange, DomainEvent, Projection, aggregate_id

OPEN_STEPS = "aytada_open_steps"
# How often `settled` may read every open request at once.
_SNAPSHOT_S = 1.0
_PIPELINE = tuple(step.value for step in SPECS)
# What a batch removed of a project's rows from before it.
_PIPELINE_ROWS, _ALL = "pipeline", "all"
_SETTLED = (
    Project.IdeasGenerated,
    Project.ScriptGenerated,
    Project.ScenesGenerated,
    Project.VideoGenerated,
    Project.VoiceoverGenerated,
    Project.VideoStitched,
    Project.StepFailed,
    Project.StepCancelled,
)


@dataclass(frozen=True)
class _Snapshot:
    """Every open request, as this read model had them at `position`."""

    position: int
    open: dict[tuple[str, str], int]  # (project id, step) -> the version of its request
    taken: float  # time.monotonic()


@dataclass(frozen=True)
class OpenStep:
    """A request still waiting for its stage: the project's step, or one of its add-ons."""

    project_id: UUID
    step: str
    version: int
    requested_at: float  # seconds since the epoch


class OpenSteps(Projection):
    """One row per request in flight (a project's pipeline step, each add-on), gone once settled.

    The project decides (`Studio.time_out` checks the request is still current), so a row this
    read model has not removed yet costs one look at the project, never a wrong failure.
    """

    name = "open_steps"
    tables = (OPEN_STEPS,)
    ddl = (
        """CREATE TABLE IF NOT EXISTS {aytada_open_steps} (
            project_id TEXT NOT NULL,
            step TEXT NOT NULL,
            version BIGINT NOT NULL,
            requested_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (project_id, step)
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_open_steps_by_step_and_age"
        " ON {aytada_open_steps} (step, requested_at)",
        # For the steps without a deadline of their own (another process's add-ons).
        "CREATE INDEX IF NOT EXISTS aytada_open_steps_by_age ON {aytada_open_steps} (requested_at)",
    )

    events = (
        Project.StepRequested,
        *_SETTLED,
        Project.AddOnRequested,
        Project.AddOnCompleted,
        Project.AddOnFailed,
        Project.ProjectDeleted,
    )
    reads: ClassVar[dict[str, tuple[str, ...]]] = {
        "IdeasGenerated": (),
        "ScriptGenerated": (),
        "ScenesGenerated": (),
    }

    def __init__(self, store: SQLStore) -> None:
        super().__init__(store)
        # What the batch did, written once in `flush`: each project's rows from before the
        # batch that it removed (its pipeline step's, or all of them when it was deleted), and
        # the last state of each request it touched (a row to write, or None: removed).
        self._wiped: dict[str, str] = {}
        self._rows: dict[tuple[str, str], Row | None] = {}
        self._steps: dict[str, set[str]] = {}
        # For `settled`, not the batches: every open request at once, taken at most every
        # _SNAPSHOT_S when asked about a later request (a replay asks about thousands).
        self._snapshot: _Snapshot | None = None

    def begin(self, tx: Transaction, batch: Batch) -> None:
        self._wiped, self._rows, self._steps = {}, {}, {}

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        project_id = aggregate_id(event)
        if isinstance(event, Project.StepRequested):
            self._close_pipeline(project_id)
            self._open(project_id, event.STEP.value, event)
        elif isinstance(event, _SETTLED):
            self._close_pipeline(project_id)
        elif isinstance(event, Project.AddOnRequested):
            self._open(project_id, event.step, event)
        elif isinstance(event, (Project.AddOnCompleted, Project.AddOnFailed)):
            self._set(project_id, event.step, None)
        elif isinstance(event, Project.ProjectDeleted):
            for step in self._steps.get(project_id, ()):
                self._rows[(project_id, step)] = None
            self._wiped[project_id] = _ALL
        return ()

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        marks = ",".join("?" * len(_PIPELINE))
        tx.executemany(
            f"DELETE FROM {{{OPEN_STEPS}}} WHERE project_id = ? AND step IN ({marks})",  # noqa: S608
            [(id, *_PIPELINE) for id, wiped in self._wiped.items() if wiped == _PIPELINE_ROWS],
        )
        tx.executemany(
            "DELETE FROM {aytada_open_steps} WHERE project_id = ?",
            [(id,) for id, wiped in self._wiped.items() if wiped == _ALL],
        )
        tx.executemany(
            "DELETE FROM {aytada_open_steps} WHERE project_id = ? AND step = ?",
            [key for key, row in self._rows.items() if row is None],
        )
        tx.upsert(
            OPEN_STEPS, "project_id, step", [row for row in self._rows.values() if row is not None]
        )
        self._wiped, self._rows, self._steps = {}, {}, {}
        return ()

    def _open(self, project_id: str, step: str, event: DomainEvent) -> None:
        row = {
            "project_id": project_id,
            "step": step,
            "version": event.originator_version,
            "requested_at": event.timestamp.timestamp(),  # type: ignore[attr-defined]
        }
        self._set(project_id, step, row)

    def _set(self, project_id: str, step: str, row: Row | None) -> None:
        self._rows[(project_id, step)] = row
        self._steps.setdefault(project_id, set()).add(step)

    def _close_pipeline(self, project_id: str) -> None:
        for step in _PIPELINE:
            if (project_id, step) in self._rows:
                self._rows[(project_id, step)] = None
        if self._wiped.get(project_id) != _ALL:
            self._wiped[project_id] = _PIPELINE_ROWS

    # ---- queries -----------------------------------------------------------------------

    def overdue(
        self,
        cutoffs: Mapping[str, float | None],
        default_cutoff: float | None,
        *,
        after: OpenStep | None = None,
        limit: int = 100,
    ) -> list[OpenStep]:
        """Requests made before their step's cutoff (seconds since the epoch), oldest first.

        `cutoffs` gives the steps with a cutoff of their own (None: no deadline); every other
        step has `default_cutoff`. `after`: the last one of the previous page. One indexed range
        per step (and one over the request times for the others): young rows are never read.
        """
        branches: list[str] = []
        params: list[object] = []
        cursor, cursor_params = "", []
        if after is not None:
            cursor = " AND (requested_at, project_id, step) > (?, ?, ?)"
            cursor_params = [after.requested_at, str(after.project_id), after.step]
        columns = "SELECT project_id, step, version, requested_at FROM {aytada_open_steps}"
        for step, cutoff in cutoffs.items():
            if cutoff is not None:
                branches.append(f"{columns} WHERE step = ? AND requested_at < ?{cursor}")
                params += [step, cutoff, *cursor_params]
        if default_cutoff is not None:
            marks = ",".join("?" * len(cutoffs))
            others = f" AND step NOT IN ({marks})" if cutoffs else ""
            branches.append(f"{columns} WHERE requested_at < ?{others}{cursor}")
            params += [default_cutoff, *cutoffs, *cursor_params]
        if not branches:
            return []
        rows = self.store.query(
            f"SELECT * FROM ({' UNION ALL '.join(branches)}) AS due"  # noqa: S608 (our names)
            " ORDER BY requested_at, project_id, step LIMIT ?",
            (*params, limit),
        )
        return [
            OpenStep(
                UUID(row["project_id"]),
                row["step"],
                int(row["version"]),
                float(row["requested_at"]),
            )
            for row in rows
        ]

    def settled(self, project_id: UUID, step: str, version: int, position: int) -> bool:
        """Whether the request made at `version` (notification `position`) is settled already.

        True only when this read model has applied `position` and holds no row of that request:
        a request it has not seen yet is never called settled. One statement reads the position
        and the rows together, so a rebuild of the read model meanwhile cannot mislead it.
        """
        if self.known_settled(project_id, step, version, position):
            return True
        snapshot = self._snapshot
        if snapshot is None or (
            snapshot.position < position and time.monotonic() - snapshot.taken >= _SNAPSHOT_S
        ):
            self._snapshot = self._take_snapshot()
            if self.known_settled(project_id, step, version, position):
                return True
        rows = self.store.query(
            "SELECT (SELECT position FROM {aytada_positions} WHERE name = ?) AS position,"
            " (SELECT version FROM {aytada_open_steps} WHERE project_id = ? AND step = ?)"
            " AS version",
            (self.name, str(project_id), str(step)),
        )
        applied, open_version = rows[0]["position"], rows[0]["version"]
        if applied is None or int(applied) < position:
            return False
        return open_version is None or int(open_version) != version

    def known_settled(self, project_id: UUID, step: str, version: int, position: int) -> bool:
        """`settled` as far as the last snapshot of every open request tells, without a query.

        A request settled once stays settled: a snapshot that applied `position` and holds
        another version or none says so for good. False: it cannot tell.
        """
        snapshot = self._snapshot
        if snapshot is None or snapshot.position < position:
            return False
        return snapshot.open.get((str(project_id), str(step))) != version

    def _take_snapshot(self) -> _Snapshot:
        # One statement: the position and the rows as of the same moment (PostgreSQL's READ
        # COMMITTED gives each statement a snapshot of its own).
        rows = self.store.query(
            "SELECT position, NULL AS project_id, NULL AS step, NULL AS version"
            " FROM {aytada_positions} WHERE name = ?"
            " UNION ALL SELECT NULL, project_id, step, version FROM {aytada_open_steps}",
            (self.name,),
        )
        position, open_ = 0, {}
        for row in rows:
            if row["project_id"] is None:
                position = int(row["position"])
            else:
                open_[(row["project_id"], row["step"])] = int(row["version"])
        return _Snapshot(position, open_, time.monotonic())

    def active(self) -> tuple[int, set[UUID]]:
        """The position this read model has applied, then the projects with a request in flight.

        Read in that order: a request it applies meanwhile is in the rows or after the position.
        """
        rows = self.store.query(
            "SELECT position FROM {aytada_positions} WHERE name = ?", (self.name,)
        )
        position = int(rows[0]["position"]) if rows else 0
        projects = self.store.query("SELECT DISTINCT project_id FROM {aytada_open_steps}")
        return position, {UUID(row["project_id"]) for row in projects}
