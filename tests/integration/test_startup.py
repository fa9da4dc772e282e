"""Several processes of one deployment starting at once against a new database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from aytada_es.bootstrap import ROLES, bootstrap
from aytada_es.config import Settings

REPLICAS = 6


def test_replicas_starting_together_on_a_new_database_all_start(settings: Settings) -> None:
    # As `docker compose up` starts every replica at once, each creating the tables it needs.
    ready = threading.Barrier(REPLICAS)

    def start(role: str) -> str:
        ready.wait(timeout=30)
        system = bootstrap(settings, roles=(role,) if role in ROLES else ())
        try:
            _, token = system.studio.open_account(f"{role}-{threading.get_ident()}")
            return token
        finally:
            system.close()

    roles = [(*ROLES, "web")[i % 4] for i in range(REPLICAS)]
    with ThreadPoolExecutor(REPLICAS) as pool:
        tokens = list(pool.map(start, roles))
    assert len(set(tokens)) == REPLICAS
