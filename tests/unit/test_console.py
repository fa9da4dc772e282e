"""What the command line tells its operator: log levels, the public URL, the banner."""

from __future__ import annotations

from pathlib import Path

import pytest

from aytada_es.config import Settings
from aytada_es.console import DemoLogin, banner, log_levels
from aytada_es.domain.errors import ConfigError


def test_the_public_url_follows_the_server_unless_it_was_set() -> None:
    assert Settings.from_env({}).served_at("127.0.0.1", 8123).public_url == (
        "http://127.0.0.1:8123"
    )
    assert Settings.from_env({}).served_at("0.0.0.0", 80).public_url == "http://127.0.0.1:80"
    assert Settings.from_env({}).served_at("::", 80).public_url == "http://[::1]:80"
    given = Settings.from_env({"AYTADA_PUBLIC_URL": "https://ads.example"})
    assert given.served_at("0.0.0.0", 8123).public_url == "https://ads.example"
    followed = Settings.from_env({}).served_at("127.0.0.2", 9000)
    assert "127.0.0.2" in followed.allowed_host_names()


def test_log_levels_default_to_info_and_the_kafka_client_to_warning() -> None:
    assert log_levels({}) == {"AYTADA_LOG_LEVEL": "INFO", "AYTADA_KAFKA_LOG_LEVEL": "WARNING"}
    assert log_levels({"AYTADA_KAFKA_LOG_LEVEL": "debug"})["AYTADA_KAFKA_LOG_LEVEL"] == "DEBUG"
    with pytest.raises(ConfigError, match="AYTADA_LOG_LEVEL: 'loud' is not one of"):
        log_levels({"AYTADA_LOG_LEVEL": "loud"})


def test_the_banner_says_where_to_go_how_to_sign_in_and_where_data_lives(tmp_path: Path) -> None:
    settings = Settings.from_env({"AYTADA_DATA_DIR": str(tmp_path)})
    shown = banner(
        settings,
        roles=("relay", "web"),
        web_url="http://127.0.0.1:8000",
        demo_login=DemoLogin("demo", "ayt_secret"),
        bootstrap_servers="127.0.0.1:9092",
        bundled_broker=True,
    ).splitlines()
    assert shown[1] == "aytada-es web on http://127.0.0.1:8000/dashboard/videos"
    assert shown[2] == "demo login: user 'demo', token ayt_secret (shown once: keep it)"
    assert shown[3] == "  sign in at http://127.0.0.1:8000/login with that token"
    assert f"SQLite {tmp_path / 'aytada.sqlite'}" in shown[4]
    assert shown[5].startswith("broker: the bundled one, in memory, on 127.0.0.1:9092")
    assert shown[-2] == "aytada-es running relay, web; Ctrl-C stops"
    postgres = Settings.from_env({"AYTADA_DATABASE_URL": "postgresql://me:pw@db:5433/ads"})
    again = banner(
        postgres,
        roles=("web",),
        web_url="http://127.0.0.1:8000",
        demo_login=DemoLogin("demo", None),
        bootstrap_servers="kafka:9092",
        bundled_broker=False,
    )
    assert "ayt_" not in again and "pw" not in again  # no token, no password
    assert "exists" in again and "PostgreSQL db:5433/ads" in again
    assert "broker: kafka:9092" in again
