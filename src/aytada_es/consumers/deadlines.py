"""The deadline watcher: fails steps still active past their deadline with `timed_out`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from uuid import UUID

from .._waiting import in_thread, wait_or_timeout
from ..application import Studio
from ..domain.deadlines import Deadlines
from ..domain.errors import AytadaError
from ..domain.steps import SPECS
from ..projections.open_steps import OpenStep, OpenSteps

log = logging.getLogger(__name__)
# How often the watcher looks for overdue steps: a step fails at most this long after its
# deadline (plus the lag of the `open_steps` read model).
CHECK_S = 1.0
ACTOR = "deadline"
# Overdue requests read per query.
PAGE = 100


class DeadlineWatcher:
    """Finds requests past their step's deadline in `open_steps` and times them out.

    It needs no stage to be alive: it reads the read model and saves through the Studio. Several
    processes may watch at once; the project's optimistic concurrency lets one of them win.
    The stage still working on a timed-out request abandons it (`StageContext.while_current`).
    """

    def __init__(
        self,
        studio: Studio,
        open_steps: OpenSteps,
        deadlines: Deadlines,
        *,
        add_ons: frozenset[str] = frozenset(),
        check_s: float = CHECK_S,
        clock: Callable[[], float] = time.time,
        timed_out: Callable[[str], None] = lambda step: None,
    ) -> None:
        self.studio = studio
        self.open_steps = open_steps
        self.deadlines = deadlines
        self.steps = (*(s.value for s in SPECS), *sorted(add_ons))
        self.check_s = check_s
        self.clock = clock
        self.timed_out = timed_out  # called once per step this watcher timed out
        self._settled: set[tuple[UUID, str, int]] = set()

    def overdue(self, after: OpenStep | None = None) -> list[OpenStep]:
        """A page of the requests past their deadline now, oldest first."""
        now = self.clock()
        cutoffs = {step: self._cutoff(self.deadlines.of(step), now) for step in self.steps}
        default = self._cutoff(self.deadlines.default_s, now)
        return self.open_steps.overdue(cutoffs, default, after=after, limit=PAGE)

    def check(self) -> int:
        """Time out every overdue request; how many this call failed (blocking).

        A request found settled is passed over without loading its project again while the
        read model still lists it (it lags, or it is stopped).
        """
        failed = 0
        listed: set[tuple[UUID, str, int]] = set()
        page = self.overdue()
        while page:
            for open_step in page:
                key = (open_step.project_id, open_step.step, open_step.version)
                listed.add(key)
                if key not in self._settled and self._time_out(open_step):
                    failed += 1
            page = self.overdue(after=page[-1]) if len(page) == PAGE else []
        self._settled &= listed
        return failed

    def _time_out(self, open_step: OpenStep) -> bool:
        after_s = self.deadlines.of(open_step.step) or 0.0
        try:
            timed_out = self.studio.time_out(
                open_step.project_id,
                step=open_step.step,
                version=open_step.version,
                after_s=after_s,
                actor=ACTOR,
            )
        except AytadaError:
            # One project refusing (a row about a project gone from the store) must not
            # keep the watcher from the others.
            log.exception("could not time out %s of %s", open_step.step, open_step.project_id)
            return False
        # Timed out now or settled before: either way that request never waits again.
        self._settled.add((open_step.project_id, open_step.step, open_step.version))
        if timed_out:
            self.timed_out(open_step.step)
            log.info(
                "%s of project %s timed out after %g s",
                open_step.step,
                open_step.project_id,
                after_s,
            )
        return timed_out

    async def run(self, stop: asyncio.Event) -> None:
        """Check every `check_s` until `stop` is set."""
        while not stop.is_set():
            await in_thread(self.check)
            await wait_or_timeout(stop, self.check_s)

    @staticmethod
    def _cutoff(deadline_s: float | None, now: float) -> float | None:
        return None if not deadline_s else now - deadline_s
