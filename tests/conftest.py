"""Shared fixtures: a clean database per test (SQLite file or PostgreSQL schema), the broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

from aytada_es.application import Studio
from aytada_es.config import Settings

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
# Every test client comes from 127.0.0.1 and many share a user: the tests of the limits turn
# them on for themselves.
NO_RATE_LIMITS = {"AYTADA_RATE_LIMIT_LOGIN": "0", "AYTADA_RATE_LIMIT_WRITES": "0"}
# Tansu holds each consumer-group join for half the session timeout: a shorter session (the
# lowest the field notes advise) halves the wait of every stage's first join and rebalance.
QUICK_GROUPS = {"AYTADA_KAFKA_SESSION_TIMEOUT_MS": "3000"}


def pytest_configure(config: pytest.Config) -> None:
    """Installed plug-ins do not run in this suite, and consumer groups join quickly: every
    `aytada-es` it starts inherits this."""
    os.environ["AYTADA_PLUGINS"] = "none"
    os.environ.update(QUICK_GROUPS)


def _postgres_up() -> bool:
    try:
        with psycopg.connect(PG_DSN):
            return True
    except psycopg.OperationalError:
        return False


def unavailable(reason: str) -> NoReturn:
    """A service a test needs is missing: a failure in CI, where it must be there; else a skip."""
    if IN_CI:
        pytest.fail(f"in CI, where it must be there: {reason}", pytrace=False)
    pytest.skip(reason)


def require_postgres() -> None:
    """Fail in CI, skip elsewhere, when PostgreSQL is not running."""
    if not _postgres_up():
        unavailable("PostgreSQL is not running on 127.0.0.1:5432 (database 'test')")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI nothing may skip, whatever skipped it (`unavailable` already fails there)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where it must run: {report.longrepr}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the `test` database, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'aytada.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "AYTADA_DATA_DIR": str(tmp_path / "var"),
            "AYTADA_DATABASE_URL": database_url,
            "AYTADA_KAFKA_NAMESPACE": f"t{uuid.uuid4().hex[:10]}.",
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_STAGE_BACKOFF_S": "0.01",
            "AYTADA_STAGE_ATTEMPTS": "3",
            **NO_RATE_LIMITS,
            **QUICK_GROUPS,
        }
    )


@pytest.fixture
def studio(settings: Settings) -> Iterator[Studio]:
    app = Studio(settings.database().eventsourcing_env())
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """The real bundled Kafka-protocol broker (Tansu), shared by the session's tests."""
    from aytada_es.kafka.broker import BundledBroker

    with BundledBroker() as running:
        yield running.bootstrap


@pytest.fixture
def aytada_settings(settings: Settings) -> Settings:
    """The stage kit's fixtures (aytada_es.testing) on both stores, as every test here runs."""
    return settings


@pytest.fixture(scope="session")
def aytada_broker(broker: str) -> str:
    """The stage kit's broker is this suite's broker."""
    return broker
