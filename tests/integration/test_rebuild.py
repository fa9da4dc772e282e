"""The fast rebuild gives, row for row, the read models the live runner built event by event
(SQLite and PostgreSQL), over a varied history: failures, retries, cancels, add-ons, assets,
deletes, restores and credits."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import pytest

from aytada_es.adapters.sealed_text import SEALED, SealedTextMapper, each_string
from aytada_es.adapters.sql import Transaction
from aytada_es.adapters.sqlite import notifications_from
from aytada_es.application import Studio
from aytada_es.domain.errors import AytadaError
from aytada_es.domain.project import Project
from aytada_es.projections import CardChange, Projection, ReadModelRunner, ReadModels, read_models
from aytada_es.projections.base import Batch, DomainEvent
from aytada_es.projections.credits import MOVEMENTS as CREDIT_MOVEMENTS
from aytada_es.projections.runner import REBUILD_BATCH
from aytada_es.projections.videos import CHANGES
from aytada_es.testing.history import project_history, store_history

OWNERS = 4
VARIED = {
    *("StepFailed", "StepRetried", "StepCancelled", "AddOnCompleted", "AssetsAdded"),
    *("ProjectDeleted", "ProjectRestored", "CreditsGranted", "HoldReleased"),
}


def every_row(models: ReadModels) -> dict[str, list[str]]:
    """Every row of every read model's tables but the change feed, in a stable order."""
    return {
        table: sorted(
            json.dumps(row, sort_keys=True, default=str)
            for row in models.store.query(f"SELECT * FROM {{{table}}}")
        )
        for projection in models.projections
        for table in projection.tables
        if table != CHANGES
    }


def latest_cards(models: ReadModels) -> dict[str, Any]:
    """Each listed project's card in its latest change-feed row (the feed's rows are per batch)."""
    rows = models.store.query(
        "SELECT project_id, card FROM {aytada_video_changes} ORDER BY position"
    )
    latest = {row["project_id"]: row["card"] for row in rows}
    return {project_id: card for project_id, card in latest.items() if card is not None}


def live(studio: Studio, models: ReadModels, projects: int) -> None:
    """Store project lives one after another, the runner catching up in small batches between."""
    owners = [studio.open_account(f"live-{o}", credits=10**6)[0].id for o in range(OWNERS)]
    for i in range(projects):
        project_history(studio, owners[i % OWNERS], i)
        if i % 6 == 5:
            studio.grant_credits(f"live-{i % OWNERS}", 40)
        while models.catch_up(limit=5 + i % 17):
            pass


def test_a_rebuild_gives_every_row_the_live_runner_built(studio: Studio) -> None:
    models = read_models(studio)
    live(studio, models, projects=40)
    stored = studio.recorder.select_notifications(1, 10**6)
    kinds = {n.topic.rsplit(".", 1)[-1] for n in stored}
    assert kinds >= VARIED, VARIED - kinds
    before = every_row(models), latest_cards(models), models.positions()
    assert all(before[0].values())  # every table has rows

    replayed = models.rebuild()

    assert replayed == len(stored)
    assert (every_row(models), latest_cards(models), models.positions()) == before


def test_a_rebuild_over_many_batches_equals_one_in_a_single_batch(studio: Studio) -> None:
    models = read_models(studio)
    store_history(studio, projects=30, owners=OWNERS)
    stored = len(studio.recorder.select_notifications(1, 10**6))
    assert stored < REBUILD_BATCH
    models.rebuild()
    whole = every_row(models), latest_cards(models), models.positions()

    assert models.rebuild(limit=9) == stored

    assert (every_row(models), latest_cards(models), models.positions()) == whole


def test_a_batch_that_need_not_wait_for_the_disk_commits_and_leaves_the_others_durable(
    studio: Studio,
) -> None:
    store = read_models(studio).store
    sql = "SHOW synchronous_commit" if store.dialect == "postgres" else "PRAGMA synchronous"

    def setting(tx: Transaction) -> object:
        return next(iter(tx.query(sql)[0].values()))

    with store.transaction() as tx:
        durable = setting(tx)
    with store.transaction(durable=False) as tx:
        relaxed = setting(tx)
        tx.execute("INSERT INTO {aytada_owner_names} (account_id, name) VALUES (?, ?)", ("a", "b"))
    with store.transaction() as tx:
        after = setting(tx)

    assert (durable, relaxed, after) == (
        ("on", "off", "on") if store.dialect == "postgres" else (2, 1, 2)
    )
    assert store.query("SELECT name FROM {aytada_owner_names} WHERE account_id = 'a'") == [
        {"name": "b"}
    ]


class Requests(Projection):
    """A test read model that names its events: one row per step request (subclasses too)."""

    name = "requests"
    tables = ("test_requests",)
    ddl = ("CREATE TABLE IF NOT EXISTS {test_requests} (position BIGINT PRIMARY KEY, type TEXT)",)
    events = (Project.StepRequested,)

    def begin(self, tx: Transaction, batch: Batch) -> None:
        self.seen = [type(event) for _, event in batch]

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        tx.execute(
            "INSERT INTO {test_requests} (position, type) VALUES (?, ?)",
            (position, type(event).__name__),
        )
        return ()


def test_a_read_model_gets_only_the_events_it_names_and_its_position_passes_the_others(
    studio: Studio,
) -> None:
    store_history(studio, projects=3, owners=1)
    stored = studio.recorder.select_notifications(1, 10**6)
    requests = Requests(read_models(studio).store)
    runner = ReadModelRunner(studio, [requests])

    assert runner.catch_up(limit=10**6) == len(stored)

    expected = [
        (n.id, type(e).__name__)
        for n in stored
        if isinstance(e := studio.mapper.to_domain_event(n), Project.StepRequested)
    ]
    assert len({kind for _, kind in expected}) == 6 and len(expected) < len(stored) / 3
    rows = requests.store.query("SELECT position, type FROM {test_requests} ORDER BY position")
    assert [(row["position"], row["type"]) for row in rows] == expected
    assert all(issubclass(kind, Project.StepRequested) for kind in requests.seen)
    assert runner.positions() == {"requests": stored[-1].id}


def test_read_models_built_from_only_the_personal_text_they_read_equal_ones_built_from_all(
    studio: Studio, monkeypatch: Any
) -> None:
    models = read_models(studio)
    store_history(studio, projects=30, owners=OWNERS)
    for n in studio.recorder.select_notifications(1, 10**6):
        if n.topic.endswith("ProjectCreated") and n.originator_version == 1:
            project = studio.recorder.select_events(n.originator_id)  # deleted ones too
            owner = studio.mapper.to_domain_event(project[0]).owner_id  # type: ignore[attr-defined]
            with contextlib.suppress(AytadaError):  # a deleted project cannot be renamed
                studio.rename_project(owner, n.originator_id, title="Renamed", actor="owner")
    # Each read model rebuilt alone: only the fields it names itself are opened.
    for projection in models.projections:
        ReadModelRunner(studio, [projection], models.store, prepare=False).rebuild()
    selective = every_row(models), latest_cards(models)
    texts = json.dumps(selective)
    assert "Renamed" in texts
    assert "aes1:" not in texts and "[erased]" not in texts  # json.dumps escapes SEALED's ESC
    # Every personal field opened, whatever the read models read.
    monkeypatch.setattr(ReadModelRunner, "_personal_reads", lambda self, due: None)

    models.rebuild()

    assert (every_row(models), latest_cards(models)) == selective


def test_only_the_personal_fields_asked_for_are_opened(studio: Studio) -> None:
    store_history(studio, projects=3, owners=1)
    stored = studio.recorder.select_notifications(1, 10**6)
    assert isinstance(studio.mapper, SealedTextMapper)
    created = next(n for n in stored if n.topic.endswith("ProjectCreated"))
    ideas = next(n for n in stored if n.topic.endswith("IdeasGenerated"))
    script = next(n for n in stored if n.topic.endswith("ScriptGenerated"))
    only = {"ProjectCreated": ("title",), "IdeasGenerated": ()}

    event, ideas_event, script_event = (
        studio.mapper.opening(n, only=only) for n in (created, ideas, script)
    )
    opened, idea_texts = vars(event), []
    each_string(vars(ideas_event)["ideas"], lambda text: idea_texts.append(text) or text)
    full = vars(studio.mapper.to_domain_event(created))

    assert opened["title"] == full["title"] and not opened["title"].startswith(SEALED)
    assert opened["brief"].startswith(SEALED) and not full["brief"].startswith(SEALED)
    assert idea_texts and all(text.startswith(SEALED) for text in idea_texts)
    # A class it does not name is opened whole.
    assert vars(script_event)["script"] == vars(studio.mapper.to_domain_event(script))["script"]
    assert "aes1:" not in json.dumps(vars(script_event)["script"])


def test_the_log_read_as_plain_rows_is_the_log_the_library_reads(studio: Studio) -> None:
    store_history(studio, projects=3, owners=1)
    recorder = studio.recorder
    last = recorder.max_notification_id() or 0
    assert last > 20
    for start, limit in ((1, 7), (5, last), (last, 10), (last + 1, 10), (1, 10**6)):
        expected = recorder.select_notifications(start, limit, inclusive_of_start=True)
        assert notifications_from(recorder, start, limit) == expected


def _indexes(models: ReadModels) -> set[str]:
    store = models.store
    if store.dialect == "postgres":
        sql = "SELECT indexname AS name FROM pg_indexes WHERE schemaname = ?"
        return {r["name"] for r in store.query(sql, (store.datastore.schema,))}  # type: ignore[union-attr]
    return {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_a_rebuild_makes_the_plain_indexes_once_at_the_end_even_when_it_fails(
    studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = read_models(studio)
    live(studio, models, projects=3)
    before = _indexes(models)
    plain = {
        "aytada_credit_movements_by_account",
        "aytada_assets_by_owner",
        "aytada_videos_by_owner",
    }
    assert plain <= before
    during: list[set[str]] = []
    replay = models._replay

    def watched(*args: Any) -> Any:
        during.append(_indexes(models))
        return replay(*args)

    monkeypatch.setattr(models, "_replay", watched)
    models.rebuild()
    assert during[0].isdisjoint(plain)  # while rows go in, no plain index is kept up to date
    assert during[0] > set()  # the keys stay: they keep the rows unique
    assert _indexes(models) == before
    assert every_row(models)[CREDIT_MOVEMENTS]  # and the rows are there

    def broken(*args: Any) -> Any:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(models, "_replay", broken)
    with pytest.raises(RuntimeError):
        models.rebuild()
    assert _indexes(models) == before
