"""Erasure by crypto-shredding: what `aytada-es users erase NAME` does, step by step."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.sqlite import SQLiteDatastore

from .adapters.assets import AssetStore
from .adapters.chain import stored_history
from .adapters.sealed_text import ERASED, PERSONAL, SEALED, each_string
from .adapters.sql import SQLStore, from_json, to_json
from .application import Studio
from .domain.errors import AssetNotFound
from .projections.base import chunks
from .projections.runner import ReadModels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erasure:
    """What an erasure did."""

    account_id: UUID
    position: int | None  # of AccountErased; None when the account was erased before
    projects: int
    assets_deleted: int
    assets_shared: int  # kept: another user's project holds the same content
    compacted: bool  # no free page or journal of the database still holds the old text
    # Events stored before text was sealed (release 1): the chain forbids rewriting them.
    plaintext_events: int = 0


def erase_user(
    studio: Studio, read_models: ReadModels, assets: AssetStore, name: str, *, actor: str = "cli"
) -> Erasure:
    """Destroy the user's key, overwrite their text in the read models, delete their assets.

    Each step can be run again: an interrupted erasure is finished by running it once more.
    """
    account_id, position = studio.erase_account(name, actor=actor)
    projects = studio.projects_owned_by(account_id)
    ids = [str(p) for p in projects]
    read_models.erase(ids)
    store = SQLStore.of(studio)
    _erase_call_results(store, ids)
    _erase_webhook_bodies(store, ids)
    deleted, shared = _delete_assets(studio, assets, projects)
    plaintext = sum(_plaintext_events(studio, p) for p in projects)
    return Erasure(account_id, position, len(projects), deleted, shared, compact(store), plaintext)


def _plaintext_events(studio: Studio, project_id: UUID) -> int:
    """How many of the project's stored events hold personal text that was never sealed."""
    count = 0
    for stored in stored_history(studio, project_id):
        fields = PERSONAL.get(stored.topic.rpartition(".")[2])
        if not fields:
            continue
        event = studio.sealed_mapper.to_domain_event(stored)
        texts = [t for field in fields for t in _strings(getattr(event, field))]
        count += any(t and not t.startswith(SEALED) and t != ERASED for t in texts)
    return count


def _erase_call_results(store: SQLStore, project_ids: list[str]) -> None:
    """The provider call ledger keeps each call's answer: the user's ideas, script, scenes."""
    if store.missing(["aytada_provider_calls"]):
        return
    with store.transaction() as tx:
        for project_id in project_ids:  # a call's key starts with its project's id
            rows = tx.query(
                "SELECT key, result FROM {aytada_provider_calls}"
                " WHERE key LIKE ? AND result IS NOT NULL",
                (f"{project_id}/%",),
            )
            erased = [
                (to_json(each_string(from_json(r["result"]), lambda _: ERASED)), r["key"])
                for r in rows
            ]
            tx.executemany("UPDATE {aytada_provider_calls} SET result = ? WHERE key = ?", erased)


def _erase_webhook_bodies(store: SQLStore, project_ids: list[str]) -> None:
    """A webhook delivery's body is the project's card, title included."""
    if store.missing(["aytada_webhook_deliveries"]):
        return
    with store.transaction() as tx:
        for chunk in chunks(project_ids):
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT webhook_id, body FROM {aytada_webhook_deliveries}"  # noqa: S608 (ours)
                f" WHERE project_id IN ({marks})"
            )
            erased = []
            for row in tx.query(sql, chunk):
                body = from_json(row["body"])
                if isinstance(body, dict) and isinstance(body.get("data"), dict):
                    body["data"] = {**body["data"], "title": ERASED}
                erased.append((to_json(body), row["webhook_id"]))
            tx.executemany(
                "UPDATE {aytada_webhook_deliveries} SET body = ? WHERE webhook_id = ?", erased
            )


def _delete_assets(studio: Studio, assets: AssetStore, projects: list[UUID]) -> tuple[int, int]:
    """Delete the files of the projects' assets that no other project holds."""
    deleted = shared = 0
    ids = {str(a["id"]) for project_id in projects for a in studio.project(project_id).assets}
    for asset_id in sorted(ids):
        # Assets are stored by content: another user's project may hold the same file. The
        # event store says so (asset records are not sealed), whatever the read models know.
        if _holders(studio, asset_id) - set(projects):
            shared += 1
            continue
        with contextlib.suppress(AssetNotFound, FileNotFoundError):
            assets.path(asset_id).unlink()
            deleted += 1
    return deleted, shared


def _holders(studio: Studio, asset_id: str) -> set[UUID]:
    """Every aggregate with a stored event that names the asset."""
    store = SQLStore.of(studio)
    table = getattr(studio.recorder, "events_table_name", "stored_events")
    found = "instr(state, ?) > 0" if store.dialect == "sqlite" else "position(? in state) > 0"
    rows = store.query(
        f"SELECT DISTINCT originator_id FROM {{{table}}} WHERE {found}",  # noqa: S608 (ours)
        (asset_id.encode(),),
    )
    return {
        id if isinstance(id, UUID) else UUID(str(id)) for id in (r["originator_id"] for r in rows)
    }


# The positions of eventsourcing's table of stored events (the application recorder's).
POSITIONS = "SELECT count(*), max(rowid), total(rowid) FROM stored_events"


def compact(store: SQLStore) -> bool:
    """Rewrite the database so the overwritten text leaves no free page or journal behind.

    SQLite: VACUUM, then a checkpoint that empties the write-ahead log (False when another
    process's open read kept some of it). PostgreSQL: VACUUM of every table, so the old row
    versions are dropped (their space is reused, not zeroed).
    """
    datastore = store.datastore
    if isinstance(datastore, SQLiteDatastore):
        with datastore.get_connection(commit=True) as connection:  # the writer's turn
            raw = connection._sqlite_conn  # VACUUM needs the driver's own connection
            # An event's position is its rowid, and SQLite documents that VACUUM may renumber
            # the rowids of a table with no INTEGER PRIMARY KEY (3.40 keeps them): check it.
            try:
                before = tuple(raw.execute(POSITIONS).fetchone())
                raw.execute("VACUUM")
                after = tuple(raw.execute(POSITIONS).fetchone())
                busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError as e:  # another process is reading or writing
                log.warning("could not compact the database yet: %s", e)
                return False
            if after != before:
                raise RuntimeError(f"VACUUM renumbered the stored events: {before} -> {after}")
        return not busy
    tables = store.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = ?", (datastore.schema,)
    )
    with datastore.get_connection() as pg:
        pg.autocommit = True  # VACUUM cannot run in a transaction
        try:
            for row in tables:
                pg.execute(f'VACUUM "{datastore.schema}"."{row["tablename"]}"')
        finally:
            pg.autocommit = False
    return True


def _strings(value: object) -> list[str]:
    found: list[str] = []
    each_string(value, lambda text: found.append(text) or text)  # type: ignore[func-returns-value]
    return found
