"""Settling a dispute over HTTP: support adjusts credits, auditors read the account audit."""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest
from web_server import Site, json_of, site, site_settings

from aytada_es.audit.reports import AccountAudit

__all__ = ["site", "site_settings"]
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]


def name_of(site: Site, id: UUID) -> str:
    return site.system.studio.account(id).name


async def test_support_adjusts_credits_and_it_shows_in_credits_and_the_account_audit(
    site: Site,
) -> None:
    user_id, token = site.user(credits=100)
    name = name_of(site, user_id)
    _, support_token = site.user("support")
    _, auditor_token = site.user("auditor")
    async with (
        site.client(token) as http,
        site.client(support_token) as support,
        site.client(auditor_token) as auditor,
    ):
        answer = await support.post(
            f"/api/support/accounts/{name}/adjustments",
            json={"amount": 40, "reason": "charged after a delete", "ticket": "SUP-1"},
        )
        assert answer.status_code == 201, answer.text
        adjusted = json_of(answer)
        assert (adjusted["amount"], adjusted["balance"], adjusted["ticket"]) == (40, 140, "SUP-1")
        assert adjusted["actor"].startswith("support")
        position = int(answer.headers["X-Aytada-Position"])

        credits = json_of(await http.get(f"/api/credits?min_position={position}"))
        assert credits["balance"] == 140
        assert (credits["history"][-1]["kind"], credits["history"][-1]["amount"]) == ("adjust", 40)

        answer = await auditor.get(f"/api/audit/accounts/{name}")
        assert answer.status_code == 200, answer.text
        audit = AccountAudit.model_validate(json_of(answer))
        line = audit.history[-1]
        assert (line.kind, line.amount, line.reason, line.ticket) == (
            "adjust",
            40,
            "charged after a delete",
            "SUP-1",
        )
        assert line.actor == adjusted["actor"] and audit.passed and audit.balance == 140
        before = audit.history[-2].at  # the grant, before the adjustment
        then = AccountAudit.model_validate(
            json_of(await auditor.get(f"/api/audit/accounts/{name}", params={"at": before}))
        )
        assert (then.balance, [m.kind for m in then.history]) == (100, ["grant"])
        assert (await auditor.get("/api/audit/accounts/nobody-here")).status_code == 404
        assert (await auditor.get(f"/api/audit/accounts/{name}?at=soon")).status_code == 422


async def test_only_support_may_adjust_and_bad_input_changes_nothing(site: Site) -> None:
    user_id, token = site.user(credits=100)
    name = name_of(site, user_id)
    _, support_token = site.user("support")
    _, auditor_token = site.user("auditor")
    path = f"/api/support/accounts/{name}/adjustments"
    good = {"amount": 5, "reason": "goodwill", "ticket": "T-1"}
    async with (
        site.client(token) as http,
        site.client(support_token) as support,
        site.client(auditor_token) as auditor,
    ):
        stored = site.stored()
        for other in (http, auditor):
            assert (await other.post(path, json=good)).status_code == 403
        assert (await http.get(f"/api/audit/accounts/{name}")).status_code == 403
        for bad, field in (
            ({**good, "amount": "5"}, "amount"),
            ({**good, "amount": 0}, "amount"),
            ({**good, "amount": -101}, "amount"),
            ({**good, "amount": 2**63}, "amount"),
            ({**good, "reason": ""}, "reason"),
            ({**good, "reason": "a\x00b"}, "reason"),
            ({**good, "ticket": "T\u202e1"}, "ticket"),
            ({"amount": 5, "reason": "x"}, "ticket"),
            ({**good, "extra": 1}, "extra"),
        ):
            answer: httpx.Response = await support.post(path, json=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert field in json_of(answer)["error"]["fields"], (bad, answer.text)
        answer = await support.post("/api/support/accounts/nobody-here/adjustments", json=good)
        assert answer.status_code == 404
        assert site.stored() == stored
        assert site.system.studio.account(user_id).balance == 100
