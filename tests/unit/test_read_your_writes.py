"""The route table declares read-your-writes as docs/api.md §2 lists it."""

from __future__ import annotations

from aytada_es.projections import (
    Accounts,
    CreditStatements,
    DeletedProjects,
    MyImages,
    MyScripts,
    MyVideos,
)
from aytada_es.web.app import ENDPOINTS

READ_MODELS = {
    p.name for p in (Accounts, CreditStatements, DeletedProjects, MyImages, MyScripts, MyVideos)
}


def test_the_five_reads_wait_for_read_models_that_exist() -> None:
    waiting = {e.path: e.reads for e in ENDPOINTS if e.reads}
    assert set(waiting) == {
        "/api/videos",
        "/api/projects/{id}",
        "/api/scripts",
        "/api/images",
        "/api/credits",
    }
    for path, names in waiting.items():
        assert set(names) <= READ_MODELS, path
        assert next(e for e in ENDPOINTS if e.path == path and e.reads).method == "GET"


def test_every_command_that_stores_events_answers_its_position() -> None:
    stores = {(e.method, e.path) for e in ENDPOINTS if e.stores}
    assert stores == {
        ("POST", "/api/projects"),
        ("POST", "/api/projects/{id}/ideas"),
        ("POST", "/api/projects/{id}/script"),
        ("POST", "/api/projects/{id}/scenes"),
        ("POST", "/api/projects/{id}/render"),
        ("POST", "/api/projects/{id}/retry"),
        ("POST", "/api/projects/{id}/cancel"),
        ("PATCH", "/api/projects/{id}"),
        ("DELETE", "/api/projects/{id}"),
        ("POST", "/api/support/projects/{id}/restore"),
        ("POST", "/api/support/accounts/{user}/adjustments"),
    }
    # The other writes keep rows of their own, not events: sessions, webhook endpoints.
    others = {(e.method, e.path) for e in ENDPOINTS if e.method != "GET" and not e.stores}
    assert others <= {
        ("POST", "/login"),
        ("POST", "/logout"),
        ("POST", "/api/webhooks"),
        ("DELETE", "/api/webhooks/{id}"),
    }
