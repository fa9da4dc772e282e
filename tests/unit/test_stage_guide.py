"""docs/adding-a-stage.md shows the captions plug-in's own files, and the whole stage kit."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import aytada_es.testing as kit
from aytada_es.testing.studio_run import StudioRun

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-a-stage.md"
# A code block the guide takes from a file: `<!-- whole PATH -->` or `<!-- part of PATH -->`.
MARKED = re.compile(r"<!-- (whole|part of) (\S+) -->\n```\w*\n(.*?)```\n", re.S)
PLUGIN = "tests/plugins/captions"


def test_every_marked_code_block_is_the_file_it_names_as_it_is_now() -> None:
    blocks = MARKED.findall(GUIDE.read_text())

    assert {path for _, path, _ in blocks} >= {
        f"{PLUGIN}/src/aytada_captions/stage.py",
        f"{PLUGIN}/pyproject.toml",
        f"{PLUGIN}/tests/test_captions.py",
        "tests/plugins/social_card.py",
    }
    for how, path, code in blocks:
        source = (ROOT / path).read_text()
        if how == "whole":
            assert code == source, f"the guide's copy of {path} differs: copy the file again"
        else:
            assert code in source, f"the guide's excerpt of {path} is not in it: copy it again"


def test_the_guide_documents_every_fixture_and_helper_of_the_stage_kit() -> None:
    guide = GUIDE.read_text()
    fixtures = [name for name in vars(kit) if name.startswith("aytada_")]
    helpers = [
        name
        for name, member in vars(StudioRun).items()
        if not name.startswith("_") and name != "start" and inspect.isfunction(member)
    ]

    assert {"aytada_broker", "aytada_settings", "aytada_start"} <= set(fixtures)
    assert [f for f in fixtures if f"`{f}`" not in guide] == []
    assert [h for h in helpers if f"run.{h}(" not in guide and f"run.{h}`" not in guide] == []
