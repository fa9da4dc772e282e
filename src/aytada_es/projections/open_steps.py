"""The steps waiting for their stage, with when each was requested: what the deadlines watch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from ..adapters.sql import Transaction
from ..domain.project import Project
from ..domain.steps import SPECS
from .base import CardChange, DomainEvent, Projection

OPEN_STEPS = "aytada_open_steps"
_PIPELINE = tuple(step.value for step in SPECS)
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
    )

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        project_id = str(event.originator_id)
        if isinstance(event, Project.StepRequested):
            self._close_pipeline(tx, project_id)
            self._open(tx, project_id, event.STEP.value, event)
        elif isinstance(event, _SETTLED):
            self._close_pipeline(tx, project_id)
        elif isinstance(event, Project.AddOnRequested):
            self._open(tx, project_id, event.step, event)
        elif isinstance(event, Project.AddOnCompleted | Project.AddOnFailed):
            tx.execute(
                "DELETE FROM {aytada_open_steps} WHERE project_id = ? AND step = ?",
                (project_id, event.step),
            )
        elif isinstance(event, Project.ProjectDeleted):
            tx.execute("DELETE FROM {aytada_open_steps} WHERE project_id = ?", (project_id,))
        return ()

    @staticmethod
    def _open(tx: Transaction, project_id: str, step: str, event: DomainEvent) -> None:
        tx.upsert(
            OPEN_STEPS,
            "project_id, step",
            [
                {
                    "project_id": project_id,
                    "step": step,
                    "version": event.originator_version,
                    "requested_at": event.timestamp.timestamp(),  # type: ignore[attr-defined]
                }
            ],
        )

    @staticmethod
    def _close_pipeline(tx: Transaction, project_id: str) -> None:
        marks = ",".join("?" * len(_PIPELINE))
        tx.execute(
            f"DELETE FROM {{{OPEN_STEPS}}} WHERE project_id = ? AND step IN ({marks})",  # noqa: S608
            (project_id, *_PIPELINE),
        )

    # ---- queries -----------------------------------------------------------------------

    def overdue(
        self, cutoffs: Mapping[str, float | None], default_cutoff: float | None, limit: int = 100
    ) -> list[OpenStep]:
        """Requests made before their step's cutoff (seconds since the epoch), oldest first.

        `cutoffs` gives the steps with a cutoff of their own (None: no deadline); every other
        step has `default_cutoff`. One indexed range per step: the rows young enough are never
        read.
        """
        clauses: list[str] = []
        params: list[object] = []
        for step, cutoff in cutoffs.items():
            if cutoff is not None:
                clauses.append("(step = ? AND requested_at < ?)")
                params += [step, cutoff]
        if default_cutoff is not None:
            marks = ",".join("?" * len(cutoffs))
            others = f"step NOT IN ({marks}) AND " if cutoffs else ""
            clauses.append(f"({others}requested_at < ?)")
            params += [*cutoffs, default_cutoff]
        if not clauses:
            return []
        rows = self.store.query(
            "SELECT project_id, step, version, requested_at FROM {aytada_open_steps}"  # noqa: S608
            f" WHERE {' OR '.join(clauses)} ORDER BY requested_at LIMIT ?",
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
