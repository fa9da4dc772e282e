"""The audit reports as `aytada-es audit --json` prints them, for tests that read them as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from aytada_es.application import Studio
from aytada_es.audit import account, project
from aytada_es.audit.project import project_state

__all__ = ["account_audit", "project_audit", "project_state"]


def project_audit(studio: Studio, project_id: UUID, at_version: int | None = None) -> Any:
    return project.project_audit(studio, project_id, at_version).model_dump(mode="json")


def account_audit(studio: Studio, name: str, at: datetime | None = None) -> Any:
    return account.account_audit(studio, name, at).model_dump(mode="json")
