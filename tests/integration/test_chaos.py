"""The chaos run of bench/chaos.py at small scale: workers killed, the broker restarted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.projections import read_models

pytestmark = [pytest.mark.chaos, pytest.mark.kafka, pytest.mark.postgres]
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
PROJECTS = 20


def figure(output: str, name: str) -> str:
    found = re.search(rf"^{name}:\s+(.+)$", output, re.MULTILINE)
    assert found, f"no {name!r} in the output:\n{output}"
    return found.group(1)


def test_every_project_completes_through_killed_workers_and_a_broker_restart(
    postgres_url: str, tmp_path: Path
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--projects",
            str(PROJECTS),
            "--kill-every",
            "2.5",
            "--create-s",
            "14",
            "--settle-s",
            "6",
            "--timeout",
            "120",
            "--database-url",
            postgres_url,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = run.stdout
    assert run.returncode == 0, output + run.stderr[-5000:]
    passed, total = map(int, figure(output, "checks passed").split("/"))
    assert passed == total >= 8, output
    assert int(figure(output, "projects")) == PROJECTS
    kills = figure(output, "kills \\(SIGKILL\\)")
    assert int(kills.split()[0]) >= 6, kills
    for role in ("relay", "stages", "projections", "web"):
        assert role in kills, kills  # every kind of worker was killed at least once
    assert figure(output, "broker restarts") == "1"
    assert int(figure(output, "republished events")) > 0
    assert int(figure(output, "relay leaderships").split()[0]) >= 2  # a standby took over

    # Independently of the script's own checks, on the store it leaves behind.
    settings = Settings.from_env(
        {"AYTADA_DATABASE_URL": postgres_url, "AYTADA_DATA_DIR": str(tmp_path / "var")}
    )
    studio = Studio(settings.database().eventsourcing_env())
    try:
        owner = studio.account_named("chaos")
        _, cards = read_models(studio).videos.videos_of(owner.id)
        assert len(cards) == PROJECTS
        assert {c["status"] for c in cards} == {"completed"}
        projects = [studio.project(UUID(c["id"])) for c in cards]
        assert all(p.reconciliation().consistent and not p.still_reserved for p in projects)
        assert owner.reserved == 0
    finally:
        studio.close()
