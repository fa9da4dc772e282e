"""Generations of read-model tables: their names, their DDL, a store's switch, and how often a
process re-reads which one serves."""

from __future__ import annotations

from pathlib import Path

from eventsourcing.sqlite import SQLiteDatastore

from aytada_es.adapters.sql import SQLStore
from aytada_es.projections.generations import (
    POINTER_DDL,
    Follower,
    ddl_of,
    epoch_of,
    renames,
    serving,
)


def a_store(tmp_path: Path) -> SQLStore:
    store = SQLStore(SQLiteDatastore(str(tmp_path / "g.sqlite")))
    store.create(
        ["CREATE TABLE IF NOT EXISTS {t} (v TEXT)", "CREATE TABLE IF NOT EXISTS {t_g1} (v TEXT)"]
    )
    store.execute("INSERT INTO {t} (v) VALUES ('zero')")
    store.execute("INSERT INTO {t_g1} (v) VALUES ('one')")
    return store


def test_generation_0_keeps_the_names_and_others_get_a_suffix_on_tables_and_indexes() -> None:
    assert renames(0, ["a", "b"]) == {}
    assert renames(3, ["a", "b"]) == {"a": "a_g3", "b": "b_g3"}
    statement = "CREATE INDEX IF NOT EXISTS a_by_owner ON {a} (owner)"
    assert ddl_of(0, statement) == statement
    assert ddl_of(3, statement) == "CREATE INDEX IF NOT EXISTS a_by_owner_g3 ON {a} (owner)"
    assert epoch_of(3) == "3"


def test_a_transaction_keeps_the_generation_it_began_with(tmp_path: Path) -> None:
    store = a_store(tmp_path)
    with store.reading() as tx:
        store.switch(1, {"t": "t_g1"})
        assert tx.generation == 0
        assert tx.query("SELECT v FROM {t}") == [{"v": "zero"}]
    assert store.generation == 1
    assert store.query("SELECT v FROM {t}") == [{"v": "one"}]
    assert store.missing(["t"]) == set()
    assert store.renamed("t") == "t_g1"


def test_a_follower_rereads_the_pointer_at_most_every_refresh_s(tmp_path: Path) -> None:
    store = a_store(tmp_path)
    assert serving(store) == 0  # no pointer table yet
    store.create(POINTER_DDL)
    now = [100.0]
    follower = Follower(store, ["t"], refresh_s=0.2, clock=lambda: now[0])
    store.before = follower
    assert store.query("SELECT v FROM {t}") == [{"v": "zero"}]
    store.execute("UPDATE {aytada_read_generation} SET generation = 1 WHERE id = 1")
    now[0] += 0.1
    assert store.query("SELECT v FROM {t}") == [{"v": "zero"}]  # not re-read yet
    now[0] += 0.2
    assert store.query("SELECT v FROM {t}") == [{"v": "one"}]
    assert store.generation == 1
