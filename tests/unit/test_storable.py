"""What the domain lets into the event store: text and numbers both stores can hold."""

from __future__ import annotations

import math
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aytada_es.domain.account import Account
from aytada_es.domain.errors import BadInput
from aytada_es.domain.project import Project, validate_brief
from aytada_es.domain.steps import Step
from aytada_es.domain.storable import MAX_INTEGER, data_problem, text_problem


@pytest.mark.parametrize(
    "title",
    ["a\x00b", "tab\there", "line\nbreak", "bell\x07", "del\x7f", "c1\x85", "rtl\u202eevil",
     "isolate\u2067x", "lone\ud800surrogate"],
)  # fmt: skip
def test_a_title_with_a_character_a_store_or_a_reader_chokes_on_is_refused(title: str) -> None:
    with pytest.raises(BadInput) as refused:
        validate_brief(title, "9:16", "brief")
    assert set(refused.value.fields) == {"title"}


def test_a_brief_may_hold_newlines_and_tabs_but_no_other_control_character() -> None:
    title, _, brief = validate_brief("Fizz", "1:1", "Line one\r\n\tLine two\nEnd")
    assert (title, brief) == ("Fizz", "Line one\n\tLine two\nEnd")
    for bad in ("nul\x00", "esc\x1b[31m", "lone\udfff", "\u202dforced"):
        with pytest.raises(BadInput) as refused:
            validate_brief("Fizz", "1:1", bad)
        assert set(refused.value.fields) == {"brief"}


def test_text_from_every_script_and_emoji_is_accepted() -> None:
    for text in ("Café crème", "東京の朝", "مرحبا", "👩‍🚀 launch", "Zürich\u00a0night", "ﬁne"):
        assert text_problem(text) is None
        validate_brief(text, "16:9", text)


@given(st.text())
def test_any_accepted_text_is_storable_anywhere(text: str) -> None:
    if text_problem(text, multiline=True) is None:
        encoded = text.encode("utf-8")  # no lone surrogate
        assert b"\x00" not in encoded
        assert all(not (0 <= ord(c) < 32) or c in "\n\t" for c in text)


def test_an_account_name_with_control_or_bidi_characters_is_refused() -> None:
    for name in ("bob\x00", "bob\u202e", "bob\n"):
        with pytest.raises(BadInput):
            Account.open(name=name, role="user", token_hash="0" * 64, actor="cli")


def test_credits_beyond_a_signed_64_bit_total_are_refused_and_nothing_is_recorded() -> None:
    account = Account.open(name="huge", role="user", token_hash="0" * 64, actor="cli")
    account.collect_events()
    with pytest.raises(BadInput) as refused:
        account.grant(99999999999999999999999, actor="cli")
    assert "64-bit" in refused.value.fields["credits"]
    account.grant(MAX_INTEGER, actor="cli")
    with pytest.raises(BadInput):
        account.grant(1, actor="cli")  # the total would overflow
    assert account.balance == MAX_INTEGER
    assert len(account.collect_events()) == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"text": "ok\nfine\r\n\t"}, None),
        ({"text": "nul\x00"}, "text"),
        ({"scenes": [{"headline": "a", "duration_s": math.nan}]}, "not a finite"),
        ({"units": 2**64}, "64-bit"),
        ({"n": -(2**63)}, None),
        ({"x": {1: "a"}}, "keys"),
        ({"x": object()}, "cannot be stored"),
        ({"ideas": [{"title": "\u202eabc"}]}, "bidirectional"),
    ],
)
def test_a_providers_output_is_checked_all_the_way_down(value: object, problem: str | None) -> None:
    found = data_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_stage_cannot_record_an_unstorable_result() -> None:
    project = Project.create(
        owner_id=uuid4(), title="Fizz", format="9:16", brief="", autopilot=False, actor="alice"
    )
    project.request_ideas(count=1, actor="alice")
    assert project.request is not None
    version = project.request["version"]
    project.collect_events()
    at = project.created_on
    generation = {"provider": "x", "stage_version": "1", "units": 1, "started_at": at,
                  "finished_at": at, "attempts": 1}  # fmt: skip

    with pytest.raises(BadInput):
        project.succeed(
            step=Step.IDEAS,
            version=version,
            result={"ideas": [{"title": "a\x00b"}]},
            generation=generation,
            actor="stage",
        )
    assert project.pending_events == []
    assert project.is_current(Step.IDEAS, version)
