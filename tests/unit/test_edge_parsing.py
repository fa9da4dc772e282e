"""What the web edge reads from requests and settings: numbers, hosts, logged paths, budgets."""

from __future__ import annotations

import pytest

from aytada_es.adapters.links import AssetLinks
from aytada_es.parsing import whole_number
from aytada_es.web.hosts import host_name
from aytada_es.web.logs import redact
from aytada_es.web.quota import descriptor_budget


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("1700000000", 1_700_000_000),
        ("9" * 18, int("9" * 18)),
        ("9" * 19, None),
        ("9" * 5000, None),
        ("²", None),
        ("١٢٣", None),  # Arabic-Indic digits: isdigit() says yes
        ("", None),
        (" 1", None),
        ("-1", None),
        ("+1", None),
        ("1_000", None),
    ],
)
def test_numbers_are_ascii_digits_of_a_bounded_length(text: str, number: int | None) -> None:
    assert whole_number(text) == number


def test_a_signed_link_with_a_bad_expiry_is_simply_not_valid() -> None:
    links = AssetLinks(b"k" * 32, "http://x")
    for expiry in ("²", "9" * 5000, "9" * 19):
        assert not links.valid("ab" * 32, expiry, "0" * 64)


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8000", "localhost"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("app.example.", "app.example"),
        ("", ""),
    ],
)
def test_the_host_of_a_host_header_drops_the_port_and_brackets(header: str, host: str) -> None:
    assert host_name(header) == host


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        ("/ws/videos?token=ayt_secret", "/ws/videos?token=[redacted]"),
        ("/api/videos?after=3&token=x&b=1", "/api/videos?after=3&token=[redacted]&b=1"),
        (
            "/public/assets/ab?expires=1&signature=f00d",
            "/public/assets/ab?expires=1&signature=[redacted]",
        ),
        ("/p?%74oken=x&SIGNATURE=y", "/p?%74oken=[redacted]&SIGNATURE=[redacted]"),
        ("/p?tokens=x", "/p?tokens=x"),
        ("/api/videos", "/api/videos"),
    ],
)
def test_secret_query_parameters_are_redacted_in_logged_paths(logged: str, shown: str) -> None:
    assert redact(logged) == shown


@pytest.mark.parametrize(
    ("limit", "connections", "sockets"),
    [(1024, 896, 768), (20_000, 18_000, 16_000), (256, 128, 64)],
)
def test_websockets_leave_a_margin_of_descriptors_for_http_and_the_rest(
    limit: int, connections: int, sockets: int
) -> None:
    budget = descriptor_budget(limit)
    assert (budget.connections, budget.sockets) == (connections, sockets)
