"""What a stage may use while it handles a message: the studio, assets, providers, paid calls."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar
from uuid import UUID

from ..adapters.acts import StageActs
from ..adapters.assets import AssetStore
from ..adapters.calls import CallLedger
from ..adapters.sql import SQLStore
from ..application import Studio
from ..domain.project import JSON, Project
from ..group_commit import GroupCommit
from ..kafka.envelope import Envelope
from ..projections.open_steps import OpenSteps
from ..providers.base import Call, PermanentProviderError, Providers

P = ParamSpec("P")
T = TypeVar("T")
# A request stored this recently is live, not republished (see `StageContext.settled`).
LIVE = timedelta(seconds=10)


class StepAbandoned(Exception):
    """The request a stage works on was cancelled or its project deleted meanwhile."""


@dataclass(frozen=True)
class StageContext:
    """What a stage may use: the event store, the asset store, the providers, paid calls.

    The runner gives each attempt its own context: `attempt` counts from 1, and
    `first_attempt_at` is when the first one began.
    """

    studio: Studio
    assets: AssetStore
    providers: Providers
    commits: GroupCommit | None = None
    calls: CallLedger | None = None
    acts: StageActs | None = None
    # The requests in flight: lets a step pass over a settled request without loading it.
    open_steps: OpenSteps | None = None
    # How often work in flight checks that its request still stands (cancel, delete).
    watch_s: float = 0.5
    attempt: int = 1
    first_attempt_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))

    def retrying(self, attempt: int, first_attempt_at: datetime) -> StageContext:
        """The context of another attempt at the same message."""
        return dataclasses.replace(self, attempt=attempt, first_attempt_at=first_attempt_at)

    def generation(self, stage_version: str, units: int) -> JSON:
        """The generation record of this attempt: by whom, how much, after how many tries."""
        return {
            "provider": self.providers.name,
            "stage_version": stage_version,
            "units": units,
            "started_at": self.first_attempt_at,
            "finished_at": datetime.now(UTC),
            "attempts": self.attempt,
        }

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking work (a query, an encoder, file I/O) in a thread, off the event loop."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def command(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a Studio command, saved together with the other stages' concurrent commands."""
        if self.commits is None:
            return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
        result: T = await self.commits.run(fn, *args, **kwargs)
        return result

    async def project(self, project_id: UUID, *, at_least: int) -> Project:
        """The project at `at_least` or later: from this process's cache when it has it."""
        cached = self.studio.cached_project(project_id, at_least=at_least)
        if cached is not None:
            return cached
        return await self.call(self.studio.project, project_id, at_least=at_least)

    async def settled(self, envelope: Envelope, step: str) -> bool:
        """Whether the request `envelope` carries is settled already, without loading the project.

        False when it cannot tell (no `open_steps`, or that read model has not applied the
        request yet), and at once for a request stored in the last `LIVE`: that one is live
        (rarely settled, and the stage needs the project anyway), so asking would only add a
        query to every step of the pipeline. An older one may be a republished request.
        """
        if self.open_steps is None:
            return False
        stored_at = envelope.occurred_at
        if stored_at.tzinfo is not None and datetime.now(UTC) - stored_at < LIVE:
            return False
        known = self.open_steps.known_settled(
            envelope.project_id, step, envelope.version, envelope.position
        )
        if known:  # no query, no thread: a replay's window asks about thousands
            return True
        return await self.call(
            self.open_steps.settled,
            envelope.project_id,
            step,
            envelope.version,
            envelope.position,
        )

    async def project_at(self, project_id: UUID, version: int) -> Project:
        """The project exactly as its event `version` left it (what changed: compare with
        `version - 1`); read from the store, never the cache."""

        def load() -> Project:
            project: object = self.studio.repository.get(project_id, version=version)
            assert isinstance(project, Project)
            return project

        return await self.call(load)

    async def history(self, project_id: UUID, *, after: int = 0) -> list[Project.Event]:
        """Every stored event of the project after version `after`, oldest first.

        Read from the event store, the source of truth: the topics hold only their retention
        window (AYTADA_TOPIC_RETENTION) and the active projects' events, so a stage that needs
        older events of a project reads them here, not from Kafka.
        """

        def load() -> list[Project.Event]:
            events = self.studio.events.get(project_id, gt=after or None)
            return [e for e in events if isinstance(e, Project.Event)]

        return await self.call(load)

    def database(self) -> SQLStore:
        """The event store's own database, for tables of a stage's own (adapters/sql.py):
        create them with `store.create(ddl)`, query and write with `?` placeholders and table
        names in braces; the same statements run on SQLite and PostgreSQL. Blocking: use it
        through `call`."""
        return SQLStore.of(self.studio)

    async def store_asset(self, content: bytes, *, kind: str, content_type: str) -> JSON:
        """Store a file (once, by its hash) and return the record an event carries."""
        return await self.call(self.assets.put, content, kind=kind, content_type=content_type)

    async def once(self, key: str, fn: Callable[[Call], Awaitable[T]]) -> T:
        """Make a paid provider call at most once per key; a repeat gets the recorded result.

        The call is recorded before it is made and its result as soon as it returns, so a
        request redelivered after a crash finds the result (or the remote job id to resume)
        instead of paying for the call again. A call that fails for good starts afresh next
        time; one that may succeed later keeps its remote job id, so a retry resumes it.
        """
        ledger = self.calls
        if ledger is None or not self.providers.billed:
            return await fn(Call(key))
        recorded = await self.call(ledger.get, key)
        if recorded is not None and recorded.status == "finished":
            result: T = recorded.result
            return result
        if recorded is None:
            await self.call(ledger.start, key, self.providers.name)

        async def record_id(external_id: str) -> None:
            await self.call(ledger.identify, key, external_id)

        call = Call(key, recorded.external_id if recorded else None, record_id)
        try:
            result = await fn(call)
        except PermanentProviderError:
            await self.call(ledger.abandon, key)
            raise
        await self.call(ledger.finish, key, result)
        return result

    async def act_once(
        self, stage: str, envelope: Envelope, act: Callable[[], Awaitable[object]]
    ) -> bool:
        """Run `act` unless `stage` acted on this event (its project and version) before.

        For stages that are not billed (a billed `AddOnStage` acts once per trigger anyway).
        The act is recorded once `act` returns, so the same event delivered again (the relay
        republishes the log after a restart) is passed over: False. An `act` that raised is
        not recorded and runs again at the next attempt; a crash between `act` and its record
        runs it again too, so keep its command idempotent as well.
        """
        acts = self.acts
        if acts is None:
            acts = await self.call(StageActs.of, self.studio)
        if await self.call(acts.acted, stage, envelope.project_id, envelope.version):
            return False
        await act()
        await self.call(acts.record, stage, envelope.project_id, envelope.version)
        return True

    async def while_current(
        self, still_wanted: Callable[[Project], bool], project_id: UUID, work: Awaitable[T]
    ) -> T:
        """Await `work` while the project still wants it; once it does not, abandon it.

        Every `watch_s` the project is read from the store: when `still_wanted` says no (the
        step was cancelled, the project deleted) the work is cancelled (a local renderer's
        process is killed with it) and `StepAbandoned` raised: nothing of it is recorded.
        """
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.watch_s)
                if done:
                    return task.result()
                project = await self.call(self.studio.project, project_id)
                if not still_wanted(project):
                    raise StepAbandoned(f"the work on {project_id} is no longer wanted")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
