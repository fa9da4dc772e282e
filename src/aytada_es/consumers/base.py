"""The stage extension point and the machinery every generation step shares."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from ..adapters.assets import AssetStore
from ..adapters.calls import CallLedger
from ..application import Studio
from ..domain.failures import FailureCode
from ..domain.project import JSON, Project
from ..domain.steps import Step
from ..domain.storable import output_problem
from ..group_commit import GroupCommit
from ..kafka.envelope import Envelope
from ..providers.base import Brief, Call, InvalidOutput, PermanentProviderError, Providers

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class StageContext:
    """What a stage may use: the event store, the asset store, the providers, the retry policy."""

    studio: Studio
    assets: AssetStore
    providers: Providers
    attempts: int = 3
    backoff_s: float = 0.5
    commits: GroupCommit | None = None
    calls: CallLedger | None = None
    # How often a step in flight checks that its request still stands (cancel, delete).
    watch_s: float = 0.5

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a (blocking) event-store query off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def once(self, key: str, fn: Callable[[Call], Awaitable[Any]]) -> Any:
        """Make a paid provider call at most once per key; a repeat gets the recorded result.

        The call is recorded before it is made and its result as soon as it returns, so a
        request redelivered after a crash finds the result (or the remote job id to resume)
        instead of paying for the call again.
        """
        ledger = self.calls
        if ledger is None or not self.providers.billed:
            return await fn(Call(key))
        recorded = await self.call(ledger.get, key)
        if recorded is not None and recorded.status == "finished":
            return recorded.result
        if recorded is None:
            await self.call(ledger.start, key, self.providers.name)

        async def record_id(external_id: str) -> None:
            await self.call(ledger.identify, key, external_id)

        call = Call(key, recorded.external_id if recorded else None, record_id)
        try:
            result = await fn(call)
        except Exception:
            await self.call(ledger.abandon, key)
            raise
        await self.call(ledger.finish, key, result)
        return result

    async def command(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a Studio command, saved together with the other stages' concurrent commands."""
        if self.commits is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await self.commits.run(fn, *args, **kwargs)

    async def while_requested(
        self, project_id: UUID, step: Step, version: int, work: Awaitable[T]
    ) -> T:
        """Await `work` while the request stands; once cancelled or deleted, abandon it.

        The work is cancelled (a local renderer's process is killed with it) and
        `StepAbandoned` raised: nothing of it is recorded, nothing charged.
        """
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.watch_s)
                if done:
                    return task.result()
                project = await self.call(self.studio.project, project_id)
                if not project.is_current(step, version):
                    raise StepAbandoned(f"{step} request v{version} of {project_id} was withdrawn")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


class StepAbandoned(Exception):
    """The request a stage works on was cancelled or its project deleted meanwhile."""


class Stage(ABC):
    """A stage consumer: reacts to some event types and issues the next command.

    To add one, subclass `Stage` (or `StepStage` for a billed generation step), give it a
    unique `name` (its consumer group is `aytada.stage.<name>`) and the event `reacts_to`,
    implement `handle`, and register it (see `consumers.registry`). The runner decodes and
    validates each message, calls `handle` at most once per successful message, commits
    only after `handle` returns, and dead-letters what it cannot decode. `handle` must be
    idempotent: the same event can arrive twice (check the project's state first).
    """

    name: ClassVar[str]
    reacts_to: ClassVar[frozenset[str]]

    @abstractmethod
    async def handle(self, envelope: Envelope, ctx: StageContext) -> None:
        """React to one event."""


@dataclass(frozen=True)
class StepOutput:
    """A step's result, the units it really used, and who made it."""

    result: JSON
    units: int


class StepStage(Stage):
    """A billed generation step: acts once per request, retries, then records success or failure."""

    step: ClassVar[Step]

    @abstractmethod
    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        """Do the generation for the project's current request."""

    async def handle(self, envelope: Envelope, ctx: StageContext) -> None:
        project = ctx.studio.cached_project(envelope.project_id, at_least=envelope.version)
        if project is None:
            project = await ctx.call(
                ctx.studio.project, envelope.project_id, at_least=envelope.version
            )
        if not project.is_current(self.step, envelope.version):
            return  # handled already (a repeated message) or superseded
        actor = f"stage:{self.name}"
        started = datetime.now(UTC)
        error, code = "", FailureCode.INTERNAL
        for attempt in range(1, ctx.attempts + 1):
            try:
                output = await ctx.while_requested(
                    project.id,
                    self.step,
                    envelope.version,
                    self.generate(project, envelope.version, ctx),
                )
                problem = output_problem(output.result, path="result")
                if problem is not None:
                    raise InvalidOutput(problem)
            except StepAbandoned:
                log.info("%s: %s v%d was withdrawn; work stopped", self.name, project.id, attempt)
                return
            except PermanentProviderError as e:
                error, code = f"{type(e).__name__}: {e}", e.failure_code
                break
            except Exception as e:
                error, code = f"{type(e).__name__}: {e}", failure_code(e)
                log.warning("%s: attempt %d of %s failed: %s", self.name, attempt, project.id, e)
                if attempt < ctx.attempts:
                    await asyncio.sleep(ctx.backoff_s * 2 ** (attempt - 1))
                continue
            generation = self._generation(ctx, output.units, started, attempt)
            await ctx.command(
                ctx.studio.complete_step,
                project.id,
                step=self.step,
                version=envelope.version,
                result=output.result,
                generation=generation,
                actor=actor,
            )
            return
        await ctx.command(
            ctx.studio.fail_step,
            project.id,
            step=self.step,
            version=envelope.version,
            code=code,
            error=error,
            generation=self._generation(ctx, 0, started, attempt),
            actor=actor,
        )

    @staticmethod
    def _generation(ctx: StageContext, units: int, started: datetime, attempts: int) -> JSON:
        return {
            "provider": ctx.providers.name,
            "units": units,
            "started_at": started,
            "finished_at": datetime.now(UTC),
            "attempts": attempts,
        }


def failure_code(error: BaseException) -> FailureCode:
    """What a person is told about an error that ended a step."""
    code = getattr(error, "failure_code", None)
    return code if isinstance(code, FailureCode) else FailureCode.INTERNAL


def call_key(project: Project, version: int, step: Step, item: str = "") -> str:
    """The idempotency key of one provider call for one request."""
    return f"{project.id}/{version}/{step.value}" + (f"/{item}" if item else "")


def brief_of(project: Project) -> Brief:
    return Brief(project.id, project.title, project.format, project.brief)


def seconds(scenes: list[JSON]) -> int:
    return math.ceil(sum(float(s.get("duration_s", 0)) for s in scenes))
