"""What the command line tells its operator: the logging set-up and the start-up banner."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .domain.errors import ConfigError

if TYPE_CHECKING:  # `backup verify` logs too, and loads no settings
    from .config import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The Kafka client's loggers: a start of `serve` logs some thirty lines at INFO (group joins,
# partition assignments), which buried the URL and the demo token.
KAFKA_CLIENT_LOGGER = "aiokafka"
RULE = "-" * 72

# AYTADA_LOG_LEVEL: ours and the web server's; AYTADA_KAFKA_LOG_LEVEL: the Kafka client's, quiet
# by default (it logs every group join and partition assignment at INFO).
LOG_LEVELS = {"AYTADA_LOG_LEVEL": "INFO", "AYTADA_KAFKA_LOG_LEVEL": "WARNING"}
_LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_levels(environ: Mapping[str, str]) -> dict[str, str]:
    """Each of LOG_LEVELS as set in the environment (or its default); a bad name fails."""
    levels = {}
    for variable, default in LOG_LEVELS.items():
        level = (environ.get(variable) or default).strip().upper()
        if level not in _LEVEL_NAMES:
            raise ConfigError(
                f"bad configuration: {variable}: {environ[variable]!r} is not one of "
                + ", ".join(_LEVEL_NAMES)
            )
        levels[variable] = level
    return levels


def configure_logging(environ: Mapping[str, str]) -> None:
    """Log to standard error at AYTADA_LOG_LEVEL, the Kafka client at AYTADA_KAFKA_LOG_LEVEL."""
    levels = log_levels(environ)
    logging.basicConfig(level=levels["AYTADA_LOG_LEVEL"], format=LOG_FORMAT)
    logging.getLogger(KAFKA_CLIENT_LOGGER).setLevel(levels["AYTADA_KAFKA_LOG_LEVEL"])


@dataclass(frozen=True)
class DemoLogin:
    """The demo account `serve` opens on its first start; its token is known only then."""

    user: str
    token: str | None


def banner(
    settings: Settings,
    *,
    roles: Sequence[str],
    web_url: str | None,
    demo_login: DemoLogin | None,
    bootstrap_servers: str | None,
    bundled_broker: bool,
) -> str:
    """The lines `serve` and the workers print once everything is up (standard output)."""
    lines = [RULE]
    if web_url is not None:
        lines.append(f"aytada-es web on {web_url}/dashboard/videos")
    if demo_login is not None and demo_login.token is not None:
        lines.append(
            f"demo login: user {demo_login.user!r}, token {demo_login.token} (shown once: keep it)"
        )
        if web_url is not None:
            lines.append(f"  sign in at {web_url}/login with that token")
    elif demo_login is not None:
        lines.append(
            f"demo login: user {demo_login.user!r} exists (its token was shown when it was made);"
            " make a new login with `aytada-es users add NAME --credits 1000`"
        )
    lines.append(f"data: {_where_data_lives(settings)}")
    if bundled_broker:
        lines.append(
            f"broker: the bundled one, in memory, on {bootstrap_servers} (it starts empty: "
            "the relay publishes the stored events to it again)"
        )
    elif bootstrap_servers:
        lines.append(f"broker: {bootstrap_servers}")
    lines.append(f"aytada-es running {', '.join(roles)}; Ctrl-C stops")
    lines.append(RULE)
    return "\n".join(lines)


def _where_data_lives(settings: Settings) -> str:
    database = settings.database()
    if database.kind == "sqlite":
        store = f"SQLite {Path(database.path).resolve()}"
    else:
        store = f"PostgreSQL {database.host}:{database.port}/{database.name}"
        if database.db_schema:
            store += f" (schema {database.db_schema})"
    return f"events and read models in {store}; files in {settings.assets_dir}"
