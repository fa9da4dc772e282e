"""An account's token: rotated, made to expire, disabled and enabled again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aytada_es.application import token_expiry
from aytada_es.domain.account import Account
from aytada_es.domain.errors import BadInput


def an_account(token_expires_at: datetime | None = None) -> Account:
    account = Account.open(
        name="ada", role="user", token_hash="a" * 64, token_expires_at=token_expires_at, actor="cli"
    )
    account.collect_events()
    return account


def test_a_new_account_is_enabled_and_its_token_never_expires_unless_told() -> None:
    account = an_account()
    assert (account.disabled, account.token_expires_at) == (False, None)
    later = datetime.now(UTC) + timedelta(days=3)
    assert an_account(token_expires_at=later).token_expires_at == later


def test_disabling_records_who_did_it_once() -> None:
    account = an_account()
    assert account.disable(actor="cli") is True
    assert account.disabled
    assert account.disable(actor="cli") is False  # disabled already: nothing more recorded
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["AccountDisabled"]
    assert events[0].actor == "cli"


def test_rotating_replaces_the_token_and_its_expiry_and_enables_the_account() -> None:
    account = an_account(token_expires_at=datetime.now(UTC) + timedelta(days=1))
    account.disable(actor="cli")
    later = datetime.now(UTC) + timedelta(days=30)
    account.rotate_token("b" * 64, token_expires_at=later, actor="cli")
    assert (account.token_hash, account.token_expires_at, account.disabled) == (
        "b" * 64,
        later,
        False,
    )
    account.rotate_token("c" * 64, actor="cli")
    assert account.token_expires_at is None
    rotated = account.collect_events()[-1]
    assert isinstance(rotated, Account.TokenRotated) and rotated.token_hash == "c" * 64


def test_an_expiry_without_a_time_zone_is_refused() -> None:
    with pytest.raises(BadInput, match="token_expires_at"):
        an_account(token_expires_at=datetime(2030, 1, 1))
    account = an_account()
    with pytest.raises(BadInput):
        account.rotate_token("b" * 64, token_expires_at=datetime(2030, 1, 1), actor="cli")
    assert account.pending_events == []


@pytest.mark.parametrize("days", [0, -1, 3651, True])
def test_a_token_lifetime_is_a_whole_number_of_days_from_1_to_3650(days: int) -> None:
    with pytest.raises(BadInput, match="expires_in"):
        token_expiry(days)


def test_a_token_lifetime_counts_from_now() -> None:
    assert token_expiry(None) is None
    expires_at = token_expiry(7)
    assert expires_at is not None
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(seconds=5)
