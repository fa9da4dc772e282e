"""Credit movements that a project's command asks of its owner's account."""

from __future__ import annotations

import re
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


# How release 1 worded a pause of autopilot (InsufficientCredits' message).
_PAUSE_REASON = re.compile(r"needs (?P<needed>-?\d+) credits; the balance is (?P<balance>-?\d+)")


def amounts_of_old_reason(reason: str) -> tuple[int | None, int | None]:
    """The credits needed and the balance a release-1 pause stated in words; None if it did not."""
    found = _PAUSE_REASON.search(reason)
    if found is None:
        return None, None
    return int(found["needed"]), int(found["balance"])
