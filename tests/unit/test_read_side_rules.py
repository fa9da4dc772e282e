"""One owner of the read side: only `projections/` names the read-model tables, and no web
module asks the read models to apply, rebuild, erase or write anything."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import aytada_es.projections  # noqa: F401 (every projection, to be found as a subclass)
from aytada_es.projections.base import POSITIONS, VERSIONS, Projection

SRC = Path(__file__).resolve().parents[2] / "src" / "aytada_es"
# The read side's methods that apply events or write; a request may call none of them.
WRITES = {"catch_up", "rebuild", "erase", "prepare", "transaction", "executemany", "upsert"}


def read_model_tables() -> set[str]:
    """Every table a projection owns, and the runner's own."""
    tables = {POSITIONS, VERSIONS}
    kinds = list(Projection.__subclasses__())
    while kinds:
        kind = kinds.pop()
        kinds += kind.__subclasses__()
        tables |= set(getattr(kind, "tables", ()))
    return tables


def test_only_projections_name_the_read_model_tables() -> None:
    named = re.compile(r"\{(" + "|".join(sorted(read_model_tables())) + r")\}")
    outside = [
        f"{path.relative_to(SRC)}: {match.group(0)}"
        for path in SRC.rglob("*.py")
        if "projections" not in path.relative_to(SRC).parts
        and path.relative_to(SRC) != Path("adapters/sql.py")  # its docstring's example
        for match in named.finditer(path.read_text())
    ]
    assert outside == []


def test_no_web_module_asks_the_read_models_to_write() -> None:
    calls = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.func.attr}"
        for path in (SRC / "web").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in WRITES
    ]
    assert calls == []
