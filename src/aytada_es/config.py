"""Settings, read once from the environment; a bad value fails loudly at start-up."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .domain.account import name_problem
from .domain.deadlines import DEFAULT_DEADLINE_S, DEFAULT_DEADLINES_S, Deadlines, deadline_problem
from .domain.errors import ConfigError

# Allowed besides the host of AYTADA_PUBLIC_URL when AYTADA_ALLOWED_HOSTS is not set.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")
_IPV6 = re.compile(r"^[0-9a-f:.]+$")
_DISTRIBUTION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
# AYTADA_DEADLINE_<STEP>_S: a step of the pipeline or a plug-in's add-on (`-` written `_`).
_DEADLINE = re.compile(r"^AYTADA_DEADLINE_([A-Z0-9_]+)_S$")
_LIMIT_VAR = re.compile(r"^AYTADA_LIMIT_([A-Z0-9]+(?:_[A-Z0-9]+)*?)_(CONCURRENCY|PER_MINUTE)$")
# Providers whose work is CPU-bound here: one call per two CPUs unless told otherwise (a clip
# render keeps two cores busy: two frame threads feed x264; docs/fairness.md).
CPU_BOUND = ("ffmpeg",)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 24 * 3600}


class Settings(BaseModel):
    """Everything the service reads from its environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(Path("var"), validate_default=True)
    database_url: str = ""
    kafka_bootstrap: str | None = None
    kafka_namespace: str = Field("", pattern=r"^[A-Za-z0-9._-]*$")
    topic_partitions: int = Field(6, ge=1, le=1000)
    providers: Literal["local", "cloud", "instant"] = "local"
    stage_attempts: int = Field(4, ge=1, le=20)
    stage_backoff_s: float = Field(1.0, ge=0, le=60)
    poll_interval_s: float = Field(0.05, gt=0, le=10)
    relay_check_s: float = Field(1.0, gt=0, le=60)
    # What the topics promise to hold (Kafka's retention.ms; docs/operations.md, Retention):
    # `7d`, `12h`, `30m`, `90s` or seconds. After a broker loss the relay republishes this
    # window and the active projects' events.
    topic_retention_s: float = Field(7 * 24 * 3600.0, ge=1, le=10 * 366 * 24 * 3600)
    # The bundled broker is rolled (restarted empty, the window republished) at a quiet moment
    # once its memory passes this many MB (0: never).
    broker_roll_mb: int = Field(128, ge=0, le=1_000_000)
    # A stage consumer's group session; None: 3 s on the bundled broker (which holds each join
    # for half of it), 6 s on a cluster (Apache Kafka's least by default).
    kafka_session_timeout_ms: int | None = Field(None, ge=1500, le=300_000)
    elevenlabs_api_key: str | None = None
    shotstack_api_key: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str | None = None
    # A session ends this long after its login, or after this long without a request (0: never).
    session_ttl_s: int = Field(7 * 24 * 3600, ge=60, le=366 * 24 * 3600)
    session_idle_s: int = Field(24 * 3600, ge=0, le=366 * 24 * 3600)
    ws_per_user: int = Field(20, ge=1, le=1_000_000)
    rate_limit_login: int = Field(10, ge=0, le=1_000_000)  # per minute and address; 0: off
    rate_limit_writes: int = Field(120, ge=0, le=1_000_000)  # per minute and user; 0: off
    allowed_hosts: tuple[str, ...] = ()  # empty: LOCAL_HOSTS and the public URL's host
    # The installed plug-in distributions whose stages run: every one, none, or those named.
    plugins: tuple[str, ...] | Literal["all", "none"] = "all"
    # Seconds a step may stay active after its request (0: no deadline); steps not named here
    # have their default (`domain/deadlines.py`), add-ons `deadline_default_s`.
    deadlines_s: dict[str, float] = Field(default_factory=dict)
    deadline_default_s: float = DEFAULT_DEADLINE_S
    # The chain anchors (anchoring.py): their directory (empty: <data_dir>/anchors), and how
    # often the relay role writes the heads down: every `anchor_interval_s` or `anchor_every`
    # events, whichever comes first, and at stop.
    anchor_dir: Path | None = None
    anchor_interval_s: float = Field(5.0, gt=0, le=3600)
    anchor_every: int = Field(1000, ge=1, le=1_000_000)
    # Webhooks (docs/webhooks.md): networks a webhook URL may reach besides public addresses,
    # the wait after each failed attempt (the last one repeats) until `webhook_give_up_s`
    # since the first attempt, each attempt's timeout, and endpoints per user.
    webhook_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    webhook_retry_s: tuple[float, ...] = Field(
        (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0), min_length=1
    )
    webhook_give_up_s: float = Field(72 * 3600, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0, le=60)
    webhook_max_endpoints: int = Field(10, ge=1, le=1000)
    webhook_concurrency: int = Field(16, ge=1, le=1000)

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _network_list(cls, value: object) -> object:
        """`127.0.0.0/8, 10.1.0.0/16` (CIDRs, comma-separated)."""
        if not isinstance(value, str):
            return value
        networks = []
        for entry in (e.strip() for e in value.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not a network (CIDR, e.g. 10.0.0.0/8)") from None
        return tuple(networks)

    @field_validator("topic_retention_s", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """`7d`, `12h`, `30m`, `90s`, or a number of seconds."""
        if not isinstance(value, str):
            return value
        match = _DURATION.match(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a duration (like 7d, 12h, 30m, 90s)")
        return float(match[1]) * _DURATION_UNITS[match[2] or "s"]

    @field_validator("webhook_retry_s", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        """`5, 300, 1800` (seconds, comma-separated, each > 0)."""
        if not isinstance(value, str):
            return value
        try:
            delays = tuple(float(e) for e in value.split(",") if e.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a list of seconds") from None
        if not delays or any(not 0 < d <= 7 * 24 * 3600 for d in delays):
            raise ValueError("give one or more delays in seconds, each above 0 and at most 7 days")
        return delays

    # AYTADA_LIMIT_<PROVIDER>_CONCURRENCY and _PER_MINUTE by provider key (`ffmpeg`,
    # `elevenlabs`): what was set, over the defaults of `limits()`; 0 means no limit.
    provider_limits: dict[str, dict[str, int]] = {}
    # Weights of owners in the fair order, by account name (`alice=3,bob=1`); others weigh 1.
    fair_weights: dict[str, float] = {}

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, data_dir: Path) -> Path:
        """Resolved once, so that child processes (ffmpeg, espeak) find the same files."""
        return data_dir.expanduser().resolve()

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        """`app.example, localhost` (comma-separated host names, no ports); `*` allows any."""
        if not isinstance(value, str):
            return value
        hosts = tuple(_host_name(entry) for entry in value.split(",") if entry.strip())
        if not hosts:
            raise ValueError("name at least one host, or * for any")
        return hosts

    @field_validator("plugins", mode="before")
    @classmethod
    def _plugin_list(cls, value: object) -> object:
        """`all`, `none`, or distribution names separated by commas (`aytada-captions`)."""
        if not isinstance(value, str) or value in ("all", "none"):
            return value
        names = tuple(_distribution(entry) for entry in value.split(",") if entry.strip())
        if not names:
            raise ValueError("say all, none, or name distributions")
        return names

    @field_validator("deadlines_s")
    @classmethod
    def _deadlines_s(cls, deadlines: dict[str, float]) -> dict[str, float]:
        for step, seconds in deadlines.items():
            problem = deadline_problem(seconds)
            if problem is not None:
                raise ValueError(f"the deadline of {step}: {problem}")
        return deadlines

    @field_validator("deadline_default_s")
    @classmethod
    def _deadline_default_s(cls, seconds: float) -> float:
        problem = deadline_problem(seconds)
        if problem is not None:
            raise ValueError(problem)
        return seconds

    @field_validator("fair_weights", mode="before")
    @classmethod
    def _weights(cls, value: object) -> object:
        """`alice=3,bob=1`: account names and positive weights, separated by commas."""
        if not isinstance(value, str):
            return value
        weights: dict[str, float] = {}
        for entry in filter(None, (e.strip() for e in value.split(","))):
            name, equals, weight = entry.rpartition("=")
            try:
                number = float(weight)
            except ValueError:
                number = 0.0
            name = name.strip()
            if not equals or name_problem(name) or not 0 < number <= 1_000_000:
                raise ValueError(f"{entry!r} is not name=weight with a weight above 0")
            weights[name] = number
        return weights

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read AYTADA_* (and the providers' keys) from an environment mapping."""
        names = {
            "data_dir": "AYTADA_DATA_DIR",
            "database_url": "AYTADA_DATABASE_URL",
            "kafka_bootstrap": "AYTADA_KAFKA_BOOTSTRAP",
            "kafka_namespace": "AYTADA_KAFKA_NAMESPACE",
            "topic_partitions": "AYTADA_TOPIC_PARTITIONS",
            "providers": "AYTADA_PROVIDERS",
            "stage_attempts": "AYTADA_STAGE_ATTEMPTS",
            "stage_backoff_s": "AYTADA_STAGE_BACKOFF_S",
            "poll_interval_s": "AYTADA_POLL_INTERVAL_S",
            "relay_check_s": "AYTADA_RELAY_CHECK_S",
            "topic_retention_s": "AYTADA_TOPIC_RETENTION",
            "broker_roll_mb": "AYTADA_BROKER_ROLL_MB",
            "kafka_session_timeout_ms": "AYTADA_KAFKA_SESSION_TIMEOUT_MS",
            "elevenlabs_api_key": "ELEVENLABS_API_KEY",
            "shotstack_api_key": "SHOTSTACK_API_KEY",
            "llm_base_url": "AYTADA_LLM_BASE_URL",
            "llm_api_key": "AYTADA_LLM_API_KEY",
            "llm_model": "AYTADA_LLM_MODEL",
            "public_url": "AYTADA_PUBLIC_URL",
            "secret_key": "AYTADA_SECRET_KEY",
            "session_ttl_s": "AYTADA_SESSION_TTL_S",
            "session_idle_s": "AYTADA_SESSION_IDLE_S",
            "ws_per_user": "AYTADA_WS_PER_USER",
            "rate_limit_login": "AYTADA_RATE_LIMIT_LOGIN",
            "rate_limit_writes": "AYTADA_RATE_LIMIT_WRITES",
            "allowed_hosts": "AYTADA_ALLOWED_HOSTS",
            "plugins": "AYTADA_PLUGINS",
            "anchor_dir": "AYTADA_ANCHOR_DIR",
            "anchor_interval_s": "AYTADA_ANCHOR_INTERVAL_S",
            "anchor_every": "AYTADA_ANCHOR_EVERY",
            "webhook_allowed_networks": "AYTADA_WEBHOOK_ALLOWED_NETWORKS",
            "webhook_retry_s": "AYTADA_WEBHOOK_RETRY_S",
            "webhook_give_up_s": "AYTADA_WEBHOOK_GIVE_UP_S",
            "webhook_timeout_s": "AYTADA_WEBHOOK_TIMEOUT_S",
            "webhook_max_endpoints": "AYTADA_WEBHOOK_MAX_ENDPOINTS",
            "webhook_concurrency": "AYTADA_WEBHOOK_CONCURRENCY",
            "fair_weights": "AYTADA_FAIR_WEIGHTS",
        }
        values: dict[str, object] = {
            field: environ[var] for field, var in names.items() if environ.get(var)
        }
        deadlines = _deadlines(environ)
        if "default" in deadlines:
            values["deadline_default_s"] = deadlines.pop("default")
        values["deadlines_s"] = deadlines
        values["provider_limits"] = _provider_limits(environ)
        try:
            settings = cls(**values)
        except ValidationError as e:
            problems = "; ".join(f"{names[str(err['loc'][0])]}: {err['msg']}" for err in e.errors())
            raise ConfigError(f"bad configuration: {problems}") from None
        settings.database()  # fail now, not at the first write
        return settings

    def deadlines(self) -> Deadlines:
        """Each step's deadline: the defaults, then AYTADA_DEADLINE_<STEP>_S."""
        return Deadlines({**DEFAULT_DEADLINES_S, **self.deadlines_s}, self.deadline_default_s)

    def deadline_variable(self, step: str) -> str:
        """The variable that sets a step's deadline (`my-stage`: AYTADA_DEADLINE_MY_STAGE_S)."""
        return f"AYTADA_DEADLINE_{step.replace('-', '_').upper()}_S"

    def database(self) -> Database:
        return Database.parse(self.database_url or f"sqlite:///{self.data_dir / 'aytada.sqlite'}")

    def limits(self) -> dict[str, ProviderLimit]:
        """Every provider key's limits: the defaults (see CPU_BOUND), then what was set."""
        merged: dict[str, dict[str, int]] = {
            p: {"concurrency": max(1, (os.cpu_count() or 1) // 2)} for p in CPU_BOUND
        }
        for provider, given in self.provider_limits.items():
            merged.setdefault(provider, {}).update(given)
        return {provider: ProviderLimit(**given) for provider, given in merged.items()}

    def topic(self, name: str) -> str:
        """A topic's name in this environment (its names: `kafka/topics.py`)."""
        return f"{self.kafka_namespace}{name}"

    @property
    def stage_session_ms(self) -> int:
        """A stage consumer's group session: as set, else 3 s on the bundled broker, 6 s on a
        cluster."""
        if self.kafka_session_timeout_ms is not None:
            return self.kafka_session_timeout_ms
        return 3000 if self.kafka_bootstrap is None else 6000

    def stage_group(self, stage: str) -> str:
        """The consumer group of a stage: `aytada.stage.<name>`, namespaced."""
        return f"{self.kafka_namespace}aytada.stage.{stage}"

    @property
    def assets_dir(self) -> Path:
        return self.data_dir / "assets"

    @property
    def anchors_dir(self) -> Path:
        """Where the chain anchors are appended: AYTADA_ANCHOR_DIR, else <data_dir>/anchors."""
        if self.anchor_dir is None:
            return self.data_dir / "anchors"
        return self.anchor_dir.expanduser().resolve()

    def runs_plugin(self, distribution: str) -> bool:
        """Whether the stages of this installed distribution run (AYTADA_PLUGINS)."""
        if isinstance(self.plugins, tuple):
            return _normalized(distribution) in self.plugins
        return self.plugins == "all"

    def served_at(self, host: str, port: int) -> Settings:
        """These settings for a web server on host:port: the public URL follows it, unless set."""
        if "public_url" in self.model_fields_set:
            return self
        return self.model_copy(update={"public_url": local_url(host, port)})

    def allowed_host_names(self) -> frozenset[str]:
        """The Host names the web edge answers (`*`: any)."""
        if self.allowed_hosts:
            return frozenset(self.allowed_hosts)
        public = urlsplit(self.public_url).hostname
        return frozenset((*LOCAL_HOSTS, *([public] if public else [])))


def local_url(host: str, port: int) -> str:
    """`http://host:port`; a wildcard address (all interfaces) is reached through loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _deadlines(environ: Mapping[str, str]) -> dict[str, float]:
    """AYTADA_DEADLINE_<STEP>_S as seconds by step name (`default` for the others)."""
    found: dict[str, float] = {}
    for variable, text in environ.items():
        match = _DEADLINE.match(variable)
        if match is None or not text:
            continue
        try:
            seconds = float(text)
        except ValueError:
            raise ConfigError(
                f"bad configuration: {variable}: {text!r} is not a number of seconds"
            ) from None
        problem = deadline_problem(seconds)
        if problem is not None:
            raise ConfigError(f"bad configuration: {variable}: {problem}")
        found[match.group(1).lower().replace("_", "-")] = seconds
    return found


class ProviderLimit(BaseModel):
    """How many calls of a provider may run at once, and start per minute (0: no limit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int = Field(0, ge=0)
    per_minute: int = Field(0, ge=0)


def _provider_limits(environ: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """AYTADA_LIMIT_<PROVIDER>_CONCURRENCY and _PER_MINUTE, by lower-case provider key."""
    limits: dict[str, dict[str, int]] = {}
    for var, value in environ.items():
        if not var.startswith("AYTADA_LIMIT_") or not value:
            continue
        match = _LIMIT_VAR.match(var)
        if match is None:
            raise ConfigError(
                f"bad configuration: {var}: name AYTADA_LIMIT_<PROVIDER>_CONCURRENCY"
                " or AYTADA_LIMIT_<PROVIDER>_PER_MINUTE"
            )
        try:
            number = int(value)
        except ValueError:
            number = -1
        if not 0 <= number <= 1_000_000_000:
            raise ConfigError(
                f"bad configuration: {var}: {value!r} is not a whole number of 0 (no limit) or more"
            )
        provider, kind = match[1].lower(), match[2].lower()
        limits.setdefault(provider, {})[kind] = number
    return limits


def _host_name(entry: str) -> str:
    """One entry of AYTADA_ALLOWED_HOSTS as the Host check compares it: lower case, no brackets."""
    host = entry.strip().lower().rstrip(".")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    ipv6 = host.count(":") >= 2 and _IPV6.match(host) is not None
    name = host == "*" or _HOST_NAME.match(host) is not None
    if ipv6 or (name and not bracketed):
        return host
    raise ValueError(f"{entry.strip()!r} is not a host name (give names without scheme or port)")


def _distribution(entry: str) -> str:
    """One entry of AYTADA_PLUGINS: a distribution's name, normalized as packaging does."""
    name = entry.strip()
    if not _DISTRIBUTION.match(name):
        raise ValueError(f"{name!r} is not a distribution name")
    return _normalized(name)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Database(BaseModel):
    """Where the event store and the read models live."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["sqlite", "postgres"]
    path: str = ""
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = ""
    password: str = ""
    name: str = ""
    db_schema: str = ""

    @classmethod
    def parse(cls, url: str) -> Database:
        """`sqlite:///relative/or//absolute/path` or `postgresql://user:pw@host:port/db?schema=s`."""
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            path = unquote(parts.path)[1:] if parts.path.startswith("/") else ""
            if not path or parts.netloc or ":memory:" in path:
                raise ConfigError(
                    f"AYTADA_DATABASE_URL: {url!r} is not sqlite:///path/to/file.sqlite"
                )
            return cls(kind="sqlite", path=path)
        if parts.scheme in ("postgresql", "postgres"):
            name = unquote(parts.path.lstrip("/"))
            query = parse_qs(parts.query)
            schema = query.get("schema", [""])[0]
            if not name or (schema and not schema.replace("_", "a").isalnum()):
                raise ConfigError(
                    f"AYTADA_DATABASE_URL: {url!r} is not postgresql://user@host:port/db[?schema=s]"
                )
            try:
                port = parts.port or 5432
            except ValueError:
                raise ConfigError(f"AYTADA_DATABASE_URL: bad port in {url!r}") from None
            return cls(
                kind="postgres",
                host=parts.hostname or "127.0.0.1",
                port=port,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                name=name,
                db_schema=schema,
            )
        raise ConfigError(
            f"AYTADA_DATABASE_URL: {url!r} is neither sqlite:///... nor postgresql://..."
        )

    def eventsourcing_env(self) -> dict[str, str]:
        """The `eventsourcing` library's persistence settings for this database."""
        if self.kind == "sqlite":
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "aytada_es.adapters.sqlite:WriterLockedSQLiteFactory",
                "SQLITE_DBNAME": self.path,
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.name,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.db_schema,
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_CONNECT_TIMEOUT": "5",
        }
