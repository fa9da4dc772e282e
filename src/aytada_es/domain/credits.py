"""Credit movements that a project's command asks of its owner's account."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Movement(StrEnum):
    RESERVE = "reserve"
    CHARGE = "charge"
    RELEASE = "release"


@dataclass(frozen=True)
class CreditMovement:
    """One reservation, charge or release, for one step of one project."""

    kind: Movement
    step: str
    amount: int


@dataclass(frozen=True)
class Reconciliation:
    """A project's credit ledger: charged + released + still_reserved must equal reserved."""

    reserved: int
    charged: int
    released: int
    still_reserved: int

    @property
    def consistent(self) -> bool:
        return (
            self.charged + self.released + self.still_reserved == self.reserved
            and min(self.reserved, self.charged, self.released, self.still_reserved) >= 0
        )
