"""Why a step failed, said to a person, and the raw error kept for auditors without secrets."""

from __future__ import annotations

import re
from enum import StrEnum

MAX_ERROR = 1000


class FailureCode(StrEnum):
    """What kind of failure ended a step (docs/api.md §2 `failure.code`)."""

    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_REJECTED = "provider_rejected"
    RATE_LIMITED = "rate_limited"
    INVALID_OUTPUT = "invalid_output"
    INTERNAL = "internal"


# What a step makes, as a sentence names it.
_STEP_WORDS = {
    "ideas": "ad ideas",
    "script": "script",
    "scenes": "scene plan",
    "video": "video clips",
    "voiceover": "voiceover",
    "stitching": "final video",
}
# One sentence of what happened, one of what to do; never a count of attempts or a raw error
# (the Studio shows the attempts and the time beside it, from the failure's own fields).
_MESSAGES = {
    FailureCode.CANCELLED: "You stopped making the {step}. Nothing was charged for this step;"
    " retry to make it again.",
    FailureCode.TIMED_OUT: "Making the {step} took too long, so it was stopped. Nothing was"
    " charged for this step; retry to make it again.",
    FailureCode.PROVIDER_UNAVAILABLE: "The service that makes the {step} could not be reached"
    " or failed on its side. Nothing was charged for this step; retry in a few minutes.",
    FailureCode.PROVIDER_REJECTED: "The service that makes the {step} refused the request."
    " Nothing was charged for this step; if retrying does not help, contact support.",
    FailureCode.RATE_LIMITED: "The service that makes the {step} is busy with too many"
    " requests. Nothing was charged for this step; retry in a few minutes.",
    FailureCode.INVALID_OUTPUT: "The {step} came back in a form we could not use. Nothing was"
    " charged for this step; retry to make it again.",
    FailureCode.INTERNAL: "Something went wrong on our side while making the {step}. Nothing"
    " was charged for this step; retry, and contact support if it happens again.",
}


def step_words(step: str) -> str:
    """What a step makes, as a sentence names it: `scenes` make the "scene plan"."""
    return _STEP_WORDS.get(step, step.replace("_", " ").replace("-", " "))


def failure_message(code: str, step: str) -> str:
    """A plain sentence for a person: what happened to the step and what to do."""
    try:
        template = _MESSAGES[FailureCode(code)]
    except ValueError:
        template = _MESSAGES[FailureCode.INTERNAL]
    return template.format(step=step_words(step))


def code_of_old_error(error: str) -> FailureCode:
    """The failure code of an error recorded before codes existed (its raw text only)."""
    text = error.lower()
    if "rate limited" in text or "http 429" in text or "too_many" in text:
        return FailureCode.RATE_LIMITED
    if "permanentprovidererror" in text or "refused" in text or "http 4" in text:
        return FailureCode.PROVIDER_REJECTED
    if text.startswith(("valueerror", "validationerror")) or "malformed" in text:
        return FailureCode.INVALID_OUTPUT
    if "providererror" in text or "timed out" in text or "http 5" in text:
        return FailureCode.PROVIDER_UNAVAILABLE
    return FailureCode.INTERNAL


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_QUERY = re.compile(r"(?P<path>://[^\s?#'\"]+)\?[^\s'\"]*", re.IGNORECASE)
_SECRET_FIELD = re.compile(
    r"(?P<name>(?:api[-_]?key|x-api-key|xi-api-key|token|secret|password|signature)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',&;]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<name>bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_KEY_LIKE = re.compile(r"\b(?:sk|ayt|whsec)_[A-Za-z0-9_-]{8,}|\bsk-[A-Za-z0-9_-]{8,}")
_UNSHOWABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def redacted(error: str) -> str:
    """A raw error fit for an auditor: no credentials, query strings or control characters."""
    text = _USERINFO.sub(r"\g<scheme>[redacted]@", error)
    text = _QUERY.sub(r"\g<path>?[redacted]", text)
    text = _SECRET_FIELD.sub(r"\g<name>[redacted]", text)
    text = _BEARER.sub(r"\g<name>[redacted]", text)
    text = _KEY_LIKE.sub("[redacted]", text)
    text = _UNSHOWABLE.sub("\ufffd", text)
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"
