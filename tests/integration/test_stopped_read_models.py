"""A read model that cannot apply an event, on SQLite and PostgreSQL: it stops alone, says so
once per back-off step, resumes by itself and never skips an event; a NUL from an old release
does not stop anything; a projection whose version changed rebuilds itself; a rebuild goes on
past a read model that fails, and `projections status` reports without changing anything."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from aytada_es import cli
from aytada_es.adapters.sql import SQLStore, Transaction
from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.domain.account import Account
from aytada_es.domain.project import Project
from aytada_es.projections import (
    Accounts,
    Backoff,
    CardChange,
    MyVideos,
    Projection,
    ReadModelRunner,
    ReadModels,
    Stopped,
    read_models,
)
from aytada_es.projections.base import DomainEvent

LIMIT = 5  # the runner's batch, small so that a few commands fill several
RUNNER_LOG = "aytada_es.projections.runner"


class Clock:
    """A clock the test moves, so that back-off waits pass when it says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def passes(self, seconds: float) -> None:
        self.now += seconds


class Tally(Projection):
    """A test read model, one row per event, that fails on every event while `faulty` is set."""

    name = "tally"
    tables = ("test_tally",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS {test_tally} (position BIGINT PRIMARY KEY, type TEXT NOT NULL)",
    )
    faulty = False

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        tx.execute(
            "INSERT INTO {test_tally} (position, type) VALUES (?, ?)",
            (position, type(event).__name__),
        )
        if self.faulty:
            raise RuntimeError("no space left on device")
        return ()


def an_owner(studio: Studio, name: str = "ada", credits: int = 10_000) -> UUID:
    account, _ = studio.open_account(name, credits=credits)
    return account.id


def a_project(studio: Studio, owner: UUID, title: str = "Sparkling water") -> UUID:
    project = studio.create_project(owner, title=title, format="9:16", brief="b", actor="user")
    return project.id


def last_position(studio: Studio) -> int:
    return studio.recorder.max_notification_id() or 0


def drain(runner: ReadModelRunner, limit: int = LIMIT) -> int:
    """Catch up until nothing is left for the read models that are not waiting; how many polls."""
    polls = 1
    while runner.catch_up(limit):
        polls += 1
    return polls


def the_stop(runner: ReadModelRunner) -> Stopped:
    (stopped,) = [s.stopped for s in runner.statuses() if s.stopped is not None]
    return stopped


def rows(store: SQLStore, table: str, key: str) -> list[dict[str, Any]]:
    return store.query(f"SELECT * FROM {{{table}}} ORDER BY {key}")


def failure_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == RUNNER_LOG
        and f"read model {name!r}" in r.getMessage()
        and "cannot apply" in r.msg
    ]


def test_a_read_model_that_cannot_apply_an_event_stops_alone_and_resumes_exactly(
    studio: Studio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=RUNNER_LOG)
    store = SQLStore.of(studio)
    tally, accounts, videos = Tally(store), Accounts(store), MyVideos(store)
    clock = Clock()
    runner = ReadModelRunner(
        studio, [tally, accounts, videos], store, backoff=Backoff(1.0, 60.0), clock=clock
    )
    owner = an_owner(studio)
    drain(runner)
    tally.faulty = True
    failing = last_position(studio) + 1

    for i in range(6):  # 3 events each: more than three batches past the failing event
        studio.request_ideas(owner, a_project(studio, owner, f"Ad {i}"), actor="user")
    last = last_position(studio)
    assert last - failing >= 3 * LIMIT
    assert drain(runner) >= 4  # several full batches, one poll each, without waiting

    assert accounts.position() == videos.position() == last
    assert tally.position() == failing - 1
    assert [r["position"] for r in rows(store, "test_tally", "position")] == list(range(1, failing))
    first = the_stop(runner)
    assert (first.name, first.position, first.attempts) == ("tally", failing, 1)
    assert first.error == "RuntimeError: no space left on device"
    assert 0.75 <= first.next_retry - clock.now <= 1.0
    # While it waits, polls neither retry it nor log.
    for _ in range(20):
        assert runner.catch_up(LIMIT) == 0
    (line,) = failure_lines(caplog, "tally")
    assert line.levelno == logging.ERROR and line.exc_info is not None

    # Each back-off step: one retry, one line without a traceback; the wait doubles.
    for attempt, longest in ((2, 2.0), (3, 4.0), (4, 8.0)):
        clock.passes(the_stop(runner).next_retry - clock.now)
        for _ in range(5):
            runner.catch_up(LIMIT)
        stopped = the_stop(runner)
        assert (stopped.position, stopped.attempts, stopped.since) == (
            failing,
            attempt,
            first.since,
        )
        assert 0.75 * longest <= stopped.next_retry - clock.now <= longest
    lines = failure_lines(caplog, "tally")
    assert len(lines) == 4
    assert all(r.exc_info is None for r in lines[1:])
    assert "(attempt 4)" in lines[-1].getMessage() and "next try at" in lines[-1].getMessage()
    studio.request_ideas(owner, a_project(studio, owner, "Later"), actor="user")
    drain(runner)
    last = last_position(studio)
    assert accounts.position() == videos.position() == last  # still going on without it

    tally.faulty = False
    assert drain(runner) == 1 and tally.position() == failing - 1  # not before its time
    clock.passes(the_stop(runner).next_retry - clock.now)
    a_project(studio, owner, "Meanwhile")
    last = last_position(studio)
    runner.catch_up(LIMIT)
    # It resumes a batch at a time; the others, far ahead, still get their new event at once.
    assert tally.position() == failing - 1 + LIMIT
    assert accounts.position() == videos.position() == last
    drain(runner)

    assert runner.positions() == {"tally": last, "accounts": last, "videos": last}
    assert all(s.stopped is None and s.healthy for s in runner.statuses())
    assert store.query("SELECT * FROM {aytada_projection_errors}") == []
    assert any("read model 'tally' resumed" in r.getMessage() for r in caplog.records)
    resumed = {
        t: rows(store, t, k)
        for t, k in (("test_tally", "position"), ("aytada_accounts", "id"), ("aytada_videos", "id"))
    }
    assert [r["position"] for r in resumed["test_tally"]] == list(range(1, last + 1))
    runner.rebuild(limit=LIMIT)
    rebuilt = {
        t: rows(store, t, k)
        for t, k in (("test_tally", "position"), ("aytada_accounts", "id"), ("aytada_videos", "id"))
    }
    assert resumed == rebuilt


def test_an_old_event_with_a_nul_in_its_text_is_applied_by_every_read_model(
    studio: Studio, models: ReadModels, database_url: str
) -> None:
    owner = an_owner(studio)
    # As a release that did not refuse NUL stored it: past the command's checks.
    project = Project._create(
        Project.ProjectCreated,
        owner_id=owner,
        title="Fizz\x00Pop",
        format="9:16",
        brief="Bubbles\x00 and fruit.",
        autopilot=False,
        actor="user:ada",
    )
    studio.save(project)
    studio.request_ideas(owner, project.id, actor="user:ada")

    models.catch_up()

    last = last_position(studio)
    assert all(s.stopped is None for s in models.statuses())
    assert models.positions() == {p.name: last for p in models.projections}
    # PostgreSQL text cannot hold NUL: it shows U+FFFD; SQLite keeps the text as it is.
    shown = "Fizz\ufffdPop" if database_url.startswith("postgresql") else "Fizz\x00Pop"
    _, cards = models.videos.videos_of(owner)
    assert [c["title"] for c in cards] == [shown]
    history = models.credits.statement(owner)["history"]
    assert [m["project_title"] for m in history if m["project_id"]] == [shown]


def test_an_event_no_one_can_decode_stops_every_read_model_just_before_it(
    studio: Studio, models: ReadModels
) -> None:
    owner = an_owner(studio)
    # Stored by a release that had an event type this one does not know.
    gone = StoredEvent(uuid4(), 1, "aytada_es.domain.project:Project.Vanished", b"{}")
    studio.recorder.insert_events([gone])
    unknown = last_position(studio)
    a_project(studio, owner, "After")

    models.catch_up()

    statuses = models.statuses()
    assert {s.position for s in statuses} == {unknown - 1}  # nothing after it either
    assert {s.stopped.position for s in statuses if s.stopped is not None} == {unknown}
    assert all(not s.healthy and s.lag_s is None for s in statuses)
    assert models.catch_up() == 0  # waiting out their back-off, not retrying at every poll


class Shelf(Projection):
    """A test read model in its first version: each project's title."""

    name = "shelf"
    tables = ("test_shelf",)
    ddl = ("CREATE TABLE IF NOT EXISTS {test_shelf} (id TEXT PRIMARY KEY, title TEXT NOT NULL)",)

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if isinstance(event, Project.ProjectCreated):
            tx.execute(
                "INSERT INTO {test_shelf} (id, title) VALUES (?, ?)",
                (str(event.originator_id), event.title),
            )
        return ()


class ShelfWithFormats(Shelf):
    """Its second version: a new column, which an existing table does not have."""

    version = 2
    ddl = (
        "CREATE TABLE IF NOT EXISTS {test_shelf}"
        " (id TEXT PRIMARY KEY, title TEXT NOT NULL, format TEXT NOT NULL)",
    )

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        if isinstance(event, Project.ProjectCreated):
            tx.execute(
                "INSERT INTO {test_shelf} (id, title, format) VALUES (?, ?, ?)",
                (str(event.originator_id), event.title, event.format),
            )
        return ()


def test_a_projection_whose_version_changed_rebuilds_itself_while_the_others_keep_their_place(
    studio: Studio, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLStore.of(studio)
    old = ReadModelRunner(studio, [Shelf(store), Accounts(store)], store)
    owner = an_owner(studio)
    titles = {str(a_project(studio, owner, f"Ad {i}")): f"Ad {i}" for i in range(3)}
    drain(old)
    last = last_position(studio)
    assert rows(store, "test_shelf", "id") == [
        {"id": id, "title": title} for id, title in sorted(titles.items())
    ]

    new = ReadModelRunner(studio, [ShelfWithFormats(store), Accounts(store)], store)

    assert new.positions() == {"shelf": 0, "accounts": last}
    assert rows(store, "test_shelf", "id") == []  # made anew, with the new column
    # A runner of the older release still running leaves the newer read model alone.
    drain(old)
    assert rows(store, "test_shelf", "id") == []
    assert old.positions() == {"shelf": 0, "accounts": last}
    assert any("left alone" in r.getMessage() for r in caplog.records)

    drain(new)
    assert rows(store, "test_shelf", "id") == [
        {"id": id, "title": title, "format": "9:16"} for id, title in sorted(titles.items())
    ]
    assert new.positions() == {"shelf": last, "accounts": last}
    # Starting the same version again changes nothing.
    again = ReadModelRunner(studio, [ShelfWithFormats(store), Accounts(store)], store)
    assert again.positions() == {"shelf": last, "accounts": last}
    assert len(rows(store, "test_shelf", "id")) == 3


@pytest.fixture
def models(studio: Studio) -> ReadModels:
    return read_models(studio)


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI, run in this process, reads the test's database."""
    monkeypatch.setenv("AYTADA_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AYTADA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AYTADA_PROVIDERS", "instant")


def test_rebuild_finishes_every_other_read_model_and_exits_1_naming_the_one_that_stopped(
    studio: Studio, models: ReadModels, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = an_owner(studio)
    a_project(studio, owner, "Before")
    account = studio.account(owner)
    # As a release that did not cap amounts stored it: too large for an INTEGER column.
    account.trigger_event(Account.CreditsGranted, amount=10**30, actor="cli")
    studio.save(account)
    bad = last_position(studio)
    an_owner(studio, "bob")
    studio.request_ideas(owner, a_project(studio, owner, "After"), actor="user:ada")
    last = last_position(studio)
    drain(models)
    live = {
        "videos": rows(models.store, "aytada_videos", "id"),
        "owners": rows(models.store, "aytada_owner_names", "account_id"),
    }

    assert cli.main(["projections", "rebuild"]) == 1

    out, err = capsys.readouterr()
    for name in ("accounts", "credits"):
        assert f"read model {name!r} stopped at event {bad}: " in err
    assert "rebuilt every read model but accounts, credits" in out
    positions = models.positions()
    assert {n: p for n, p in positions.items() if n not in ("accounts", "credits")} == {
        "videos": last,
        "deleted": last,
        "scripts": last,
        "images": last,
        "open_steps": last,
    }
    assert positions["accounts"] == positions["credits"] < bad
    assert {
        "videos": rows(models.store, "aytada_videos", "id"),
        "owners": rows(models.store, "aytada_owner_names", "account_id"),
    } == live

    # Status reads: with new events waiting and the back-off over, it applies nothing.
    an_owner(studio, "cy")
    errors = rows(models.store, "aytada_projection_errors", "name")
    assert cli.main(["projections", "status", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is False
    by_name = {m["name"]: m for m in report["read_models"]}
    assert by_name["accounts"]["stopped"]["position"] == bad
    assert by_name["accounts"]["stopped"]["attempts"] == 1
    assert by_name["credits"]["healthy"] is False
    assert by_name["videos"]["stopped"] is None and by_name["videos"]["healthy"] is True
    assert by_name["videos"]["lag_events"] == last_position(studio) - last
    assert models.positions() == positions
    assert rows(models.store, "aytada_projection_errors", "name") == errors

    assert cli.main(["projections", "status"]) == 1
    text = capsys.readouterr().out
    assert f"STOPPED at event {bad}" in text and "needs attention: accounts, credits" in text


def test_a_fresh_store_starts_its_read_models_without_making_any_anew(
    studio: Studio, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLStore.of(studio)
    with caplog.at_level(logging.INFO, logger="aytada_es.projections.runner"):
        runner = ReadModelRunner(studio, [ShelfWithFormats(store), Accounts(store)], store)
    assert runner.positions() == {"shelf": 0, "accounts": 0}
    assert "made anew" not in caplog.text  # the first start of a service warns of nothing
