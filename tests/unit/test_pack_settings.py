"""The anchor settings, and a pack verifier that loads nothing of the service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aytada_es.config import Settings
from aytada_es.domain.errors import ConfigError
from aytada_es.pack.verify import verify


def test_anchors_default_to_their_own_directory_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"AYTADA_DATA_DIR": str(tmp_path)})
    assert settings.anchors_dir == tmp_path / "anchors"
    assert (settings.anchor_interval_s, settings.anchor_every) == (5.0, 1000)
    moved = Settings.from_env({"AYTADA_DATA_DIR": str(tmp_path), "AYTADA_ANCHOR_DIR": "/a/b"})
    assert moved.anchors_dir == Path("/a/b")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AYTADA_ANCHOR_INTERVAL_S", "0"), ("AYTADA_ANCHOR_EVERY", "0"), ("AYTADA_ANCHOR_EVERY", "x")],
)
def test_a_bad_anchor_setting_fails_at_start_up_naming_it(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_the_verifier_loads_no_module_of_the_service() -> None:
    code = (
        "import sys, aytada_es.pack.verify\n"
        "ours = sorted(m for m in sys.modules if m.startswith('aytada_es'))\n"
        "assert ours == ['aytada_es', 'aytada_es.pack', 'aytada_es.pack.verify'], ours\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    "data",
    [b"", b"not json\n", b'{"kind":"pack","format":"aytada-pack/1"}\n', b'{"kind":"pack"}'],
)
def test_what_is_not_a_whole_pack_is_refused_with_a_reason(data: bytes) -> None:
    verdict = verify(data)
    assert not verdict.passed and verdict.problems


def test_aytada_es_audit_verify_loads_only_the_pack_modules(tmp_path: Path) -> None:
    pack = tmp_path / "not-a.pack"
    pack.write_bytes(b"not a pack\n")
    code = (
        "import json, sys\n"
        "from aytada_es.entry import main\n"
        f"status = main(['audit', 'verify', {str(pack)!r}])\n"
        "ours = sorted(m for m in sys.modules if m.startswith('aytada_es'))\n"
        "print(status, json.dumps(ours))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    status, ours = run.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "1", run.stdout + run.stderr
    assert "line 1 is not JSON" in run.stdout
    assert set(json.loads(ours)) == {
        "aytada_es",
        "aytada_es.entry",
        "aytada_es.pack",
        "aytada_es.pack.commands",
        "aytada_es.pack.verify",
    }
