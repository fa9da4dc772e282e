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
    LRUCache,
    ProcessingEvent,
    Repository,
    project_aggregate,
)
from eventsourcing.persistence import (
    EventStore,
    Mapper,
    RecordConflictError,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from .adapters.aggregate_cache import NewestCache
from .adapters.chain import ChainedEventStore, ChainMapper
from .adapters.sealed_text import ERASED, SealedTextMapper
from .adapters.sql import SQLStore
from .adapters.stored_json import StoredJSON
from .adapters.text_keys import TextKeys
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
from .domain.steps import SPECS, Price, Step
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


class UnitOfWork:
    """What one command, or a group of them, loaded and changed: saved together, once.

    Commands never save: they hand what they changed to their unit (`unit.keep(...)`); the
    `Studio` commits the unit, in one transaction, once the command (or every command of a
    group commit) has run, and records where its events landed in the log.
    """

    def __init__(self) -> None:
        self.loaded: dict[UUID, object] = {}
        self.changed: dict[UUID, Any] = {}
        self.positions: list[int] = []

    def keep(self, *aggregates: Any) -> None:
        """Save these aggregates' new events when the unit is committed."""
        for aggregate in aggregates:
            self.changed[aggregate.id] = aggregate

    @property
    def position(self) -> int | None:
        """Where the unit's last event landed in the log, once committed (None: nothing saved)."""
        return max(self.positions, default=None)


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
        try:
            store: SQLStore | None = SQLStore.of(self)
        except TypeError:
            store = None  # an in-memory store: keys in memory too
        self.text_keys = TextKeys(store)
        assert isinstance(self.mapper, SealedTextMapper)
        self.mapper.attach(self.text_keys, self.recorder)
        # What leaves the store (the relay's envelopes) keeps personal text sealed.
        self.sealed_mapper = ChainMapper(self.mapper.transcoder)
        self.sole_writer = sole_writer
        self._on_saved: list[Callable[[], None]] = []
        self.saved_events = 0  # by this process, for the metrics
        self._saved_lock = threading.Lock()
        self._account_locks = [threading.Lock() for _ in range(64)]
        self._local = threading.local()

    def construct_mapper(self) -> Mapper[UUID]:
        return SealedTextMapper(self.construct_transcoder())

    def construct_transcoder(self) -> StoredJSON:
        transcoder = StoredJSON()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_repository(self) -> Repository[UUID]:
        repository = super().construct_repository()
        if isinstance(repository.cache, LRUCache):
            repository.cache = NewestCache(repository.cache.maxsize)
        return repository

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

    # ---- units of work -----------------------------------------------------------------

    def run_together(self, commands: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run commands as one unit of work: one transaction, one commit for them all.

        Each command sees the aggregates the earlier ones changed. If any command raises,
        or another writer got in first every time, they are run again one by one, each
        with its own outcome, so one command's error never affects another's.
        """
        for _ in range(CONFLICT_RETRIES):
            unit = UnitOfWork()
            self._local.unit = unit
            try:
                results = [command() for command in commands]
            except Exception:
                break
            finally:
                self._local.unit = None
            try:
                self._commit(unit)
                return list(results)
            except RecordConflictError:
                continue
        return [self._alone(command) for command in commands]

    @staticmethod
    def _alone(command: Callable[[], T]) -> T | Exception:
        try:
            return command()
        except Exception as e:
            return e

    def _run(self, command: Callable[[UnitOfWork], T]) -> T:
        """Run a command in the group being gathered, or on its own and commit it."""
        group: UnitOfWork | None = getattr(self._local, "unit", None)
        if group is not None:
            return command(group)  # committed with the group (`run_together`)
        return self._retrying(command)

    def _commit(self, unit: UnitOfWork) -> None:
        """Save what the unit changed, in one transaction; a conflict refreshes the cache."""
        if not unit.changed:
            return
        try:
            recordings = Application.save(self, *unit.changed.values())
        except RecordConflictError:
            self._refresh(unit.changed)
            raise
        unit.positions = [r.notification.id for r in recordings]

    def last_position(self) -> int | None:
        """Where this thread's last committed command left its last event (None: no event)."""
        unit: UnitOfWork | None = getattr(self._local, "committed", None)
        return None if unit is None else unit.position

    def positioned(self, command: Callable[[], T]) -> tuple[T, int]:
        """Run a command in this thread: its result and its last event's position in the log."""
        self._local.committed = None
        result = command()
        position = self.last_position()
        if position is None:  # it saved nothing: the log's end still covers all it did before
            position = self.recorder.max_notification_id() or 0
        return result, position

    def _get(self, aggregate_id: UUID, at_least: int | None = None) -> object:
        """An aggregate, loaded once per unit of work (a query outside one loads it afresh)."""
        unit: UnitOfWork | None = getattr(self._local, "unit", None)
        if unit is None:
            return self._from_cache_or_store(aggregate_id, at_least)
        if aggregate_id not in unit.loaded:
            unit.loaded[aggregate_id] = self._from_cache_or_store(aggregate_id, at_least)
        return unit.loaded[aggregate_id]

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
        if cached is None and at_least is not None and self.sole_writer:
            self._refresh([aggregate_id])  # saved by a thread that has not cached it yet
        found = cached if cached is not None else self.repository.get(aggregate_id)
        if (
            isinstance(found, Project)
            and found.title != ERASED
            and self.text_keys.erased(found.owner_id)
        ):
            found = self._read_again(found)
        return found

    def _read_again(self, project: Project) -> Project:
        """An erased owner's project from the store, not the cache, which held its text."""
        fresh: object = self.repository.get(project.id, version=project.version)  # not cached
        assert isinstance(fresh, Project)
        if self.repository.cache is not None:
            self.repository.cache.put(project.id, deepcopy(fresh))
        return fresh

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
        unit = UnitOfWork()
        unit.keep(account)
        try:
            self._commit(unit)
        except RecordConflictError:
            raise AccountExists(name) from None
        self._local.committed = unit
        return account, token

    def grant_credits(self, name: str, amount: int, *, actor: str = "cli") -> Account:
        def grant(unit: UnitOfWork) -> Account:
            account = self.account_named(name)
            account.grant(amount, actor=actor)
            unit.keep(account)
            return account

        return self._run(grant)

    def adjust_credits(
        self, name: str, amount: int, *, reason: str, ticket: str, actor: str = "cli"
    ) -> int:
        """Settle a dispute: give back or take credits; the position of the adjustment."""

        def adjust(unit: UnitOfWork) -> None:
            account = self.account_named(name)
            account.adjust(amount, reason=reason, ticket=ticket, actor=actor)
            unit.keep(account)

        self._retrying(adjust)
        position = self.last_position()
        assert position is not None  # the adjustment was just stored
        return position

    def rotate_token(
        self, name: str, *, expires_in_days: int | None = None, actor: str = "cli"
    ) -> NewToken:
        """A new token for an account: the old one stops working; a disabled account works again."""
        expires_at = token_expiry(expires_in_days)
        token = new_token()

        def rotate(unit: UnitOfWork) -> Account:
            account = self.account_named(name)
            account.rotate_token(hash_token(token), token_expires_at=expires_at, actor=actor)
            unit.keep(account)
            return account

        account = self._retrying(rotate)
        return NewToken(account, token, self.last_position() or 0)

    def disable_account(self, name: str, *, actor: str = "cli") -> int | None:
        """Disable an account: its token stops working until rotated.

        Returns the position of the event in the log, or None when it was disabled already.
        """

        def disable(unit: UnitOfWork) -> bool:
            account = self.account_named(name)
            unit.keep(account)
            return account.disable(actor=actor)

        return self.last_position() if self._retrying(disable) else None

    def erase_account(self, name: str, *, actor: str = "cli") -> tuple[UUID, int | None]:
        """Record the erasure and destroy the user's text key; again, it only destroys the key.

        Returns the account's id and the position of `AccountErased` (None when erased already).
        """

        def erase(unit: UnitOfWork) -> tuple[UUID, bool]:
            account = self.account_named(name)
            unit.keep(account)
            return account.id, account.erase(actor=actor)

        account_id, recorded = self._retrying(erase)
        position = self.last_position() if recorded else None
        self.text_keys.destroy(account_id)
        return account_id, position

    def projects_owned_by(self, owner_id: UUID) -> list[UUID]:
        """Every project the owner created, deleted ones too, read from the event store."""
        store = SQLStore.of(self)
        table = getattr(self.recorder, "events_table_name", "stored_events")
        rows = store.query(
            f"SELECT originator_id, state FROM {{{table}}} WHERE topic = ?",  # noqa: S608 (ours)
            (get_topic(Project.ProjectCreated),),
        )
        owned = []
        for row in rows:
            id = row["originator_id"]
            project_id = id if isinstance(id, UUID) else UUID(str(id))
            state = row["state"]
            stored = StoredEvent(project_id, 1, get_topic(Project.ProjectCreated), _bytes(state))
            event = self.sealed_mapper.to_domain_event(stored)
            if getattr(event, "owner_id", None) == owner_id:
                owned.append(project_id)
        return owned

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

        def create(unit: UnitOfWork) -> Project:
            with self._account_lock(owner_id):
                return create_locked(unit)

        def create_locked(unit: UnitOfWork) -> Project:
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
            unit.keep(project, account)
            return project

        return self._run(create)

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

    def rename_project(
        self, owner_id: UUID, project_id: UUID, *, title: object, actor: str
    ) -> Project:
        """Give a project a new title; a bad one raises BadInput and records nothing."""
        return self._command(
            owner_id, project_id, lambda p: p.rename(title=title, actor=actor), actor
        )

    def delete_project(self, owner_id: UUID, project_id: UUID, *, actor: str) -> Project:
        """Soft-delete a project, cancelling its step in flight first."""
        return self._command(owner_id, project_id, lambda p: p.delete(actor=actor), actor)

    def restore_project(self, project_id: UUID, *, actor: str) -> Project:
        def restore(unit: UnitOfWork) -> Project:
            project = self.project(project_id)
            project.restore(actor=actor)
            unit.keep(project)
            return project

        return self._run(restore)

    def _command(
        self,
        owner_id: UUID,
        project_id: UUID,
        command: Callable[[Project], list[CreditMovement]],
        actor: str,
    ) -> Project:
        def run(unit: UnitOfWork) -> Project:
            with self._account_lock(owner_id):
                project = self.project_of(owner_id, project_id)
                account = self.account(project.owner_id)
                movements = command(project)
                account.apply_movements(project.id, movements, actor=actor)
                unit.keep(project, account)
                return project

        return self._run(run)

    # ---- commands of the stages --------------------------------------------------------

    def record_clip(
        self, project_id: UUID, *, version: int, scene: int, asset: JSON, actor: str
    ) -> bool:
        """Record one finished clip of a render; False when the request is no longer current."""

        def run(unit: UnitOfWork) -> bool:
            project = self.project(project_id, at_least=version)
            if not project.is_current(Step.VIDEO, version):
                return False
            project.record_clip(version=version, scene=scene, asset=asset, actor=actor)
            unit.keep(project)
            return True

        return self._run(run)

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

        def run(unit: UnitOfWork) -> bool:
            project = self.project(project_id, at_least=version)
            if not project.is_current(step, version):
                return False
            with self._account_lock(project.owner_id):
                account = self.account(project.owner_id)
                account.apply_movements(project.id, outcome(project), actor=actor)
                self._continue_autopilot(project, account, actor="autopilot")
                unit.keep(project, account)
            return True

        return self._run(run)

    def time_out(
        self, project_id: UUID, *, step: str, version: int, after_s: float, actor: str = "deadline"
    ) -> bool:
        """Fail a step (or an add-on) past its deadline; False when it is no longer waiting.

        Several watchers may find the same step: the first save wins, the others find the
        request settled once they reload (optimistic concurrency on the project's version).
        """

        def run(unit: UnitOfWork) -> bool:
            project = self.project(project_id)
            waiting = (
                project.is_current(step, version)
                if step in SPECS
                else project.is_current_addon(step, version)
            )
            if not waiting:
                return False
            with self._account_lock(project.owner_id):
                account = self.account(project.owner_id)
                movements = project.time_out(
                    step=step, version=version, after_s=after_s, actor=actor
                )
                account.apply_movements(project.id, movements, actor=actor)
                unit.keep(project, account)
            return True

        return self._run(run)

    # ---- add-ons: billed steps of plug-in stages ---------------------------------------

    def request_addon(
        self,
        project_id: UUID,
        *,
        step: str,
        trigger_version: int,
        estimate: int,
        stage_version: str,
        actor: str,
    ) -> int | None:
        """Reserve an add-on's estimate, once per trigger; the version of the request to work on.

        None when there is nothing to do: the project is deleted, this trigger was acted on and
        its add-on is finished, or the balance could not cover the estimate (then the project
        records that the add-on was skipped).
        """

        def run(unit: UnitOfWork) -> int | None:
            project = self.project(project_id, at_least=trigger_version)
            known = project.addon(step)
            if known is not None and known["trigger_version"] >= trigger_version:
                return int(known["version"]) if known["state"] == "requested" else None
            if project.deleted:
                return None
            with self._account_lock(project.owner_id):
                account = self.account(project.owner_id)
                if estimate > account.balance:
                    reason = InsufficientCredits(estimate, account.balance).message
                    project.skip_addon(
                        step=step, trigger_version=trigger_version, reason=reason, actor=actor
                    )
                    unit.keep(project)
                    return None
                movements = project.request_addon(
                    step=step,
                    trigger_version=trigger_version,
                    estimate=estimate,
                    stage_version=stage_version,
                    actor=actor,
                )
                account.apply_movements(project.id, movements, actor=actor)
                unit.keep(project, account)
            addon = project.addon(step)
            return None if addon is None else int(addon["version"])

        return self._run(run)

    def complete_addon(
        self,
        project_id: UUID,
        *,
        step: str,
        version: int,
        price: Price,
        assets: list[JSON],
        generation: JSON,
        actor: str,
    ) -> bool:
        """Record an add-on's assets and charge its real cost; False when no longer current."""

        def complete(project: Project) -> list[CreditMovement]:
            return project.complete_addon(
                step=step,
                version=version,
                price=price,
                assets=assets,
                generation=generation,
                actor=actor,
            )

        return self._settle_addon(project_id, step, version, complete, actor)

    def fail_addon(
        self,
        project_id: UUID,
        *,
        step: str,
        version: int,
        code: FailureCode,
        error: str,
        generation: JSON,
        actor: str,
    ) -> bool:
        """Record an add-on's failure and release its credits; False when no longer current."""

        def fail(project: Project) -> list[CreditMovement]:
            return project.fail_addon(
                step=step,
                version=version,
                code=code,
                error=error,
                generation=generation,
                actor=actor,
            )

        return self._settle_addon(project_id, step, version, fail, actor)

    def _settle_addon(
        self,
        project_id: UUID,
        step: str,
        version: int,
        outcome: Callable[[Project], list[CreditMovement]],
        actor: str,
    ) -> bool:
        def run(unit: UnitOfWork) -> bool:
            project = self.project(project_id, at_least=version)
            if not project.is_current_addon(step, version):
                return False
            with self._account_lock(project.owner_id):
                account = self.account(project.owner_id)
                account.apply_movements(project.id, outcome(project), actor=actor)
                unit.keep(project, account)
            return True

        return self._run(run)

    def add_assets(self, project_id: UUID, *, assets: list[JSON], actor: str) -> None:
        def run(unit: UnitOfWork) -> None:
            project = self.project(project_id)
            project.add_assets(assets=assets, actor=actor)
            unit.keep(project)

        self._run(run)

    # ---- helpers -----------------------------------------------------------------------

    @staticmethod
    def _continue_autopilot(project: Project, account: Account, *, actor: str) -> None:
        cost = project.autopilot_cost()
        if project.autopilot_next() is None:
            return
        if cost > account.balance:
            project.pause_autopilot(needed=cost, balance=account.balance, actor=actor)
            return
        account.apply_movements(project.id, project.continue_autopilot(actor=actor), actor=actor)

    def _account_lock(self, owner_id: UUID) -> threading.Lock:
        """Commands that save an account take turns in this process instead of conflicting."""
        return self._account_locks[owner_id.int % len(self._account_locks)]

    def _retrying(self, command: Callable[[UnitOfWork], T]) -> T:
        """Run a command in a unit of its own and commit it; again when another writer saved first.

        A sole writer trusts its cache, so before it refuses a command it makes sure the
        refusal does not come from aggregates another process changed meanwhile.
        """
        confirmed = not self.sole_writer
        conflicts = 0
        while True:
            unit = UnitOfWork()
            self._local.unit = unit
            try:
                result = command(unit)
            except AytadaError:
                if confirmed or not self._refresh(unit.loaded):
                    raise
                confirmed = True
                continue
            finally:
                self._local.unit = None
            try:
                self._commit(unit)
            except RecordConflictError:
                conflicts += 1
                if conflicts == CONFLICT_RETRIES:
                    raise
                continue
            self._local.committed = unit
            return result

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


def _bytes(state: bytes | memoryview | str) -> bytes:
    return state.encode() if isinstance(state, str) else bytes(state)
