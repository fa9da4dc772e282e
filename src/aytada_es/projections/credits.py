"""Credit statements: each account's movements and running balance, and each project's ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict
from uuid import UUID

from ..adapters.chain import unseal
from ..adapters.sql import Row, SQLStore, Transaction, from_json, to_json
from ..domain.account import MOVEMENT_EFFECTS, Account, AccountMovement
from ..domain.credits import Reconciliation
from ..domain.project import Project
from ..notation import utc_iso
from ._project_rows import ProjectRows
from .base import Batch, CardChange, DomainEvent, Projection, aggregate_id

MOVEMENTS = "aytada_credit_movements"
BALANCES = "aytada_credit_balances"
LEDGERS = "aytada_credit_ledgers"
# Each project's title and deleted flag, for the statement: a movement names only the project.
PROJECTS = "aytada_credit_projects"

# As tuples: `isinstance` with a union (`A | B`) builds the union on every call.
_MOVEMENTS = (
    Account.CreditsGranted,
    Account.CreditsHeld,
    Account.HoldCharged,
    Account.HoldReleased,
    Account.CreditsAdjusted,
)
_MARKS = (Project.ProjectDeleted, Project.ProjectRestored)
_RENAMED = Project.ProjectRenamed
_SETTLEMENTS = (Project.CreditsReserved, Project.CreditsCharged, Project.CreditsReleased)


class Movement(TypedDict):
    """One line of a credit statement, with the balance and the reserved credits after it."""

    position: int
    at: str
    kind: str
    project_id: str | None
    project_title: str | None
    project_deleted: bool | None
    step: str | None
    amount: int
    balance: int
    reserved: int
    head: str | None


class Statement(TypedDict):
    """An account's credits now and every movement that led there, oldest first."""

    balance: int
    reserved: int
    history: list[Movement]


class Ledger(TypedDict):
    """A project's credit reconciliation, deleted projects too."""

    reserved: int
    charged: int
    released: int
    still_reserved: int
    consistent: bool


class CreditStatements(Projection):
    """Every account's credit movements, and every project's reserved, charged and released."""

    name = "credits"
    # 2: each movement records the chain head of the event it came from.
    version = 2
    tables = (MOVEMENTS, BALANCES, LEDGERS, PROJECTS)
    events = (
        Account.AccountOpened,
        *_MOVEMENTS,
        Project.ProjectCreated,
        *_MARKS,
        _RENAMED,
        *_SETTLEMENTS,
    )
    personal = {PROJECTS: ("project_id", ("title",))}
    reads = {"ProjectCreated": ("title",), "ProjectRenamed": ("title",)}
    ddl = (
        """CREATE TABLE IF NOT EXISTS {aytada_credit_movements} (
            position BIGINT PRIMARY KEY,
            account_id TEXT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            project_id TEXT,
            step TEXT,
            amount BIGINT NOT NULL,
            balance BIGINT NOT NULL,
            reserved BIGINT NOT NULL,
            head TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_credit_movements_by_account"
        " ON {aytada_credit_movements} (account_id, position)",
        """CREATE TABLE IF NOT EXISTS {aytada_credit_balances} (
            account_id TEXT PRIMARY KEY,
            balance BIGINT NOT NULL,
            reserved BIGINT NOT NULL
        )""",
        # `open` is the JSON of what each step still holds, as the aggregate keeps it.
        """CREATE TABLE IF NOT EXISTS {aytada_credit_ledgers} (
            project_id TEXT PRIMARY KEY,
            reserved BIGINT NOT NULL,
            charged BIGINT NOT NULL,
            released BIGINT NOT NULL,
            open TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS {aytada_credit_projects} (
            project_id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            deleted INTEGER NOT NULL
        )""",
    )

    def __init__(
        self,
        store: SQLStore,
        events_table: str = "stored_events",
        events_store: SQLStore | None = None,
    ) -> None:
        super().__init__(store)
        self.events_table = events_table  # where each movement's chain head is read
        # The event store's database, when the read models are kept in another one.
        self.events_store = events_store
        self._balances: dict[str, Row] = {}  # the rows this batch touches
        self._ledgers: dict[str, Row] = {}
        self._touched_balances: set[str] = set()
        self._touched_ledgers: set[str] = set()
        self._movements: list[tuple[Any, ...]] = []  # rows of the INSERT in `flush`
        self._states: Mapping[int, bytes] = {}  # the batch's events as stored, by position
        self._projects = ProjectRows(PROJECTS)

    def stored(self, states: Mapping[int, bytes]) -> None:
        self._states = states

    def begin(self, tx: Transaction, batch: Batch) -> None:
        accounts, projects = set(), set()
        for _, event in batch:
            if isinstance(event, _MOVEMENTS):
                accounts.add(aggregate_id(event))
            elif isinstance(event, _SETTLEMENTS):
                projects.add(aggregate_id(event))
        self._balances = {
            row["account_id"]: row for row in tx.rows_with(BALANCES, "account_id", accounts)
        }
        self._ledgers = {
            row["project_id"]: row for row in tx.rows_with(LEDGERS, "project_id", projects)
        }
        for ledger in self._ledgers.values():
            ledger["open"] = from_json(ledger["open"])
        self._projects.load(tx, batch, (*_MARKS, _RENAMED))
        self._touched_balances, self._touched_ledgers, self._movements = set(), set(), []

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        id = aggregate_id(event)
        # The most frequent first: half the events settle a project's credits, half move an
        # account's.
        if isinstance(event, _SETTLEMENTS):
            self._settle(id, event)
        elif isinstance(event, _MOVEMENTS):
            self._move(id, position, event)
        elif isinstance(event, Account.AccountOpened):
            self._balances[id] = {"account_id": id, "balance": 0, "reserved": 0}
            self._touched_balances.add(id)
        elif isinstance(event, Project.ProjectCreated):
            self._ledgers[id] = {
                "project_id": id,
                "reserved": 0,
                "charged": 0,
                "released": 0,
                "open": {},
            }
            self._touched_ledgers.add(id)
            self._projects.created(id, {"title": event.title})
        elif isinstance(event, _MARKS):
            self._projects.mark(event)
        elif isinstance(event, _RENAMED):
            self._projects.rename(event)
        return ()

    def _move(self, id: str, position: int, event: AccountMovement) -> None:
        account = self._balances.get(id)
        if account is None:
            raise LookupError(f"{type(event).__name__} of account {id}, never opened")
        kind, to_balance, to_reserved = MOVEMENT_EFFECTS[type(event)]
        account["balance"] += to_balance * event.amount
        account["reserved"] += to_reserved * event.amount
        self._touched_balances.add(id)
        project_id: str | None = None
        step: str | None = None
        if not isinstance(event, Account.CreditsGranted | Account.CreditsAdjusted):
            project_id, step = str(event.project_id), event.step
        self._movements.append(
            (
                position,
                id,
                utc_iso(event.timestamp),
                kind,
                project_id,
                step,
                event.amount,
                account["balance"],
                account["reserved"],
                None,  # the chain head, filled in by `flush`
            )
        )

    def _settle(
        self,
        id: str,
        event: Project.CreditsReserved | Project.CreditsCharged | Project.CreditsReleased,
    ) -> None:
        """Mirror the aggregate's own ledger: totals, and what each step still holds."""
        ledger = self._ledgers.get(id)
        if ledger is None:
            raise LookupError(f"{type(event).__name__} of project {id}, never created")
        open_: dict[str, int] = ledger["open"]
        if isinstance(event, Project.CreditsReserved):
            ledger["reserved"] += event.amount
            open_[event.step] = open_.get(event.step, 0) + event.amount
        else:
            column = "charged" if isinstance(event, Project.CreditsCharged) else "released"
            ledger[column] += event.amount
            if left := open_.get(event.step, 0) - event.amount:
                open_[event.step] = left
            else:
                open_.pop(event.step, None)
        self._touched_ledgers.add(id)

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        self._projects.save(tx)
        tx.upsert(BALANCES, "account_id", [self._balances[id] for id in self._touched_balances])
        tx.upsert(
            LEDGERS,
            "project_id",
            [
                {**self._ledgers[id], "open": to_json(self._ledgers[id]["open"])}
                for id in self._touched_ledgers
            ],
        )
        heads = self._heads(tx, [m[0] for m in self._movements])
        tx.executemany(
            "INSERT INTO {aytada_credit_movements} (position, account_id, at, kind, project_id,"
            " step, amount, balance, reserved, head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*m[:-1], heads.get(m[0])) for m in self._movements],
        )
        self._balances, self._ledgers, self._movements = {}, {}, []
        self._touched_balances, self._touched_ledgers = set(), set()
        return ()

    def _heads(self, tx: Transaction, positions: list[int]) -> dict[int, str]:
        """The hash each stored event at these positions claims: the chain head it sealed."""
        # From the batch as the runner read it; else (not given) from the event store again.
        states = self._states
        missing = [p for p in positions if p not in states]
        found: list[tuple[int, Any]] = [(p, states[p]) for p in positions if p in states]
        if missing and self.events_store is None:
            rows = self._stored(tx, self.store.dialect, missing)
        elif missing and self.events_store is not None:
            with self.events_store.reading() as events:
                rows = self._stored(events, self.events_store.dialect, missing)
        else:
            rows = []
        found += [(int(row["position"]), row["state"]) for row in rows]
        heads: dict[int, str] = {}
        for position, state in found:
            sealed = unseal(state.encode() if isinstance(state, str) else bytes(state))
            if sealed is not None:
                heads[position] = sealed[0]
        return heads

    def _stored(self, tx: Transaction, dialect: str, positions: list[int]) -> list[Row]:
        column = "rowid" if dialect == "sqlite" else "notification_id"
        return tx.rows_at(self.events_table, column, positions)

    # ---- queries -----------------------------------------------------------------------

    def statement(self, account_id: UUID | str) -> Statement:
        """The account's balance and reserved credits, and every movement, oldest first.

        Each movement names its project, deleted ones too (`project_deleted`: deleted now).
        """
        rows = self.store.query(
            "SELECT m.*, p.title AS project_title, p.deleted AS project_deleted"
            " FROM {aytada_credit_movements} m"
            " LEFT JOIN {aytada_credit_projects} p ON p.project_id = m.project_id"
            " WHERE m.account_id = ? ORDER BY m.position",
            (str(account_id),),
        )
        history: list[Movement] = [
            {
                "position": int(row["position"]),
                "at": row["at"],
                "kind": row["kind"],
                "project_id": row["project_id"],
                "project_title": row["project_title"],
                "project_deleted": None
                if row["project_deleted"] is None
                else bool(row["project_deleted"]),
                "step": row["step"],
                "amount": int(row["amount"]),
                "balance": int(row["balance"]),
                "reserved": int(row["reserved"]),
                "head": row["head"],
            }
            for row in rows
        ]
        # The totals come from the same rows, so they always agree with the history.
        last = history[-1] if history else None
        return {
            "balance": last["balance"] if last else 0,
            "reserved": last["reserved"] if last else 0,
            "history": history,
        }

    def project_ledger(self, project_id: UUID | str) -> Ledger | None:
        """The project's credit reconciliation, or None for a project not seen yet."""
        rows = self.store.query(
            "SELECT * FROM {aytada_credit_ledgers} WHERE project_id = ?", (str(project_id),)
        )
        if not rows:
            return None
        row = rows[0]
        open_: dict[str, int] = from_json(row["open"])
        ledger = Reconciliation(
            reserved=int(row["reserved"]),
            charged=int(row["charged"]),
            released=int(row["released"]),
            still_reserved=sum(open_.values()),
        )
        return {
            "reserved": ledger.reserved,
            "charged": ledger.charged,
            "released": ledger.released,
            "still_reserved": ledger.still_reserved,
            "consistent": ledger.consistent,
        }
