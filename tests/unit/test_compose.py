"""compose.yaml and the Dockerfile agree with the code: roles, commands, settings, services."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from aytada_es import cli
from aytada_es.config import Database, Settings

ROOT = Path(__file__).resolve().parents[2]
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
PINNED = re.compile(r"^[\w./-]+:\d+(\.\d+)+[\w.-]*$")  # name:1.2[.3][-variant], never `latest`
ROLE_PORT = 8000


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def settings_variables() -> set[str]:
    """Every variable that `Settings.from_env` asks its environment for."""

    class Recording(dict[str, str]):
        def __init__(self) -> None:
            super().__init__()
            self.asked: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> str:
            self.asked.add(key)
            return super().__getitem__(key)

    environ = Recording()
    Settings.from_env(environ)
    return set(environ.asked)


def worker_roles() -> set[str]:
    """The roles `aytada-es worker` accepts, from the CLI's own parser."""
    worker = subcommand(cli._parser(), "worker")
    role = next(a for a in worker._actions if a.dest == "role")
    assert role.choices is not None
    return set(role.choices)


def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = commands.choices[name]
    return found


def parse_command(command: list[str]) -> argparse.Namespace:
    """A service's command as the CLI parses it; a bad one fails the test, not the run."""
    assert command[0] == "aytada-es", command
    try:
        return cli._parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"not a valid aytada-es command: {command}")


def resolved(text: str, values: Mapping[str, str] | None = None) -> str:
    """`${VAR}`, `${VAR:-default}`, `${VAR:?error}` as compose would resolve them."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if values and name in values:
            return values[name]
        if operator and operator.endswith("-"):
            return argument
        return f"set-{name.lower()}"

    return INTERPOLATION.sub(one, text)


def aytada_environments(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    for name, service in services.items():
        command = service.get("command") or []
        if command[:1] == ["aytada-es"]:
            yield name, service["environment"]


def test_the_stack_has_kafka_postgres_and_a_service_per_role(
    services: dict[str, dict[str, Any]],
) -> None:
    roles = worker_roles()
    assert roles == {"relay", "stages", "projections", "web"}
    by_role = {
        parse_command(service["command"]).role: name
        for name, service in services.items()
        if service.get("command", [None])[0] == "aytada-es"
    }
    assert set(by_role) == roles
    assert {"kafka", "postgres"} <= set(services)


def test_third_party_images_are_the_official_ones_pinned_to_a_version(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")
    for name, service in services.items():
        if "build" not in service:
            assert PINNED.match(service["image"]), (name, service["image"])
        else:
            assert service["build"] in (".", {"context": "."}), name


def test_the_dockerfile_installs_the_package_on_python_3_11_slim() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base.group(1)), base.group(1)
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)
    assert "COPY src " in dockerfile and "COPY pyproject.toml" in dockerfile
    # ffmpeg and libespeak-ng come with their wheels, not from the system's packages.
    system_packages = " ".join(re.findall(r"apt-get install ([^&\n]+)", dockerfile))
    assert "ffmpeg" not in system_packages and "espeak" not in system_packages
    dependencies = (ROOT / "pyproject.toml").read_text()
    assert '"imageio-ffmpeg==' in dependencies and '"espeakng-loader==' in dependencies


def test_every_command_is_a_valid_worker_invocation_and_web_listens_on_every_interface(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if service.get("command", [None])[0] != "aytada-es":
            continue
        args = parse_command(service["command"])
        assert args.command == "worker", name
        assert args.role == name, (name, args.role)
        if args.role == "web":
            assert args.host == "0.0.0.0"  # inside its container
            assert args.port == ROLE_PORT
            published = [str(p) for p in service["ports"]]
            assert published and all(p.endswith(f":{args.port}") for p in published)


def test_the_relay_has_a_standby_and_only_stages_and_web_share_work(
    services: dict[str, dict[str, Any]],
) -> None:
    replicas = {
        name: service["deploy"]["replicas"]
        for name, service in services.items()
        if service.get("command", [None])[0] == "aytada-es"
    }
    assert replicas["relay"] == 2  # one publishes, the other waits for the relay lock
    assert replicas["projections"] == 1
    assert replicas["stages"] >= 2 and replicas["web"] >= 2
    ports = services["web"]["ports"][0].split(":")[-2]
    first, _, last = ports.partition("-")
    assert int(last or first) - int(first) + 1 >= replicas["web"], "a published port per replica"


def test_every_aytada_variable_in_compose_is_one_the_settings_read(
    services: dict[str, dict[str, Any]],
) -> None:
    known = settings_variables()
    assert {"AYTADA_DATABASE_URL", "AYTADA_KAFKA_BOOTSTRAP", "AYTADA_DATA_DIR"} <= known
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\bAYTADA_\w+", text))
    assert used and used <= known, sorted(used - known)
    for name, environment in aytada_environments(services):
        assert isinstance(environment, dict), name
        for variable in environment:
            assert variable in known, (name, variable)
        values = {k: resolved(str(v)) for k, v in environment.items()}
        Settings.from_env(values)  # the values parse as the service would read them
        assert values["AYTADA_DATA_DIR"] in {
            volume.split(":")[1] for volume in services[name]["volumes"]
        }, f"{name}: the data dir is the shared volume"
        assert values["AYTADA_KAFKA_BOOTSTRAP"] and values["AYTADA_DATABASE_URL"]


def test_the_services_reach_the_postgres_and_kafka_of_the_stack(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]["environment"]
    kafka = services["kafka"]["environment"]
    advertised = {
        listener.split("://")[0]: listener.split("://")[1]
        for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    for name, environment in aytada_environments(services):
        database = Database.parse(resolved(environment["AYTADA_DATABASE_URL"]))
        assert database.kind == "postgres"
        assert database.host == "postgres" and database.port == 5432, name
        assert database.name == postgres["POSTGRES_DB"], name
        assert database.user == postgres["POSTGRES_USER"], name
        assert environment["AYTADA_KAFKA_BOOTSTRAP"] == advertised["PLAINTEXT"], name


def test_kafka_runs_in_kraft_mode_as_one_broker_and_controller(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]["environment"]
    assert not any("ZOOKEEPER" in variable for variable in kafka)
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = str(kafka["KAFKA_NODE_ID"])
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@kafka:9093"
    assert kafka["CLUSTER_ID"]
    listeners = dict(item.split("://") for item in kafka["KAFKA_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) <= set(protocols)
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert listeners["CONTROLLER"] == ":9093"
    # Single node: nothing may ask for more copies than there are brokers.
    for variable, value in kafka.items():
        if variable.endswith(("REPLICATION_FACTOR", "MIN_ISR")):
            assert int(value) == 1, variable
    # Topics come from the app's start-up (kafka/topics.py), with their partitions.
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka["KAFKA_LOG_DIRS"] in {v.split(":")[1] for v in services["kafka"]["volumes"]}


def test_every_service_has_a_health_check_that_the_roles_wait_for(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 1, name
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name, service in services.items():
        command = service.get("command", [None])
        if command[0] != "aytada-es":
            continue
        # Each role answers /healthz on the port its command gives (workers: with --port).
        port = parse_command(command).port
        assert port is not None, f"{name}: without --port a worker serves no /healthz"
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in probe, (name, probe)
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        if parse_command(command).role != "web":  # the web edge never talks to Kafka
            assert depends["kafka"]["condition"] == "service_healthy", name
        for needed in depends.values():
            assert needed["condition"] in ("service_healthy", "service_started"), name


def test_every_role_shares_the_assets_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name, _ in aytada_environments(services):
        assert "assets:/data" in services[name]["volumes"], name
    assert {"assets", "kafka-data", "postgres-data"} <= set(compose["volumes"])
