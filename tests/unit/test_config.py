"""Settings are read once from the environment and fail loudly on bad values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aytada_es.config import Settings
from aytada_es.domain.errors import ConfigError
from aytada_es.kafka import clients


def test_a_relative_data_dir_is_made_absolute_so_child_processes_find_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"AYTADA_DATA_DIR": "var"})
    assert settings.data_dir == tmp_path / "var"
    assert settings.assets_dir.is_absolute()
    database = settings.database()
    assert database.kind == "sqlite" and os.path.isabs(database.path)


def test_defaults_are_the_embedded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "var"
    assert settings.providers == "local" and settings.kafka_bootstrap is None
    assert settings.topic_partitions == 6
    assert (settings.ws_per_user, settings.rate_limit_login, settings.rate_limit_writes) == (
        20,
        10,
        120,
    )
    assert settings.allowed_host_names() == {"127.0.0.1", "localhost", "::1"}


def test_allowed_hosts_default_to_the_public_urls_host_and_loopback() -> None:
    public = Settings.from_env({"AYTADA_PUBLIC_URL": "https://Ads.Example.com:8443/app"})
    assert public.allowed_host_names() == {"ads.example.com", "127.0.0.1", "localhost", "::1"}
    named = Settings.from_env({"AYTADA_ALLOWED_HOSTS": "a.example, [::1],B.example."})
    assert named.allowed_host_names() == {"a.example", "::1", "b.example"}
    assert Settings.from_env({"AYTADA_ALLOWED_HOSTS": "*"}).allowed_host_names() == {"*"}
    assert Settings.from_env({"AYTADA_RATE_LIMIT_LOGIN": "0"}).rate_limit_login == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AYTADA_PROVIDERS", "magic"),
        ("AYTADA_TOPIC_PARTITIONS", "zero"),
        ("AYTADA_TOPIC_PARTITIONS", "0"),
        ("AYTADA_STAGE_ATTEMPTS", "-1"),
        ("AYTADA_DATABASE_URL", "mysql://db"),
        ("AYTADA_DATABASE_URL", "sqlite:///:memory:"),
        ("AYTADA_KAFKA_NAMESPACE", "has space"),
        ("AYTADA_SESSION_TTL_S", "0"),
        ("AYTADA_SESSION_IDLE_S", "-1"),
        ("AYTADA_WS_PER_USER", "0"),
        ("AYTADA_WS_PER_USER", "²"),
        ("AYTADA_RATE_LIMIT_LOGIN", "-1"),
        ("AYTADA_RATE_LIMIT_WRITES", "many"),
        ("AYTADA_ALLOWED_HOSTS", "app.example:8000"),
        ("AYTADA_ALLOWED_HOSTS", "https://app.example"),
        ("AYTADA_ALLOWED_HOSTS", " , "),
        ("AYTADA_PLUGINS", "aytada captions"),
        ("AYTADA_PLUGINS", " , "),
        ("AYTADA_DEADLINE_VIDEO_S", "soon"),
        ("AYTADA_DEADLINE_VIDEO_S", "-1"),
        ("AYTADA_DEADLINE_IDEAS_S", "nan"),
        ("AYTADA_DEADLINE_CAPTIONS_S", "inf"),
        ("AYTADA_DEADLINE_DEFAULT_S", "1e9"),
        ("AYTADA_KAFKA_SESSION_TIMEOUT_MS", "1000"),
        ("AYTADA_KAFKA_SESSION_TIMEOUT_MS", "3s"),
        ("AYTADA_TOPIC_RETENTION", "7w"),
        ("AYTADA_TOPIC_RETENTION", "0"),
        ("AYTADA_BROKER_ROLL_MB", "-1"),
        ("AYTADA_BROKER_ROLL_MB", "big"),
    ],
)
def test_a_bad_value_fails_at_start_up_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_plug_ins_run_all_by_default_none_or_those_named_however_spelt() -> None:
    assert Settings.from_env({}).runs_plugin("aytada-captions")
    assert not Settings.from_env({"AYTADA_PLUGINS": "none"}).runs_plugin("aytada-captions")
    named = Settings.from_env({"AYTADA_PLUGINS": "Aytada_Captions, other.plugin"})
    assert named.runs_plugin("aytada-captions") and named.runs_plugin("other-plugin")
    assert not named.runs_plugin("aytada-social")


def test_a_postgresql_url_gives_host_database_and_schema() -> None:
    settings = Settings.from_env(
        {"AYTADA_DATABASE_URL": "postgresql://app:secret@db.internal:6543/ads?schema=tenant_1"}
    )
    database = settings.database()
    assert (database.kind, database.host, database.port, database.name) == (
        "postgres",
        "db.internal",
        6543,
        "ads",
    )
    assert (database.user, database.password, database.db_schema) == ("app", "secret", "tenant_1")


def test_each_step_has_a_deadline_by_default_and_the_environment_sets_any_steps() -> None:
    defaults = Settings.from_env({}).deadlines()
    assert defaults.of("ideas") == defaults.of("script") == defaults.of("scenes") == 120
    assert defaults.of("video") == defaults.of("stitching") == 900
    assert defaults.of("voiceover") == 300
    assert defaults.of("captions") == 600  # a plug-in's add-on
    deadlines = Settings.from_env(
        {
            "AYTADA_DEADLINE_VIDEO_S": "1.5",
            "AYTADA_DEADLINE_SCENES_S": "0",
            "AYTADA_DEADLINE_SOCIAL_CUTS_S": "30",
            "AYTADA_DEADLINE_DEFAULT_S": "45",
        }
    ).deadlines()
    assert deadlines.of("video") == 1.5
    assert deadlines.of("scenes") is None  # 0: no deadline
    assert deadlines.of("social-cuts") == 30
    assert deadlines.of("captions") == 45
    assert deadlines.of("ideas") == 120
    assert Settings.from_env({}).deadline_variable("social-cuts") == "AYTADA_DEADLINE_SOCIAL_CUTS_S"


def test_the_stage_consumers_session_is_set_with_heartbeats_and_requests_to_match() -> None:
    # The bundled broker holds each join for half the session: 3 s there; a cluster's least is 6 s.
    assert Settings.from_env({}).stage_session_ms == 3000
    cluster = Settings.from_env({"AYTADA_KAFKA_BOOTSTRAP": "kafka:9092"})
    assert cluster.stage_session_ms == 6000
    assert Settings.from_env({"AYTADA_KAFKA_SESSION_TIMEOUT_MS": "4500"}).stage_session_ms == 4500
    # The default gives the client settings the field notes measured on the bundled broker.
    assert clients.session(6000) == {
        k: clients.CONSUMER_DEFAULTS[k]
        for k in ("session_timeout_ms", "heartbeat_interval_ms", "request_timeout_ms")
    }
    short = Settings.from_env({"AYTADA_KAFKA_SESSION_TIMEOUT_MS": "3000"})
    assert clients.session(short.stage_session_ms) == {
        "session_timeout_ms": 3000,
        "heartbeat_interval_ms": 500,
        "request_timeout_ms": 10_000,  # above half the session: a held join does not time out
    }
    assert clients.session(60_000)["request_timeout_ms"] == 60_000
