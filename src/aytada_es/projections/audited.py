"""The read models as the audit compares them with the store (`audit.findings.ReadSide`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import DatabaseError

from .runner import ReadModels

COMPARED = ("credits", "accounts")


class ReadSideOf:
    """The credits and accounts read models, read only."""

    def __init__(self, models: ReadModels) -> None:
        self.models = models

    def applied(self) -> int:
        positions = self.models.positions()
        return min(positions.get(name, 0) for name in COMPARED)

    def ledger(self, project_id: UUID) -> dict[str, int] | None:
        ledger = self.models.credits.project_ledger(project_id)
        if ledger is None:
            return None
        return {
            "reserved": ledger["reserved"],
            "charged": ledger["charged"],
            "released": ledger["released"],
            "still_reserved": ledger["still_reserved"],
        }

    def balances(self, account_id: UUID) -> dict[str, tuple[int, int] | None]:
        statement = self.models.credits.statement(account_id)
        view = self.models.accounts.account(account_id)
        return {
            "credits": (statement["balance"], statement["reserved"]),
            "accounts": None if view is None else (view["balance"], view["reserved"]),
        }


def read_side_of(application: Application[Any]) -> ReadSideOf | None:
    """The store's read models, read only; None where they were never made (no service ran)."""
    models = ReadModels(application, prepare=False)
    try:
        models.positions()
    except DatabaseError:
        return None
    return ReadSideOf(models)
