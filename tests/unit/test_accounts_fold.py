"""Account events the read model has not applied yet, folded in memory the way it applies them."""

from __future__ import annotations

from aytada_es.application import hash_token
from aytada_es.domain.account import Account
from aytada_es.projections.accounts import folded


def history() -> list[tuple[int, object]]:
    account = Account.open(name="ada", role="user", token_hash=hash_token("one"), actor="cli")
    account.grant(30, actor="cli")
    account.grant(12, actor="cli")
    return list(enumerate(account.collect_events(), start=1))


def test_an_account_opened_after_the_read_model_is_folded_from_its_events() -> None:
    [view] = folded([], history())
    assert view["name"] == "ada" and view["balance"] == 42 and view["position"] == 3
    assert view["token_hash"] == hash_token("one") and not view["disabled"]


def test_events_a_row_already_holds_are_not_counted_twice() -> None:
    events = history()
    [up_to_two] = folded([], events[:2])
    assert up_to_two["balance"] == 30
    [view] = folded([up_to_two], events)  # the row was read after the runner applied two
    assert view["balance"] == 42 and view["position"] == 3


def test_an_event_of_an_account_never_opened_is_left_out() -> None:
    assert folded([], history()[1:]) == []
