"""Numbers sent by clients (query parameters, cookies, headers), read strictly."""

from __future__ import annotations

# A position, a timestamp or a length fits in 18 digits; more is never a real value, and int()
# refuses past 4,300 digits anyway.
MAX_DIGITS = 18


def whole_number(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """`text` as a whole number (0 or more) in ASCII digits alone, else None.

    `str.isdigit()` alone also accepts digits of other scripts and superscripts (`²`), which
    `int()` then refuses or reads as something else.
    """
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
