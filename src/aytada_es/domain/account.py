"""The Account aggregate: a user, their role, their token and their credit balance."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from .copying import copy_aggregate
from .credits import CreditMovement, Movement
from .errors import BadInput, Conflict, InsufficientCredits
from .storable import MAX_INTEGER, integer_problem, text_problem

ROLES = ("user", "auditor", "support")
MAX_ADJUSTMENT_TEXT = {"reason": 500, "ticket": 64}
_ACCOUNTS = uuid5(NAMESPACE_URL, "aytada-es:accounts")


def name_problem(name: object) -> str | None:
    """Why a text cannot name an account, or None when it can."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 100
        or not name.isprintable()  # no controls, bidirectional overrides or lone surrogates
        or name.strip() != name
    ):
        return "1 to 100 printable characters, no surrounding spaces"
    return None


def account_id(name: str) -> UUID:
    """Accounts are named: one id per name, so a name cannot be taken twice."""
    problem = name_problem(name)
    if problem is not None:
        raise BadInput("no account can have this name", {"name": problem})
    return uuid5(_ACCOUNTS, name)


class Account(Aggregate):
    """A user's account. `balance` is what is free to reserve; `reserved` is held for steps.

    Its token (kept as a hash) may expire; a disabled account's token works no more until it
    is rotated, which enables the account again.
    """

    if TYPE_CHECKING:  # set by the created event; annotations here would become __init__ args
        name: str
        role: str
        token_hash: str
        token_expires_at: datetime | None
        disabled: bool
        erased: bool
        balance: int
        reserved: int

    class Event(Aggregate.Event):
        class_version = 1
        actor: str

    class AccountOpened(Event, Aggregate.Created):
        class_version = 2
        name: str
        role: str
        token_hash: str
        token_expires_at: datetime | None

        def apply(self, account: Account) -> None:
            account.name = self.name
            account.role = self.role
            account.token_hash = self.token_hash
            account.token_expires_at = self.token_expires_at
            account.disabled = False
            account.erased = False
            account.balance = 0
            account.reserved = 0

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Release 1 had no token expiry: its tokens never expire."""
            state.setdefault("token_expires_at", None)

    class CreditsGranted(Event):
        class_version = 1
        amount: int

        def apply(self, account: Account) -> None:
            account.balance += self.amount

    class CreditsAdjusted(Event):
        """Support settled a dispute: credits given back (positive) or taken (negative)."""

        class_version = 1
        amount: int
        reason: str
        ticket: str

        def apply(self, account: Account) -> None:
            account.balance += self.amount

    class CreditsHeld(Event):
        class_version = 1
        project_id: UUID
        step: str
        amount: int

        def apply(self, account: Account) -> None:
            account.balance -= self.amount
            account.reserved += self.amount

    class HoldCharged(Event):
        class_version = 1
        project_id: UUID
        step: str
        amount: int

        def apply(self, account: Account) -> None:
            account.reserved -= self.amount

    class HoldReleased(Event):
        class_version = 1
        project_id: UUID
        step: str
        amount: int

        def apply(self, account: Account) -> None:
            account.reserved -= self.amount
            account.balance += self.amount

    class TokenRotated(Event):
        class_version = 2
        token_hash: str
        token_expires_at: datetime | None

        def apply(self, account: Account) -> None:
            account.token_hash = self.token_hash
            account.token_expires_at = self.token_expires_at
            account.disabled = False

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Release 1 had no token expiry: its tokens never expire."""
            state.setdefault("token_expires_at", None)

    class AccountDisabled(Event):
        class_version = 1

        def apply(self, account: Account) -> None:
            account.disabled = True

    class AccountErased(Event):
        """The user's text key was destroyed on request: their text reads `[erased]`."""

        class_version = 1

        def apply(self, account: Account) -> None:
            account.disabled = True
            account.erased = True

    def __deepcopy__(self, memo: dict[int, Any]) -> Account:
        return copy_aggregate(self)

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return account_id(name)

    @classmethod
    def open(
        cls,
        *,
        name: str,
        role: str,
        token_hash: str,
        actor: str,
        token_expires_at: datetime | None = None,
    ) -> Account:
        fields = {}
        if (problem := name_problem(name)) is not None:
            fields["name"] = problem
        if role not in ROLES:
            fields["role"] = f"one of {', '.join(ROLES)}"
        if token_expires_at is not None and token_expires_at.tzinfo is None:
            fields["token_expires_at"] = "a time with its time zone"  # noqa: S105 (not a secret)
        if fields:
            raise BadInput("the account is not valid", fields)
        return cls._create(
            cls.AccountOpened,
            name=name,
            role=role,
            token_hash=token_hash,
            token_expires_at=token_expires_at,
            actor=actor,
        )

    def grant(self, amount: int, *, actor: str) -> None:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise BadInput("bad credit amount", {"credits": "a whole number, 0 or more"})
        if amount > MAX_INTEGER - self.balance - self.reserved:
            room = MAX_INTEGER - self.balance - self.reserved
            raise BadInput(
                "too many credits",
                {"credits": f"the account can hold {room} more (a signed 64-bit total)"},
            )
        if amount:
            self.trigger_event(self.CreditsGranted, amount=amount, actor=actor)

    def adjust(self, amount: int, *, reason: str, ticket: str, actor: str) -> None:
        """Give back or take credits to settle a dispute; the free balance never goes below 0."""
        problems: dict[str, str] = {}
        if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
            problems["amount"] = "a whole number other than 0 (negative takes credits back)"
        elif integer_problem(amount) or integer_problem(self.balance + self.reserved + amount):
            problems["amount"] = "the account's total must stay a signed 64-bit integer"
        elif self.balance + amount < 0:
            problems["amount"] = f"at most {self.balance} can be taken: the free balance"
        for field, text in (("reason", reason), ("ticket", ticket)):
            if not isinstance(text, str) or not text.strip():
                problems[field] = "some text"
            elif len(text) > MAX_ADJUSTMENT_TEXT[field]:
                problems[field] = f"at most {MAX_ADJUSTMENT_TEXT[field]} characters"
            elif (problem := text_problem(text)) is not None:
                problems[field] = problem
        if problems:
            raise BadInput("bad adjustment", problems)
        self.trigger_event(
            self.CreditsAdjusted, amount=amount, reason=reason, ticket=ticket, actor=actor
        )

    def rotate_token(
        self, token_hash: str, *, actor: str, token_expires_at: datetime | None = None
    ) -> None:
        """Replace the token (the old one stops working); enables a disabled account."""
        if self.erased:
            raise Conflict(f"{self.name!r} was erased: it cannot be given a token again")
        if token_expires_at is not None and token_expires_at.tzinfo is None:
            raise BadInput("bad expiry", {"token_expires_at": "a time with its time zone"})
        self.trigger_event(
            self.TokenRotated, token_hash=token_hash, token_expires_at=token_expires_at, actor=actor
        )

    def disable(self, *, actor: str) -> bool:
        """Stop the token working until it is rotated; False when already disabled."""
        if self.disabled:
            return False
        self.trigger_event(self.AccountDisabled, actor=actor)
        return True

    def erase(self, *, actor: str) -> bool:
        """Record the erasure (it also disables the token); False when already erased."""
        if self.erased:
            return False
        self.trigger_event(self.AccountErased, actor=actor)
        return True

    def apply_movements(
        self, project_id: UUID, movements: list[CreditMovement], *, actor: str
    ) -> None:
        """Mirror a project's reservations, charges and releases; refuse a short balance."""
        needed = sum(m.amount for m in movements if m.kind is Movement.RESERVE)
        if needed > self.balance:
            raise InsufficientCredits(needed, self.balance)
        events = {
            Movement.RESERVE: self.CreditsHeld,
            Movement.CHARGE: self.HoldCharged,
            Movement.RELEASE: self.HoldReleased,
        }
        for m in movements:
            self.trigger_event(
                events[m.kind], project_id=project_id, step=m.step, amount=m.amount, actor=actor
            )


AccountMovement = (
    Account.CreditsGranted
    | Account.CreditsAdjusted
    | Account.CreditsHeld
    | Account.HoldCharged
    | Account.HoldReleased
)
# Each credit movement's kind, and how it moves the free balance and the reserved credits.
MOVEMENT_EFFECTS: dict[type[Account.Event], tuple[str, int, int]] = {
    Account.CreditsGranted: ("grant", 1, 0),
    Account.CreditsAdjusted: ("adjust", 1, 0),
    Account.CreditsHeld: ("reserve", -1, 1),
    Account.HoldCharged: ("charge", 0, -1),
    Account.HoldReleased: ("release", 1, -1),
}
