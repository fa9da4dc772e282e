"""A customer's own evidence over HTTP: their signed pack and a statement carrying chain heads."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from web_server import Site, json_of, site, site_settings, wait_for

from aytada_es.adapters.anchors import AnchorLog
from aytada_es.adapters.chain import stored_history, unseal

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

BRIEF = {"title": "Sparkling water", "format": "9:16", "brief": "Real fruit, no sugar."}


def verify_offline(pack: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`aytada-es audit verify` with an empty data dir and no database."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AYTADA_")}
    return subprocess.run(
        [sys.executable, "-m", "aytada_es", "audit", "verify", str(pack)],
        env={**env, "AYTADA_DATA_DIR": str(empty)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_user_downloads_a_pack_of_their_projects_deleted_ones_too_that_verifies(
    site: Site, tmp_path: Path
) -> None:
    account_id, token = site.user(credits=500)
    _, other_token = site.user(credits=500)
    async with (
        site.client(token) as http,
        site.client(other_token) as other,
        site.client() as nobody,
    ):
        kept = json_of(await http.post("/api/projects", json=BRIEF))["id"]
        gone = json_of(await http.post("/api/projects", json={**BRIEF, "title": "Gone"}))["id"]
        for id in (kept, gone):
            assert (await http.post(f"/api/projects/{id}/ideas")).status_code == 202
        await site.settled()
        assert (await http.delete(f"/api/projects/{gone}")).status_code == 204
        theirs = json_of(await other.post("/api/projects", json=BRIEF))["id"]
        await site.settled()
        # The relay role anchors what was stored (every AYTADA_ANCHOR_INTERVAL_S, 5 s here).
        anchors = AnchorLog(site.system.settings.anchors_dir)
        stored = site.stored()
        await wait_for(
            lambda: asyncio.to_thread(lambda: anchors.last_position() >= stored),
            30,
            "the anchors to cover the store",
        )

        answer = await http.get("/api/account/pack")
        statement = json_of(await http.get("/api/credits"))
        refused = await nobody.get("/api/account/pack")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in answer.headers["content-disposition"]
    assert refused.status_code == 401
    pack = tmp_path / "mine.pack"
    pack.write_bytes(answer.content)
    verified = verify_offline(pack, tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    records = [json.loads(line) for line in answer.content.splitlines()]
    projects = {r["project_id"] for r in records if r["kind"] == "reconciliation"}
    assert projects == {kept, gone}  # the deleted one too, nobody else's
    assert theirs not in answer.text
    anchored = {r["aggregate_id"] for r in records if r["kind"] == "anchor"}
    assert {kept, gone, str(account_id)} <= anchored
    # Each statement line carries the chain head it was recorded under, as the pack does.
    heads = {
        s.id: unseal(s.state)[0]  # type: ignore[index]
        for s in stored_history(site.system.studio, UUID(str(account_id)))
    }
    lines = statement["history"]
    assert lines and all(m["head"] == heads[m["position"]] for m in lines)
    in_pack = [(r["position"], r["head"]) for r in records if r["kind"] == "movement"]
    assert in_pack == [(m["position"], m["head"]) for m in lines]
    # One byte flipped: the same verifier refuses it.
    altered = bytearray(answer.content)
    altered[answer.content.index(b'"amount":') + 9] ^= 0x01
    pack.write_bytes(bytes(altered))
    assert verify_offline(pack, tmp_path).returncode == 1
