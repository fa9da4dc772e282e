"""Sealed text benchmark: what sealing a person's text costs a save and a load.

Usage: python bench/sealing.py [--projects 500]

In a fresh SQLite store, one user creates N projects (title and brief sealed) and each gets a
script (every string of it sealed); then every project is read back from the store (no cache).
The same runs again with sealing turned off (the mapper as release 1 had it). Prints the time
per project of each phase, both ways.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from aytada_es.adapters.sealed_text import SealedTextMapper
from aytada_es.application import Studio
from aytada_es.domain.project import Project

SCRIPT: dict[str, Any] = {
    "title": "Meet Bench Soda",
    "text": "Meet Bench Soda. It is cold. It is quick. Try it today.",
    "words": 12,
    "lines": ["Meet Bench Soda.", "It is cold.", "It is quick.", "Try it today."],
    "headlines": ["Bench Soda", "Cold", "Quick", "Today"],
}


def run(projects: int, sealed: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(folder) / "bench.sqlite"),
            "AGGREGATE_CACHE_MAXSIZE": "0",
        }
        studio = Studio(env)
        try:
            assert isinstance(studio.mapper, SealedTextMapper)
            if not sealed:
                studio.mapper.keys = None
            owner, _ = studio.open_account("bench", credits=0, actor="cli")
            start = time.perf_counter()
            ids = []
            for i in range(projects):
                project = Project.create(
                    owner_id=owner.id,
                    title=f"Bench {i}",
                    format="9:16",
                    brief="A brief of a few words.",
                    autopilot=False,
                    actor="cli",
                )
                project.trigger_event(Project.ScriptGenerated, script=SCRIPT, actor="cli")
                studio.save(project)
                ids.append(project.id)
            saved = time.perf_counter() - start
            start = time.perf_counter()
            for id in ids:
                assert studio.repository.get(id, version=2).title.startswith("Bench")
            loaded = time.perf_counter() - start
        finally:
            studio.close()
    return saved / projects, loaded / projects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=500)
    args = parser.parse_args()
    for sealed in (False, True):
        saved, loaded = run(args.projects, sealed)
        print(
            f"{'sealed' if sealed else 'plain '}: save {saved * 1e3:.3f} ms/project,"
            f" load {loaded * 1e3:.3f} ms/project ({args.projects} projects, 2 events each)"
        )


if __name__ == "__main__":
    main()
