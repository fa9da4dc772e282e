"""The session cookie: an opaque session id (adapters.sessions), HttpOnly and SameSite=Strict."""

from __future__ import annotations

from starlette.responses import Response

SESSION_COOKIE = "aytada_session"


def set_session_cookie(response: Response, session_id: str, *, max_age: int, secure: bool) -> None:
    """Hand the browser its session, for `max_age` seconds; Secure over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=max(max_age, 0),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    """Make the browser forget its session."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure
    )
