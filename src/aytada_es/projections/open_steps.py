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
        # For the steps without a deadline of their own (another process's add-ons).
        "CREATE INDEX IF NOT EXISTS aytada_open_steps_by_age ON {aytada_open_steps} (requested_at)",
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
