"""The import rules of docs/architecture.md hold, and breaking one fails `scripts/check`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the repository's contracts, over the package found in `src`."""
    return subprocess.run(
        [str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_source_keeps_every_import_rule(tmp_path: Path) -> None:
    result = lint_imports(REPO / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_kafka_module_that_imports_a_stage_breaks_the_transport_rule(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(REPO / "src", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    relay = copy / "aytada_es" / "kafka" / "relay.py"
    relay.write_text(relay.read_text() + "\nfrom ..consumers import stage  # noqa\n")

    result = lint_imports(copy, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert "kafka is transport only" in broken
    assert "aytada_es.kafka.relay -> aytada_es.consumers.stage" in broken


def test_a_web_module_that_reaches_past_the_read_side_breaks_its_rules(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(REPO / "src", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    hub = copy / "aytada_es" / "web" / "hub.py"
    hub.write_text(
        hub.read_text()
        + "\nfrom ..adapters.sql import SQLStore  # noqa\nfrom ..bootstrap import System  # noqa\n"
    )

    result = lint_imports(copy, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert "web reads the read models through their queries" in broken
    assert "aytada_es.web.hub -> aytada_es.adapters.sql" in broken
    assert "web gets the narrow service, never bootstrap" in broken
    assert "aytada_es.web.hub -> aytada_es.bootstrap" in broken
