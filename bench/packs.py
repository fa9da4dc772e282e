"""What dispute packs and anchors cost: anchoring a store, an account's pack, its verification.

Usage: python bench/packs.py [--projects 300]
In a fresh SQLite data dir: one account with `--projects` projects (each created, ideas
requested and generated), then times one anchoring round over the whole store, the account's
audit with and without its anchors, exporting its pack and verifying it (`pack/verify.py`, and
`aytada-es audit verify` as a process with an empty data dir).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aytada_es.adapters.anchors import AnchorLog
from aytada_es.anchoring import Anchorer
from aytada_es.application import Studio
from aytada_es.audit.account import account_audit
from aytada_es.config import Settings
from aytada_es.pack.export import account_pack
from aytada_es.pack.signing import signing_key
from aytada_es.pack.verify import verify

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "integration"))
from histories import complete


def timed(what: str, fn: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    result = fn()
    print(f"{what}: {(time.perf_counter() - began) * 1000:.0f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"AYTADA_DATA_DIR": tmp})
        studio = Studio(settings.database().eventsourcing_env())
        owner = studio.open_account("ada", credits=10 * args.projects)[0].id
        for n in range(args.projects):
            project = studio.create_project(
                owner, title=f"Ad {n}", format="9:16", brief="Real fruit", actor="user:ada"
            ).id
            studio.request_ideas(owner, project, actor="user:ada")
            complete(studio, project, units=2)
        stored = studio.recorder.max_notification_id()
        print(f"{args.projects} projects, {stored} events")
        log = AnchorLog(settings.anchors_dir)
        anchors = timed(
            "one anchoring round over the store",
            Anchorer(studio, log, interval_s=1, every=1).anchor,
        )
        print(f"  {len(anchors)} anchors, {log.path.stat().st_size} bytes")
        timed("account audit, chain alone", lambda: account_audit(studio, "ada"))
        report = timed(
            "account audit, with anchors", lambda: account_audit(studio, "ada", anchors=log)
        )
        assert report.passed
        key = signing_key(settings.data_dir)
        data = timed("export the account's pack", lambda: account_pack(studio, log, key, "ada"))
        print(f"  {len(data)} bytes")
        verdict = timed("verify it", lambda: verify(data))
        assert verdict.passed, verdict.problems
        pack = Path(tmp) / "ada.pack"
        pack.write_bytes(data)
        command = [sys.executable, "-m", "aytada_es", "audit", "verify", str(pack)]
        env = {**os.environ, "AYTADA_DATA_DIR": str(Path(tmp) / "empty")}
        run = timed(
            "`aytada-es audit verify` as a process",
            lambda: subprocess.run(command, env=env, capture_output=True, check=False),
        )
        assert run.returncode == 0
        studio.close()


if __name__ == "__main__":
    main()
