"""Generations of the read models, on SQLite and PostgreSQL: a live rebuild builds the next one
beside the serving one, switches in one transaction, and drops the old one; a runner that still
reads the old one applies its next batch to the new one; a failed rebuild switches nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest

from aytada_es.adapters.sql import SQLStore, Transaction
from aytada_es.application import Studio
from aytada_es.projections import (
    CardChange,
    MyVideos,
    Projection,
    ProjectionFailed,
    ReadModelRunner,
    ReadModels,
)
from aytada_es.projections.base import POSITIONS, DomainEvent
from aytada_es.projections.generations import serving
from aytada_es.projections.live import SwitchFailed, rebuild_live


class Tally(Projection):
    """A test read model, one row per event; fails on every event while `faulty` is set."""

    name = "tally"
    tables = ("test_tally",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS {test_tally} (position BIGINT PRIMARY KEY, type TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS test_tally_by_type ON {test_tally} (type)",
    )
    faulty = False

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if self.faulty:
            raise RuntimeError("no space left on device")
        tx.execute(
            "INSERT INTO {test_tally} (position, type) VALUES (?, ?)",
            (position, type(event).__name__),
        )
        return ()


def a_project(studio: Studio, owner: UUID, title: str) -> UUID:
    project = studio.create_project(owner, title=title, format="9:16", brief="b", actor="user")
    return project.id


def last(studio: Studio) -> int:
    return studio.recorder.max_notification_id() or 0


def drain(runner: ReadModelRunner) -> None:
    while runner.catch_up():
        pass


def builder(studio: Studio) -> Any:
    def runner_of(store: SQLStore, generation: int) -> ReadModels:
        return ReadModels(studio, store, prepare=False, generation=generation)

    return runner_of


def indexes(store: SQLStore) -> set[str]:
    if store.dialect == "postgres":
        sql = "SELECT indexname AS name FROM pg_indexes WHERE schemaname = ?"
        return {r["name"] for r in store.query(sql, (store.datastore.schema,))}  # type: ignore[union-attr]
    return {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_a_live_rebuild_switches_and_the_serving_runner_follows_at_its_next_batch(
    studio: Studio,
) -> None:
    owner = studio.open_account("ada", credits=10_000)[0].id
    for i in range(3):
        a_project(studio, owner, f"Before {i}")
    # It learns of the switch only inside its next batch.
    models = ReadModels(studio, refresh_s=3600.0)
    changes: list[CardChange] = []
    models.listen(changes.extend)
    drain(models)
    assert models.epoch() == "0"
    assert len(models.videos.videos_of(owner)[1]) == 3

    during: list[str] = []

    def meanwhile(grace_s: float) -> None:
        # Between the switch and the drop: a new event, and the serving runner's next batch.
        during.append(str(a_project(studio, owner, "During the grace")))
        assert models.store.generation == 0
        drain(models)

    done = rebuild_live(studio, builder(studio), grace_s=0.0, sleep=meanwhile)
    assert (done.generation, done.epoch) == (1, "1")
    assert serving(SQLStore.of(studio)) == 1
    # The runner moved to generation 1 and applied the new event there, once, with its change.
    assert models.store.generation == 1 and models.epoch() == "1"
    listed = [c["id"] for c in models.videos.videos_of(owner)[1]]
    assert len(listed) == 4 and during[0] in listed
    assert [c.project_id for c in changes if c.position > done.position] == during
    assert min(models.positions().values()) == last(studio)
    # What `projections status` reads (no runner of its own): the serving generation.
    statuses = ReadModels(studio, prepare=False).statuses()
    assert {s.position for s in statuses} == {last(studio)}
    # Generation 0 is gone; generation 1's tables and indexes are there.
    zero = SQLStore(models.store.datastore)
    assert zero.missing([POSITIONS, "aytada_videos"]) == {POSITIONS, "aytada_videos"}
    assert {"aytada_videos_by_owner_g1", "aytada_video_changes_by_owner_g1"} <= indexes(zero)

    # And again: generation 2 replaces generation 1.
    a_project(studio, owner, "After")
    again = rebuild_live(studio, builder(studio), grace_s=0.0, sleep=lambda s: None)
    assert again.epoch == "2"
    models.follower.refresh()
    assert len(models.videos.videos_of(owner)[1]) == 5
    assert zero.missing(["aytada_videos_g1", "aytada_videos_g2"]) == {"aytada_videos_g1"}


def test_a_failed_live_rebuild_switches_nothing_and_leaves_no_tables(studio: Studio) -> None:
    owner = studio.open_account("ada", credits=10_000)[0].id
    a_project(studio, owner, "Kept")
    store = SQLStore.of(studio)
    models = ReadModelRunner(studio, [MyVideos(store), Tally(store)], store)
    drain(models)

    def runner_of(new: SQLStore, generation: int) -> ReadModelRunner:
        tally = Tally(new)
        tally.faulty = True
        return ReadModelRunner(
            studio, [MyVideos(new), tally], new, prepare=False, generation=generation
        )

    with pytest.raises(ProjectionFailed, match="tally"):
        rebuild_live(studio, runner_of, grace_s=0.0, sleep=lambda s: None)
    assert serving(store) == 0
    assert store.missing(["aytada_videos_g1", "test_tally_g1"]) == {
        "aytada_videos_g1",
        "test_tally_g1",
    }
    assert len(store.query("SELECT * FROM {test_tally}")) == last(studio)


def test_what_a_failed_attempt_left_is_made_anew(studio: Studio) -> None:
    owner = studio.open_account("ada", credits=10_000)[0].id
    a_project(studio, owner, "Kept")
    store = SQLStore.of(studio)
    ReadModelRunner(studio, [Tally(store)], store)
    leftover = SQLStore.of(studio)
    left = ReadModelRunner(studio, [Tally(leftover)], leftover, generation=1)
    with leftover.transaction() as tx:
        tx.execute("INSERT INTO {test_tally} (position, type) VALUES (999999, 'Junk')")
    assert left.generation == 1

    def runner_of(new: SQLStore, generation: int) -> ReadModelRunner:
        return ReadModelRunner(studio, [Tally(new)], new, prepare=False, generation=generation)

    rebuild_live(studio, runner_of, grace_s=0.0, sleep=lambda s: None)
    store.switch(1, {"test_tally": "test_tally_g1"})
    types = [r["type"] for r in store.query("SELECT type FROM {test_tally} ORDER BY position")]
    assert "Junk" not in types and len(types) == last(studio)


def test_one_live_rebuild_at_a_time(studio: Studio) -> None:
    owner = studio.open_account("ada", credits=10_000)[0].id
    a_project(studio, owner, "Kept")
    models = ReadModels(studio)
    drain(models)
    refused: list[str] = []

    def meanwhile(grace_s: float) -> None:
        with pytest.raises(SwitchFailed, match="another live rebuild") as second:
            rebuild_live(studio, builder(studio), grace_s=0.0, sleep=lambda s: None)
        refused.append(str(second.value))

    assert rebuild_live(studio, builder(studio), grace_s=0.0, sleep=meanwhile).epoch == "1"
    assert len(refused) == 1
    assert serving(SQLStore.of(studio)) == 1
    # Released: the next one runs.
    assert rebuild_live(studio, builder(studio), grace_s=0.0, sleep=lambda s: None).epoch == "2"
