"""The settings of the provider limits and the fair order, and their metrics."""

from __future__ import annotations

import os

import pytest

from aytada_es.adapters.limits import LimitCounts
from aytada_es.config import ProviderLimit, Settings
from aytada_es.domain.errors import ConfigError
from aytada_es.metrics import Metrics


def test_only_ffmpeg_is_limited_by_default_to_one_render_per_two_cpus() -> None:
    limits = Settings.from_env({}).limits()
    assert limits == {"ffmpeg": ProviderLimit(concurrency=max(1, (os.cpu_count() or 1) // 2))}


def test_limits_are_set_per_provider_and_zero_means_no_limit() -> None:
    settings = Settings.from_env(
        {
            "AYTADA_LIMIT_FFMPEG_PER_MINUTE": "100",  # its concurrency keeps the default
            "AYTADA_LIMIT_ELEVENLABS_CONCURRENCY": "3",
            "AYTADA_LIMIT_SHOTSTACK_CONCURRENCY": "0",
            "AYTADA_LIMIT_SHOTSTACK_PER_MINUTE": "",  # empty: unset
        }
    )
    assert settings.limits() == {
        "ffmpeg": ProviderLimit(concurrency=max(1, (os.cpu_count() or 1) // 2), per_minute=100),
        "elevenlabs": ProviderLimit(concurrency=3),
        "shotstack": ProviderLimit(),
    }
    off = Settings.from_env({"AYTADA_LIMIT_FFMPEG_CONCURRENCY": "0"}).limits()
    assert off["ffmpeg"] == ProviderLimit()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AYTADA_LIMIT_FFMPEG_CONCURRENCY", "two", "AYTADA_LIMIT_FFMPEG_CONCURRENCY: 'two'"),
        ("AYTADA_LIMIT_FFMPEG_PER_MINUTE", "-1", "AYTADA_LIMIT_FFMPEG_PER_MINUTE: '-1'"),
        ("AYTADA_LIMIT_FFMPEG_CONCURENCY", "2", "AYTADA_LIMIT_FFMPEG_CONCURENCY: name"),
        ("AYTADA_LIMIT_FFMPEG", "2", "AYTADA_LIMIT_FFMPEG: name"),
        ("AYTADA_FAIR_WEIGHTS", "alice", "AYTADA_FAIR_WEIGHTS"),
        ("AYTADA_FAIR_WEIGHTS", "alice=0", "AYTADA_FAIR_WEIGHTS"),
        ("AYTADA_FAIR_WEIGHTS", "alice=lots", "AYTADA_FAIR_WEIGHTS"),
        ("AYTADA_FAIR_WEIGHTS", "=2", "AYTADA_FAIR_WEIGHTS"),
    ],
)
def test_a_bad_limit_or_weight_fails_loudly_naming_it(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({variable: value})


def test_weights_are_given_by_account_name() -> None:
    settings = Settings.from_env({"AYTADA_FAIR_WEIGHTS": "alice=3, bob=0.5,"})
    assert settings.fair_weights == {"alice": 3.0, "bob": 0.5}
    assert Settings.from_env({}).fair_weights == {}


def test_metrics_show_calls_in_flight_waiting_slowed_down_and_their_waits() -> None:
    metrics = Metrics()
    counts = LimitCounts(in_flight={"ffmpeg": 2}, waiting={"ffmpeg": 5}, slow_downs={"llm": 1})
    metrics.follow_limits(counts)
    metrics.observe_wait("ffmpeg", 0.3)
    text = metrics.exposition(None)[0].decode()
    assert 'aytada_provider_calls_in_flight{provider="ffmpeg"} 2.0' in text
    assert 'aytada_provider_calls_waiting{provider="ffmpeg"} 5.0' in text
    assert 'aytada_provider_slow_downs_total{provider="llm"} 1.0' in text
    assert 'aytada_provider_wait_seconds_count{provider="ffmpeg"} 1.0' in text
    counts.in_flight["ffmpeg"] = 0  # read at each scrape
    assert 'in_flight{provider="ffmpeg"} 0.0' in metrics.exposition(None)[0].decode()
