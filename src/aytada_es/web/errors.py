"""The domain's errors as HTTP answers, mapped once at the edge: `{"error": {code, message}}`."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.errors import (
    AytadaError,
    BadInput,
    Conflict,
    Forbidden,
    InsufficientCredits,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
)

log = logging.getLogger(__name__)


class BodyTooLarge(AytadaError):
    """A request body over the cap (413)."""

    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")


class HostNotAllowed(AytadaError):
    """A request whose Host header names a host this service does not answer for (400)."""

    code = "host_not_allowed"

    def __init__(self, host: str) -> None:
        shown = host[:100] or "(none)"
        super().__init__(f"this service does not answer for the host {shown!r}")


# Most specific first: the first class an error is an instance of gives its status.
STATUS: tuple[tuple[type[AytadaError], int], ...] = (
    (BadInput, 422),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InsufficientCredits, 402),
    (BodyTooLarge, 413),
    (HostNotAllowed, 400),
    (TooManyRequests, 429),
    (ServiceUnavailable, 503),
)
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


def status_of(error: AytadaError) -> int:
    """The HTTP status of a domain error."""
    return next((status for kind, status in STATUS if isinstance(error, kind)), 400)


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """The contract's error envelope."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def error_response(error: AytadaError) -> JSONResponse:
    """The answer to a domain error."""
    status = status_of(error)
    fields = error.fields if isinstance(error, BadInput) else None
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if isinstance(error, TooManyRequests | ServiceUnavailable) and error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    return JSONResponse(error_body(error.code, error.message, fields), status, headers)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AytadaError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse(error_body(code, exc.detail), exc.status_code, exc.headers)


EXCEPTION_HANDLERS = {AytadaError: on_domain_error, HTTPException: on_http_error}


class UnexpectedErrors:
    """Outermost guard: an unexpected error is logged with its request and answered 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception(
                "unexpected error answering %s %s (client %s)",
                scope.get("method"),
                scope.get("path"),
                scope.get("client"),
            )
            if started:
                raise
            response = JSONResponse(
                error_body("internal_error", "something went wrong on our side; it was logged"),
                500,
            )
            await response(scope, receive, send)
