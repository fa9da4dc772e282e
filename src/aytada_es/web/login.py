"""Logging in with a token (a server-side session, its id in an HttpOnly cookie) and out."""

from __future__ import annotations

import math
import time
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..domain.errors import BadInput, TokenExpired, TooManyRequests, Unauthenticated
from .auth import account_of_token, refuse_cross_site
from .body import form_or_json
from .context import web_of
from .endpoints import Endpoint
from .models import Login
from .session import SESSION_COOKIE, clear_session_cookie, set_session_cookie

HOME = "/dashboard/videos"
LOGIN_PAGE = "/login"


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only, never another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if any(c in target for c in "\r\n\t") or target.startswith(LOGIN_PAGE):
        return HOME
    return target


async def login(request: Request) -> Response:
    refuse_cross_site(request)
    web = web_of(request)
    content_type = request.headers.get("content-type", "").lower()
    from_form = content_type.startswith("application/x-www-form-urlencoded")
    try:
        form = await form_or_json(request, Login)
    except BadInput:
        if not from_form:
            raise
        return _back_to_login("missing_token", None)
    try:
        web.logins.hit(client_address(request))
    except TooManyRequests as e:
        if not from_form:
            raise
        response = _back_to_login("too_many_attempts", form.next)
        response.headers["Retry-After"] = str(e.retry_after_s)
        return response
    try:
        account = await run_in_threadpool(account_of_token, web, form.token)
    except Unauthenticated as e:
        if from_form:
            expired = isinstance(e, TokenExpired)
            return _back_to_login("expired_token" if expired else "invalid_token", form.next)
        raise
    session_id, session = await run_in_threadpool(
        web.sessions.open,
        account["id"],
        account["token_hash"],
        ends_by=account["token_expires_at"],
    )
    response = RedirectResponse(safe_next(form.next), status_code=303)
    set_session_cookie(
        response,
        session_id,
        max_age=math.ceil(session.expires_at - time.time()),
        secure=request.url.scheme == "https",
    )
    return response


def client_address(request: Request) -> str:
    """The address a login counts against: the client's, as uvicorn saw it.

    Behind a proxy, uvicorn takes it from `X-Forwarded-For` when the proxy's address is in
    `FORWARDED_ALLOW_IPS` (default 127.0.0.1); otherwise every login counts against the proxy.
    """
    return request.client.host if request.client else "unknown"


def _back_to_login(error: str, target: str | None) -> Response:
    query = {"error": error, **({"next": target} if target else {})}
    return RedirectResponse(f"{LOGIN_PAGE}?{urlencode(query)}", status_code=303)


async def logout(request: Request) -> Response:
    """End the session on the server (in every web process at once), and forget the cookie."""
    refuse_cross_site(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await run_in_threadpool(web_of(request).sessions.revoke, session_id)
    response = RedirectResponse(LOGIN_PAGE, status_code=303)
    clear_session_cookie(response, secure=request.url.scheme == "https")
    return response


ENDPOINTS = (
    Endpoint(
        "POST",
        "/login",
        login,
        "Log in with a token (form field or JSON `token`); sets the session cookie, 303 to `next`",
        status=303,
        body=Login,
        roles=None,
        errors=(401, 403, 429),
        tag="session",
    ),
    Endpoint(
        "POST",
        "/logout",
        logout,
        "Log out: ends the session on the server and clears its cookie, 303 to /login",
        status=303,
        roles=None,
        errors=(403,),
        tag="session",
    ),
)
