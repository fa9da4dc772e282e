"""Commands and queries over the event store: the `eventsourcing` application of aytada-es."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    project_aggregate,
)
from eventsourcing.persistence import EventStore, Mapper, RecordConflictError, Recording

from .adapters.chain import ChainedEventStore, ChainMapper
from .domain.account import Account, account_id
from .domain.credits import CreditMovement
from .domain.errors import (
    AccountExists,
    AccountNotFound,
    AytadaError,
    BadInput,
    InsufficientCredits,
    ProjectNotFound,
)
from .domain.failures import FailureCode
from .domain.project import JSON, Project
from .domain.steps import Step
from .tables import creating_tables

T = TypeVar("T")
CONFLICT_RETRIES = 8
MAX_TOKEN_DAYS = 3650


def hash_token(token: str) -> str:
    """Tokens are stored only as this hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "ayt_" + secrets.token_urlsafe(32)


def token_expiry(days: int | None) -> datetime | None:
    """When a token made now for `days` days expires (None: never)."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
        raise BadInput(
            "bad token lifetime", {"expires_in": f"a whole number of days, 1 to {MAX_TOKEN_DAYS}"}
        )
    return datetime.now(UTC) + timedelta(days=days)


@dataclass(frozen=True)
class NewToken:
    """A token just made (shown once), its account, and where its event is in the log."""

    account: Account
    token: str
    position: int


class _UnitOfWork:
    """The aggregates that a group of commands loaded and changed."""

    def __init__(self) -> None:
        self.loaded: dict[UUID, object] = {}
        self.changed: dict[UUID, Any] = {}


class Studio(Application[UUID]):
    """The event-sourced record of every project and account."""

    name = "Aytada"

    def __init__(self, env: Mapping[str, str] | None = None, *, sole_writer: bool = False) -> None:
        # A sole writer (`serve`) trusts its cache instead of reading newer events on every
        # load; should another process change an aggregate after all, the save conflicts,
        # the cached aggregates catch up with the store and the command runs again.
        env = {
            "AGGREGATE_CACHE_MAXSIZE": "5000",
            "AGGREGATE_CACHE_FASTFORWARD": "n" if sole_writer else "y",
            **(env or {}),
        }
        with creating_tables(env):
            super().__init__(env)
        self.sole_writer = sole_writer
        self._on_saved: list[Callable[[], None]] = []
        self.saved_events = 0  # by this process, for the metrics
        self._saved_lock = threading.Lock()
        self._account_locks = [threading.Lock() for _ in range(64)]
        self._local = threading.local()

    def construct_mapper(self) -> Mapper[UUID]:
        return ChainMapper(self.construct_transcoder())

    def construct_event_store(self) -> EventStore[UUID]:
        """Every stored event is sealed into its aggregate's hash chain (adapters/chain.py)."""
        return ChainedEventStore(self.mapper, self.recorder)

    def on_saved(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the saving thread) after every save in this process."""
        self._on_saved.append(listener)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        recordings = super()._record(processing_event)
        cache = self.repository.cache
        if cache is not None and self.repository.fastforward:
            # The library caches what was saved only when it does not fast-forward; a stage
            # that trusts its cache at a request's version needs its own saves in it too.
            for aggregate_id, aggregate in processing_event.aggregates.items():
                try:
                    cached: Any = cache.get(aggregate_id)
                except KeyError:
                    cached = None
                if cached is None or cached.version < aggregate.version:
                    cache.put(aggregate_id, deepcopy(aggregate))
        return recordings

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        super()._notify(recordings)
        with self._saved_lock:
            self.saved_events += len(recordings)
        for listener in self._on_saved:
            listener()

    # ---- group commit ------------------------------------------------------------------

    def run_together(self, commands: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run commands as one unit of work: one transaction, one commit for them all.

        Each command sees the aggregates the earlier ones changed. If any command raises,
        or another writer got in first every time, they are run again one by one, each
        with its own outcome, so one command's error never affects another's.
        """
        for _ in range(CONFLICT_RETRIES):
            unit = _UnitOfWork()
            self._local.unit = unit
            try:
                results = [command() for command in commands]
            except Exception:
                break
            finally:
                self._local.unit = None
            try:
                if unit.changed:
                    super().save(*unit.changed.values())
                return list(results)
            except RecordConflictError:
                self._refresh(unit.changed)
                continue
        return [self._alone(command) for command in commands]

    @staticmethod
    def _alone(command: Callable[[], T]) -> T | Exception:
        try:
            return command()
        except Exception as e:
            return e

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        unit: _UnitOfWork | None = getattr(self._local, "unit", None)
        if unit is None:
            try:
                return super().save(*objs, **kwargs)
            except RecordConflictError:
                self._refresh(aggregate.id for aggregate in objs)
                raise
        for aggregate in objs:
            unit.changed[aggregate.id] = aggregate
        return []

    def _get(self, aggregate_id: UUID, at_least: int | None = None) -> object:
        unit: _UnitOfWork | None = getattr(self._local, "unit", None)
        if unit is None:
            return self._load(aggregate_id, at_least)
        if aggregate_id not in unit.loaded:
            unit.loaded[aggregate_id] = self._load(aggregate_id, at_least)
        return unit.loaded[aggregate_id]

    def _load(self, aggregate_id: UUID, at_least: int | None) -> object:
        loaded: set[UUID] | None = getattr(self._local, "loaded", None)
        if loaded is not None:
            loaded.add(aggregate_id)
        return self._from_cache_or_store(aggregate_id, at_least)

    def cached_project(self, project_id: UUID, *, at_least: int) -> Project | None:
        """A copy of the cached project if it is at `at_least` or later; no query is made."""
        cached = self._cached(project_id, at_least)
        return cached if isinstance(cached, Project) else None

    def _cached(self, aggregate_id: UUID, at_least: int) -> object | None:
        """A copy of the cached aggregate if it is at `at_least` or later."""
        cache = self.repository.cache
        try:
            cached: Any = cache.get(aggregate_id) if cache is not None else None
        except KeyError:
            return None
        return deepcopy(cached) if cached is not None and cached.version >= at_least else None

    def _from_cache_or_store(self, aggregate_id: UUID, at_least: int | None) -> object:
        """A copy from the cache when it is at `at_least` or later; otherwise from the store.

        A stage knows the version of the request it works on: a cached project that has
        it needs no query for newer events. Should another process have saved later
        events after all, the save conflicts and the command runs again (see `_refresh`).
        """
        cached = None if at_least is None else self._cached(aggregate_id, at_least)
        return cached if cached is not None else self.repository.get(aggregate_id)

    # ---- loading -----------------------------------------------------------------------

    def project(self, project_id: UUID, *, at_least: int | None = None) -> Project:
        """Any project, deleted or not (stages, auditors, support); `at_least` as in `_load`."""
        try:
            project: object = self._get(project_id, at_least)
        except AggregateNotFoundError:
            raise ProjectNotFound(project_id) from None
        if not isinstance(project, Project):
            raise ProjectNotFound(project_id)
        return project

    def project_of(self, owner_id: UUID, project_id: UUID) -> Project:
        """A user's own, not deleted project; anything else is not found."""
        project = self.project(project_id)
        if project.owner_id != owner_id or project.deleted:
            raise ProjectNotFound(project_id)
        return project

    def account(self, account: UUID) -> Account:
        try:
            found: object = self._get(account)
        except AggregateNotFoundError:
            raise AccountNotFound(account) from None
        if not isinstance(found, Account):
            raise AccountNotFound(account)
        return found

    def account_named(self, name: str) -> Account:
        try:
            return self.account(account_id(name))
        except AccountNotFound:
            raise AccountNotFound(name) from None
        except BadInput:  # no account can have this name: its text may not even print
            raise AccountNotFound(ascii(name)) from None

    # ---- accounts ----------------------------------------------------------------------

    def open_account(
        self,
        name: str,
        *,
        role: str = "user",
        credits: int = 0,
        actor: str = "cli",
        expires_in_days: int | None = None,
    ) -> tuple[Account, str]:
        """Open an account; returns it with its token, which is never stored in clear."""
        expires_at = token_expiry(expires_in_days)
        token = new_token()
        account = Account.open(
            name=name,
            role=role,
            token_hash=hash_token(token),
            token_expires_at=expires_at,
            actor=actor,
        )
        account.grant(credits, actor=actor)
        if account.id in self.repository:
            raise AccountExists(name)
        try:
            self.save(account)
        except RecordConflictError:
            raise AccountExists(name) from None
        return account, token

    def grant_credits(self, name: str, amount: int, *, actor: str = "cli") -> Account:
        def grant() -> Account:
            account = self.account_named(name)
            account.grant(amount, actor=actor)
            self.save(account)
            return account

        return self._retrying(grant)

    def rotate_token(
        self, name: str, *, expires_in_days: int | None = None, actor: str = "cli"
    ) -> NewToken:
        """A new token for an account: the old one stops working; a disabled account works again."""
        expires_at = token_expiry(expires_in_days)
        token = new_token()

        def rotate() -> tuple[Account, int]:
            account = self.account_named(name)
            account.rotate_token(hash_token(token), token_expires_at=expires_at, actor=actor)
            return account, self._position(self.save(account))

        account, position = self._retrying(rotate)
        return NewToken(account, token, position)

    def disable_account(self, name: str, *, actor: str = "cli") -> int | None:
        """Disable an account: its token stops working until rotated.

        Returns the position of the event in the log, or None when it was disabled already.
        """

        def disable() -> int | None:
            account = self.account_named(name)
            if not account.disable(actor=actor):
                return None
            return self._position(self.save(account))

        return self._retrying(disable)

    def _position(self, recordings: Sequence[Recording[UUID]]) -> int:
        """The notification id of the last event a save stored."""
        if recordings:
            return max(r.notification.id for r in recordings)
        return self.recorder.max_notification_id() or 0  # saved with others, in a unit of work

    # ---- commands of the user ----------------------------------------------------------

    def create_project(
        self,
        owner_id: UUID,
        *,
        title: object,
        format: object,
        brief: object,
        autopilot: bool = False,
        actor: str,
    ) -> Project:
        if not isinstance(autopilot, bool):
            raise BadInput("bad autopilot", {"autopilot": "true or false"})

        def create() -> Project:
            with self._account_lock(owner_id):
                return create_locked()

        def create_locked() -> Project:
            account = self.account(owner_id)
            project = Project.create(
                owner_id=owner_id,
                title=title,
                format=format,
                brief=brief,
                autopilot=autopilot,
                actor=actor,
            )
            self._continue_autopilot(project, account, actor="autopilot")
            self.save(project, account)
            return project

        return self._retrying(create)

    def request_ideas(
        self, owner_id: UUID, project_id: UUID, *, count: int | None = None, actor: str
    ) -> Project:
        return self._command(
            owner_id, project_id, lambda p: p.request_ideas(count=count, actor=actor), actor
        )

    def request_script(
        self, owner_id: UUID, project_id: UUID, *, idea: int | None = None, actor: str
    ) -> Project:
        return self._command(
            owner_id, project_id, lambda p: p.request_script(idea=idea, actor=actor), actor
        )

    def request_scenes(self, owner_id: UUID, project_id: UUID, *, actor: str) -> Project:
        return self._command(owner_id, project_id, lambda p: p.request_scenes(actor=actor), actor)

    def request_render(self, owner_id: UUID, project_id: UUID, *, actor: str) -> Project:
        return self._command(owner_id, project_id, lambda p: p.request_render(actor=actor), actor)

    def retry(self, owner_id: UUID, project_id: UUID, *, actor: str) -> Project:
        return self._command(owner_id, project_id, lambda p: p.retry(actor=actor), actor)

    def cancel(self, owner_id: UUID, project_id: UUID, *, actor: str) -> Project:
        """Stop the project's step in flight; what it had reserved comes back."""
        return self._command(owner_id, project_id, lambda p: p.cancel(actor=actor), actor)

    def delete_project(self, owner_id: UUID, project_id: UUID, *, actor: str) -> Project:
        """Soft-delete a project, cancelling its step in flight first."""
        return self._command(owner_id, project_id, lambda p: p.delete(actor=actor), actor)

    def restore_project(self, project_id: UUID, *, actor: str) -> Project:
        def restore() -> Project:
            project = self.project(project_id)
            project.restore(actor=actor)
            self.save(project)
            return project

        return self._retrying(restore)

    def _command(
        self,
        owner_id: UUID,
        project_id: UUID,
        command: Callable[[Project], list[CreditMovement]],
        actor: str,
    ) -> Project:
        def run() -> Project:
            with self._account_lock(owner_id):
                project = self.project_of(owner_id, project_id)
                account = self.account(project.owner_id)
                movements = command(project)
                account.apply_movements(project.id, movements, actor=actor)
                self.save(project, account)
                return project

        return self._retrying(run)

    # ---- commands of the stages --------------------------------------------------------

    def record_clip(
        self, project_id: UUID, *, version: int, scene: int, asset: JSON, actor: str
    ) -> bool:
        """Record one finished clip of a render; False when the request is no longer current."""

        def run() -> bool:
            project = self.project(project_id, at_least=version)
            if not project.is_current(Step.VIDEO, version):
                return False
            project.record_clip(version=version, scene=scene, asset=asset, actor=actor)
            self.save(project)
            return True

        return self._retrying(run)

    def complete_step(
        self,
        project_id: UUID,
        *,
        step: Step,
        version: int,
        result: JSON,
        generation: JSON,
        actor: str,
    ) -> bool:
        """Record a step's success; False (and nothing saved) when it was already recorded."""

        def succeed(project: Project) -> list[CreditMovement]:
            return project.succeed(
                step=step, version=version, result=result, generation=generation, actor=actor
            )

        return self._settle_request(project_id, step, version, succeed, actor)

    def fail_step(
        self,
        project_id: UUID,
        *,
        step: Step,
        version: int,
        code: FailureCode,
        error: str,
        generation: JSON,
        actor: str,
    ) -> bool:
        """Record a step's failure after its attempts; False when no longer current."""

        def fail(project: Project) -> list[CreditMovement]:
            return project.fail(
                step=step,
                version=version,
                code=code,
                error=error,
                generation=generation,
                actor=actor,
            )

        return self._settle_request(project_id, step, version, fail, actor)

    def _settle_request(
        self,
        project_id: UUID,
        step: Step,
        version: int,
        outcome: Callable[[Project], list[CreditMovement]],
        actor: str,
    ) -> bool:
        """Record a request's outcome with its credit movements, unless already recorded."""

        def run() -> bool:
            project = self.project(project_id, at_least=version)
            if not project.is_current(step, version):
                return False
            with self._account_lock(project.owner_id):
                account = self.account(project.owner_id)
                account.apply_movements(project.id, outcome(project), actor=actor)
                self._continue_autopilot(project, account, actor="autopilot")
                self.save(project, account)
            return True

        return self._retrying(run)

    def add_assets(self, project_id: UUID, *, assets: list[JSON], actor: str) -> None:
        def run() -> None:
            project = self.project(project_id)
            project.add_assets(assets=assets, actor=actor)
            self.save(project)

        self._retrying(run)

    # ---- helpers -----------------------------------------------------------------------

    @staticmethod
    def _continue_autopilot(project: Project, account: Account, *, actor: str) -> None:
        cost = project.autopilot_cost()
        if project.autopilot_next() is None:
            return
        if cost > account.balance:
            project.pause_autopilot(
                reason=str(InsufficientCredits(cost, account.balance)), actor=actor
            )
            return
        account.apply_movements(project.id, project.continue_autopilot(actor=actor), actor=actor)

    def _account_lock(self, owner_id: UUID) -> threading.Lock:
        """Commands that save an account take turns in this process instead of conflicting."""
        return self._account_locks[owner_id.int % len(self._account_locks)]

    def _retrying(self, command: Callable[[], T]) -> T:
        """Run a command again when another writer saved first, once the cache caught up.

        A sole writer trusts its cache, so before it refuses a command it makes sure the
        refusal does not come from aggregates another process changed meanwhile.
        """
        outer = getattr(self._local, "loaded", None)
        confirmed = not self.sole_writer
        loaded = set[UUID]()
        try:
            conflicts = 0
            while True:
                self._local.loaded = loaded = set[UUID]()
                try:
                    return command()
                except RecordConflictError:
                    conflicts += 1
                    if conflicts == CONFLICT_RETRIES:
                        raise
                except AytadaError:
                    if confirmed or not self._refresh(loaded):
                        raise
                    confirmed = True
        finally:
            self._local.loaded = outer
            if outer is not None:
                outer.update(loaded)

    def _refresh(self, aggregate_ids: Iterable[UUID]) -> bool:
        """Bring cached aggregates up to date with what another writer saved since.

        Returns whether any of them had fallen behind.
        """
        cache = self.repository.cache
        behind = False
        if cache is None:
            return behind
        for aggregate_id in aggregate_ids:
            try:
                cached: Any = cache.get(aggregate_id)
            except KeyError:
                continue
            newer = list(self.events.get(aggregate_id, gt=cached.version))
            if newer:
                cache.put(aggregate_id, project_aggregate(deepcopy(cached), newer))
                behind = True
        return behind

    def event_state(self, event: Any) -> dict[str, Any]:
        """An event's own fields, without the library's bookkeeping."""
        return {
            k: v
            for k, v in vars(event).items()
            if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
        }
