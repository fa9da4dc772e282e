"""Accounts as the web edge looks them up: by token hash, with their credit balance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import TypedDict

from eventsourcing.utils import get_topic

from ..adapters.sql import Row, SQLStore, Transaction
from ..domain.account import Account
from .base import Batch, CardChange, DomainEvent, Projection, aggregate_id

ACCOUNTS = "aytada_accounts"


class AccountView(TypedDict):
    """An account as the read model holds it."""

    id: str
    name: str
    role: str
    token_hash: str
    # Seconds since the epoch; None: the token never expires.
    token_expires_at: float | None
    disabled: bool
    balance: int
    reserved: int
    position: int


class Accounts(Projection):
    """Every account: name, role, token hash and expiry, disabled or not, balance, reservations."""

    name = "accounts"
    # 2: the token's expiry and the disabled flag.
    version = 2
    tables = (ACCOUNTS,)
    events = (Account.Event,)
    ddl = (
        """CREATE TABLE IF NOT EXISTS {aytada_accounts} (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            token_expires_at DOUBLE PRECISION,
            disabled INTEGER NOT NULL,
            balance BIGINT NOT NULL,
            reserved BIGINT NOT NULL,
            position BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS aytada_accounts_by_token ON {aytada_accounts} (token_hash)",
        # The web edge's revocation watch reads the rows that changed since its last look.
        "CREATE INDEX IF NOT EXISTS aytada_accounts_by_position ON {aytada_accounts} (position)",
    )

    def __init__(self, store: SQLStore) -> None:
        super().__init__(store)
        self._accounts: dict[str, Row] = {}  # the rows this batch touches
        self._touched: set[str] = set()

    def begin(self, tx: Transaction, batch: Batch) -> None:
        # The runner hands over only `events` (account events).
        known = {
            aggregate_id(event)
            for _, event in batch
            if not isinstance(event, Account.AccountOpened)
        }
        self._accounts = {row["id"]: row for row in tx.rows_with(ACCOUNTS, "id", known)}
        self._touched = set()

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if not isinstance(event, Account.Event):
            return ()
        id = aggregate_id(event)
        if isinstance(event, Account.AccountOpened):
            account = self._accounts[id] = {
                "id": id,
                "name": event.name,
                "role": event.role,
                "token_hash": event.token_hash,
                "token_expires_at": _seconds(event.token_expires_at),
                "disabled": 0,
                "balance": 0,
                "reserved": 0,
                "position": position,
            }
        elif (found := self._accounts.get(id)) is None:
            raise LookupError(f"{type(event).__name__} of account {id}, never opened")
        else:
            account = found
        _apply(account, event)
        account["position"] = position
        self._touched.add(id)
        return ()

    def flush(self, tx: Transaction) -> Sequence[CardChange]:
        tx.upsert(ACCOUNTS, "id", [self._accounts[id] for id in self._touched])
        self._accounts.clear()
        return ()

    # ---- queries -----------------------------------------------------------------------

    def account_by_token_hash(self, token_hash: str) -> AccountView | None:
        """The account whose token has this hash, if any."""
        rows = self.store.query(
            "SELECT * FROM {aytada_accounts} WHERE token_hash = ?", (token_hash,)
        )
        return _view(rows[0]) if rows else None

    def account(self, account_id: object) -> AccountView | None:
        """An account by id, if the read model has it yet."""
        rows = self.store.query("SELECT * FROM {aytada_accounts} WHERE id = ?", (str(account_id),))
        return _view(rows[0]) if rows else None

    def some(self, account_ids: Iterable[str]) -> list[AccountView]:
        """The read model's rows of these accounts (those it has)."""
        found = [self.account(id) for id in sorted(set(account_ids))]
        return [view for view in found if view is not None]

    def changed_after(self, position: int) -> list[AccountView]:
        """The accounts an event after `position` changed (their credits, token or state)."""
        rows = self.store.query(
            "SELECT * FROM {aytada_accounts} WHERE position > ? ORDER BY position", (position,)
        )
        return [_view(row) for row in rows]


@cache
def account_topics() -> tuple[str, ...]:
    """The topics of every account event, to read only those from the log."""
    kinds = [
        k for k in vars(Account).values() if isinstance(k, type) and issubclass(k, Account.Event)
    ]
    return tuple(sorted(get_topic(kind) for kind in kinds))


def folded(known: Iterable[AccountView], events: Iterable[tuple[int, object]]) -> list[AccountView]:
    """Accounts as the read model will hold them once it applies `events`: in memory only.

    `known` are the read model's rows of the events' accounts; an event a row already holds
    (at or before its position) is passed over, so a row read after the runner moved on is
    not counted twice.
    """
    rows: dict[str, Row] = {view["id"]: dict(view) for view in known}
    for position, event in events:
        if not isinstance(event, Account.Event):
            continue
        id = aggregate_id(event)
        row = rows.get(id)
        if row is not None and row["position"] >= position:
            continue
        if isinstance(event, Account.AccountOpened):
            row = rows[id] = {
                "id": id,
                "name": event.name,
                "role": event.role,
                "token_hash": event.token_hash,
                "token_expires_at": _seconds(event.token_expires_at),
                "disabled": 0,
                "balance": 0,
                "reserved": 0,
            }
        elif row is None:
            continue  # its opening is neither among the events nor the rows: left out
        _apply(row, event)
        row["position"] = position
    return [_view(row) for row in rows.values()]


def _apply(account: Row, event: Account.Event) -> None:
    """Mirror what the event does to the aggregate's balance, reservation and token."""
    if isinstance(event, Account.CreditsGranted | Account.CreditsAdjusted):
        account["balance"] += event.amount
    elif isinstance(event, Account.CreditsHeld):
        account["balance"] -= event.amount
        account["reserved"] += event.amount
    elif isinstance(event, Account.HoldCharged):
        account["reserved"] -= event.amount
    elif isinstance(event, Account.HoldReleased):
        account["reserved"] -= event.amount
        account["balance"] += event.amount
    elif isinstance(event, Account.TokenRotated):
        account["token_hash"] = event.token_hash
        account["token_expires_at"] = _seconds(event.token_expires_at)
        account["disabled"] = 0
    elif isinstance(event, Account.AccountDisabled | Account.AccountErased):
        account["disabled"] = 1


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _view(row: Row) -> AccountView:
    return {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "token_hash": row["token_hash"],
        "token_expires_at": (
            None if row["token_expires_at"] is None else float(row["token_expires_at"])
        ),
        "disabled": bool(row["disabled"]),
        "balance": int(row["balance"]),
        "reserved": int(row["reserved"]),
        "position": int(row["position"]),
    }
