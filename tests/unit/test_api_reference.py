"""docs/api.md is the project's own reference: it lists exactly the endpoints of
`/openapi.json`, its links lead somewhere in the repository, and nothing points outside it."""

from __future__ import annotations

import re
from pathlib import Path

from aytada_es.web.app import ENDPOINTS
from aytada_es.web.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api.md"
# `GET /api/videos`: how docs/api.md names an endpoint (pages are written as paths alone).
ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Written in two parts, so that this file does not find itself.
OUTSIDE = ("../" + "shared", "/work/" + "shared", "CONTRACT" + ".md")
SKIPPED = {".git", ".venv", "build", "var", "node_modules", ".mypy_cache", ".ruff_cache"}
SKIPPED |= {".pytest_cache", ".hypothesis", "__pycache__", ".import_linter_cache"}


def documented() -> set[tuple[str, str]]:
    return {(m, p) for m, p in ENDPOINT.findall(API.read_text(encoding="utf-8"))}


def served() -> set[tuple[str, str]]:
    paths = openapi_document(ENDPOINTS, version="test")["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_endpoint_of_the_openapi_document_is_in_docs_api_md() -> None:
    missing = sorted(served() - documented())
    assert not missing, f"add to docs/api.md: {missing}"


def test_every_endpoint_docs_api_md_names_is_served() -> None:
    gone = sorted(documented() - served())
    assert not gone, f"docs/api.md names endpoints the service does not have: {gone}"


def repository_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if (
            path.is_file()
            and not parts & SKIPPED
            and not any(p.endswith(".egg-info") for p in parts)
        ):
            found.append(path)
    return found


def test_no_file_in_the_repository_points_outside_it() -> None:
    offenders = []
    for path in repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # images, wheels, databases
        offenders += [f"{path.relative_to(ROOT)}: {o}" for o in OUTSIDE if o in text]
    assert not offenders, offenders


def test_the_readme_and_the_docs_name_no_outside_contract() -> None:
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert "CONTRACT" + " §" not in document.read_text(encoding="utf-8"), document.name


def anchors(markdown: str) -> set[str]:
    """The anchors of a Markdown file's headings, as GitHub makes them."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_the_readme_and_the_docs_link_only_to_files_of_the_repository() -> None:
    readme = ROOT / "README.md"
    for document in [readme, *sorted((ROOT / "docs").glob("*.md"))]:
        text = document.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://")):
                assert document != readme, f"README links outside the repository: {target}"
                continue
            file, _, anchor = target.partition("#")
            linked = (document.parent / file).resolve() if file else document
            assert linked.is_relative_to(ROOT) and linked.exists(), f"{document.name}: {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in anchors(linked.read_text(encoding="utf-8")), (
                    f"{document.name}: no heading for {target}"
                )


def event_classes() -> dict[str, list[str]]:
    """Every stored event type of the domain, with the fields its `data` carries."""
    from aytada_es.domain.account import Account
    from aytada_es.domain.project import Project

    found: dict[str, list[str]] = {}
    for aggregate in (Project, Account):
        for name, cls in vars(aggregate).items():
            if not (isinstance(cls, type) and issubclass(cls, aggregate.Event)):
                continue
            if cls is aggregate.Event or name in ("Created", "StepRequested"):
                continue  # the library's default and the requests' base: never stored as such
            fields: dict[str, object] = {}
            for klass in reversed(cls.__mro__):
                fields.update(getattr(klass, "__annotations__", {}))
            bookkeeping = {"originator_id", "originator_version", "timestamp", "actor"}
            found[name] = [
                f
                for f in fields
                if f not in bookkeeping and not f.startswith(("originator", "STEP"))
            ]
    return found


def test_docs_events_md_lists_every_event_type_with_its_fields() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}  # the first row of each event: the list, not the versions' table
    for row in re.finditer(r"^\| `(\w+)` \|.*$", text, re.MULTILINE):
        rows.setdefault(row.group(1), row.group(0))
    for name, fields in event_classes().items():
        assert name in rows, f"docs/events.md: no row for {name}"
        missing = [f for f in fields if f"`{f}`" not in rows[name]]
        assert not missing, f"docs/events.md: {name} does not name {missing}"
    assert len(event_classes()) >= 35  # the scan found the events, not an empty namespace
