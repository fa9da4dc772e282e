"""What the web server logs: no secrets from query strings, and no floods of one warning."""

from __future__ import annotations

import functools
import logging
from urllib.parse import unquote_plus

from ..repeats import RepeatFilter

# Query parameters whose values are credentials: `?token=` on WebSockets, the signed asset links.
SECRET_PARAMETERS = frozenset({"token", "signature"})
REDACTED = "[redacted]"
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """A path as logged, with the values of secret query parameters replaced."""
    path, question, query = text.partition("?")
    if not question:
        return text
    pieces = []
    for piece in query.split("&"):
        name, _, _ = piece.partition("=")
        if unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
            piece = f"{name}={REDACTED}"
        pieces.append(piece)
    return f"{path}?{'&'.join(pieces)}"


class RedactSecrets(logging.Filter):
    """Redacts secret query parameters in the arguments of a log record (uvicorn's paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(a) if isinstance(a, str) and "?" in a else a for a in record.args
            )
        elif isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = redact(record.msg)
        return True


@functools.cache
def _filters() -> tuple[RedactSecrets, RepeatFilter]:
    return RedactSecrets(), RepeatFilter()


def install_log_filters() -> None:
    """Put the filters on uvicorn's loggers (once per process)."""
    redacting, repeats = _filters()
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if redacting not in logger.filters:
            logger.addFilter(redacting)
    errors = logging.getLogger("uvicorn.error")
    if repeats not in errors.filters:
        errors.addFilter(repeats)
