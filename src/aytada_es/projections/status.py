"""How far each read model is behind and whether it is stopped, read from the store alone.

Any process can ask (the web processes of `worker web` and the CLI run no projections): a few
queries, whatever the number of events behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.application import Application

from ..adapters.sql import SQLStore
from .base import POSITIONS
from .stopped import ERRORS, JOINED_COLUMNS, Stopped, from_row

# docs/api.md §2: a read model that lags more than this is down.
LAG_LIMIT_S = 30.0


@dataclass(frozen=True)
class ReadModelStatus:
    """One read model's position, lag and stop."""

    name: str
    position: int
    lag_events: int
    # The age of the oldest stored event not applied yet; 0 when current, None when that
    # event cannot be read (then the read model is stopped on it).
    lag_s: float | None
    stopped: Stopped | None

    @property
    def healthy(self) -> bool:
        """Not stopped, and not more than `LAG_LIMIT_S` behind."""
        return self.stopped is None and (self.lag_s or 0.0) <= LAG_LIMIT_S

    def as_json(self) -> dict[str, Any]:
        """The status as the CLI's `--json` shows it."""
        return {
            "name": self.name,
            "position": self.position,
            "lag_events": self.lag_events,
            "lag_seconds": None if self.lag_s is None else round(self.lag_s, 3),
            "healthy": self.healthy,
            "stopped": None if self.stopped is None else self.stopped.as_json(),
        }


def read_model_statuses(
    application: Application[Any], store: SQLStore, names: Sequence[str], now: float
) -> list[ReadModelStatus]:
    """Each named read model's status; `now` in seconds since the epoch."""
    tracked = _tracked(store)
    # Positions first, then the last id: a lag is never reported smaller than it was.
    last = application.recorder.max_notification_id() or 0
    positions = {name: tracked[name][0] if name in tracked else 0 for name in names}
    ages = {p: _age(application, p, now) for p in set(positions.values()) if p < last}
    return [
        ReadModelStatus(
            name=name,
            position=position,
            lag_events=max(last - position, 0),
            lag_s=ages.get(position, 0.0),
            stopped=tracked[name][1] if name in tracked else None,
        )
        for name, position in positions.items()
    ]


def _tracked(store: SQLStore) -> dict[str, tuple[int, Stopped | None]]:
    try:
        rows = store.query(
            f"SELECT p.name, p.position, {JOINED_COLUMNS} FROM {{{POSITIONS}}} p"  # noqa: S608
            f" LEFT JOIN {{{ERRORS}}} e ON e.name = p.name"
        )
    except Exception:
        # No runner of this release has started on this database yet: nothing is stopped.
        missing = store.missing([POSITIONS, ERRORS])
        if POSITIONS in missing:
            return {}
        if not missing:
            raise
        rows = store.query(f"SELECT name, position FROM {{{POSITIONS}}}")  # noqa: S608
    return {row["name"]: (int(row["position"]), from_row(row)) for row in rows}


def _age(application: Application[Any], position: int, now: float) -> float | None:
    """How old the first stored event after `position` is, in seconds."""
    found = application.recorder.select_notifications(position + 1, 1)
    if not found:
        return 0.0
    try:
        stored_at = application.mapper.to_domain_event(found[0]).timestamp  # type: ignore[attr-defined]
    except Exception:
        return None
    if not isinstance(stored_at, datetime):
        return None
    return max(now - stored_at.timestamp(), 0.0)
