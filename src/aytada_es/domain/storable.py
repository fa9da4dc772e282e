"""What both event stores can hold: the checks every value passes before an event records it.

PostgreSQL's text cannot hold NUL, SQLite's integers stop at 64 bits, UTF-8 cannot encode a
lone surrogate, and JSON has no NaN. A value that either store (or a read model built from it)
could not hold is refused where it comes in, never stored to stop a read model later.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from .errors import BadInput

MAX_INTEGER = 2**63 - 1
MIN_INTEGER = -(2**63)
# Bidirectional embeddings, overrides and isolates: they make text display as something else.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MULTILINE = frozenset("\n\t")
# Generated text (a provider's answer) may also hold carriage returns.
_GENERATED = frozenset("\n\t\r")
_MAX_DEPTH = 20
# A stage's result is one event, published as one Kafka message (1 MB at most by default).
MAX_OUTPUT = 200_000


def text_problem(
    value: str, *, multiline: bool = False, allowed: frozenset[str] | None = None
) -> str | None:
    """Why a person's text cannot be stored, or None when it can."""
    if allowed is None:
        allowed = _MULTILINE if multiline else frozenset()
    for character in value:
        if character in allowed:
            continue
        category = unicodedata.category(character)
        if category == "Cc":
            extra = " other than newline and tab" if "\n" in allowed else ""
            return f"control characters{extra} are not allowed (found U+{ord(character):04X})"
        if category == "Cs":
            return "the text is not valid Unicode (a lone surrogate)"
        if character in BIDI_CONTROLS:
            return f"bidirectional control characters are not allowed (U+{ord(character):04X})"
    return None


def checked_text(field: str, value: str, *, multiline: bool = False) -> str:
    """The text itself, or BadInput naming the field."""
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise BadInput(f"the {field} cannot be stored", {field: problem})
    return value


def integer_problem(value: int) -> str | None:
    """Why an integer cannot be stored, or None when it fits a signed 64-bit integer."""
    if not MIN_INTEGER <= value <= MAX_INTEGER:
        return "must fit a signed 64-bit integer (at most 9223372036854775807)"
    return None


def data_problem(value: object, *, path: str = "", depth: int = 0) -> str | None:
    """Why JSON-like data made elsewhere (a provider's output) cannot be stored, or None.

    Generated text may hold newlines and tabs but no NUL or other control character that
    PostgreSQL or a browser would choke on.
    """
    where = path or "the value"
    if depth > _MAX_DEPTH:
        return f"{where} is nested too deeply"
    if isinstance(value, str):
        problem = _generated_text_problem(value)
        return None if problem is None else f"{where}: {problem}"
    if isinstance(value, bool | datetime | UUID) or value is None:  # the transcoder's own types
        return None
    if isinstance(value, int):
        problem = integer_problem(value)
        return None if problem is None else f"{where}: {problem}"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: not a finite number"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: keys must be text"
            problem = _generated_text_problem(key) or data_problem(
                item, path=f"{path}.{key}" if path else key, depth=depth + 1
            )
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = data_problem(item, path=f"{where}[{i}]", depth=depth + 1)
            if problem is not None:
                return problem
        return None
    return f"{where}: {type(value).__name__} cannot be stored"


def output_problem(value: object, *, path: str = "") -> str | None:
    """Why a stage's output cannot be stored and published as one event, or None."""
    problem = data_problem(value, path=path)
    if problem is None and len(repr(value)) > MAX_OUTPUT:
        problem = f"{path or 'the value'} is larger than {MAX_OUTPUT} characters"
    return problem


def _generated_text_problem(value: str) -> str | None:
    if value.isprintable():  # the common case, checked in C
        return None
    return text_problem(value, allowed=_GENERATED)
