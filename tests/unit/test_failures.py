"""Failures as a person reads them, and raw errors as an auditor may see them."""

from __future__ import annotations

import re

import pytest

from aytada_es.domain.failures import (
    FailureCode,
    code_of_old_error,
    failure_message,
    redacted,
)


@pytest.mark.parametrize("code", list(FailureCode))
@pytest.mark.parametrize("step", ["ideas", "script", "scenes", "video", "voiceover", "stitching"])
def test_every_failure_is_a_plain_sentence_with_no_technical_detail(
    code: FailureCode, step: str
) -> None:
    message = failure_message(code, step)
    assert message[0].isupper() and message.endswith(".")
    assert not re.search(r"https?://|Error\b|Traceback|_", message)


def test_an_unknown_code_reads_as_an_internal_failure() -> None:
    assert failure_message("something_new", "video") == failure_message(
        FailureCode.INTERNAL, "video"
    )


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("GET https://user:hunter2@api.example.test/v1/render failed", "hunter2"),
        ("HTTP 500 from GET https://api.example.test/x?api_key=s3cr3t&b=1", "s3cr3t"),
        ("Authorization: Bearer abc.def.ghi refused", "abc.def.ghi"),
        ('{"xi-api-key": "k-123456789"} was refused', "k-123456789"),
        ("token=ayt_ABCDEFGHIJKLMNOP in the URL", "ayt_ABCDEFGHIJKLMNOP"),
        ("the key sk-proj-abcdefghijkl was refused", "sk-proj-abcdefghijkl"),
    ],
)
def test_a_raw_error_loses_its_credentials_and_query_strings(raw: str, secret: str) -> None:
    shown = redacted(raw)
    assert secret not in shown
    assert "[redacted]" in shown


def test_a_raw_error_keeps_what_an_auditor_needs_and_loses_control_characters() -> None:
    shown = redacted("ElevenLabs: HTTP 503 system_busy at https://api.example.test/v1/tts\x00\x1b")
    assert shown.startswith("ElevenLabs: HTTP 503 system_busy at https://api.example.test/v1/tts")
    assert "\x00" not in shown and "\x1b" not in shown
    assert len(redacted("x" * 5000)) == 1000


OLD_ERRORS = [
    ("PermanentProviderError: LLM: HTTP 401 from POST /chat: key refused", "provider_rejected"),
    ("ProviderError: ElevenLabs: HTTP 503 system_busy", "provider_unavailable"),
    ("ProviderError: Shotstack: HTTP 429 from GET /render: rate limited", "rate_limited"),
    ("ValueError: the provider returned no ideas", "invalid_output"),
    ("KeyError: 'text'", "internal"),
]


@pytest.mark.parametrize(("old", "code"), OLD_ERRORS)
def test_an_error_recorded_before_codes_existed_gets_the_code_its_text_implies(
    old: str, code: str
) -> None:
    assert code_of_old_error(old) == code


# What each code tells a person happened, in words of its own.
SAYS = {
    FailureCode.CANCELLED: "You stopped",
    FailureCode.TIMED_OUT: "took too long",
    FailureCode.PROVIDER_UNAVAILABLE: "could not be reached",
    FailureCode.PROVIDER_REJECTED: "refused the request",
    FailureCode.RATE_LIMITED: "too many requests",
    FailureCode.INVALID_OUTPUT: "a form we could not use",
    FailureCode.INTERNAL: "on our side",
}
MAKES = {
    "ideas": "ad ideas",
    "script": "script",
    "scenes": "scene plan",
    "video": "video clips",
    "voiceover": "voiceover",
    "stitching": "final video",
}


@pytest.mark.parametrize("code", list(FailureCode))
@pytest.mark.parametrize("step", list(MAKES))
def test_each_code_says_what_happened_to_what_the_step_makes_and_what_to_do(
    code: FailureCode, step: str
) -> None:
    message = failure_message(code, step)
    assert SAYS[code] in message
    assert f"the {MAKES[step]}" in message.lower()
    assert "retry" in message  # the way forward
    assert "Nothing was charged" in message  # a failed step releases all it reserved
    # never a count: the Studio shows the attempts beside it, and they must not disagree
    assert not re.search(r"\d|attempt|tries", message)


def test_every_code_has_a_sentence_of_its_own() -> None:
    messages = {failure_message(code, "voiceover") for code in FailureCode}
    assert len(messages) == len(FailureCode)
