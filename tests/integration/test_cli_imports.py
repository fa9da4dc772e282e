"""`aytada-es --help` and `aytada-es audit PROJECT_ID` import only what they need (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from histories import a_disputed_history

from aytada_es.application import Studio
from aytada_es.config import Settings

# What the web app, the broker clients, the stages and the providers pull in.
SERVICE_ONLY = {"starlette", "uvicorn", "aiokafka", "httpx", "PIL", "elevenlabs", "stamina"}
OURS_SERVICE_ONLY = ("web", "kafka", "consumers", "providers", "bootstrap", "service", "metrics")


def imported_by(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    """Run the console script's entry on `argv` in a fresh Python: exit status, output, modules."""
    code = (
        "import contextlib, io, json, sys\n"
        "from aytada_es.entry import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        status = main({argv!r})\n"
        "    except SystemExit as e:\n"
        "        status = e.code\n"
        "print(json.dumps([status, out.getvalue(), sorted(sys.modules)]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0, run.stderr
    status, output, modules = json.loads(run.stdout.strip().splitlines()[-1])
    return status, output, set(modules)


def service_only(modules: set[str]) -> set[str]:
    return {
        m
        for m in modules
        if m.split(".")[0] in SERVICE_ONLY
        or m.startswith(tuple(f"aytada_es.{part}" for part in OURS_SERVICE_ONLY))
    }


def test_help_imports_argparse_and_the_command_table_only() -> None:
    status, output, modules = imported_by(["--help"])

    assert status == 0
    assert "{serve,worker,stages,broker,users,credits,projections,audit,backup,restore}" in output
    assert service_only(modules) == set()
    heavy = {"pydantic", "eventsourcing", "cryptography", "psycopg", "asyncio", "sqlite3"}
    assert {m.split(".")[0] for m in modules} & heavy == set()
    assert {m for m in modules if m.startswith("aytada_es")} <= {
        "aytada_es",
        "aytada_es.entry",
        "aytada_es.cli",
        "aytada_es.roles",
        "aytada_es.domain",
        "aytada_es.domain.errors",
        "aytada_es.pack",
        "aytada_es.pack.commands",
        "aytada_es.backup",
        "aytada_es.backup.commands",
    }


def test_a_subcommands_help_loads_nothing_of_the_service() -> None:
    status, output, modules = imported_by(["audit", "--help"])

    assert status == 0 and "--at-version N" in output
    assert service_only(modules) == set()
    assert "aytada_es.application" not in modules


def test_backup_verify_loads_neither_the_service_nor_the_studio(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a backup" * 100)
    status, output, modules = imported_by(["backup", "verify", str(garbage)])

    assert status == 1 and "NOT INTACT" in output
    assert service_only(modules) == set()
    assert "aytada_es.application" not in modules and "aytada_es.config" not in modules


def test_audit_imports_the_store_and_the_audit_but_not_the_service(
    settings: Settings, studio: Studio
) -> None:
    spritz = a_disputed_history(studio)["spritz"]
    env = {
        **os.environ,
        "AYTADA_DATA_DIR": str(settings.data_dir),
        "AYTADA_DATABASE_URL": settings.database_url,
        "AYTADA_PROVIDERS": "instant",
    }

    status, output, modules = imported_by(["audit", str(spritz)], env)

    assert status == 0, output
    assert output.splitlines()[-1].strip() == "audit passed"
    assert {"aytada_es.application", "aytada_es.audit.project"} <= modules
    assert service_only(modules) == set()
