"""Who is asking (Bearer token, session cookie, or `?token=` on WebSockets), and may they."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..application import hash_token
from ..domain.errors import Forbidden, TokenExpired, Unauthenticated
from ..projections import AccountView
from .context import Web, web_of
from .revocations import TOKEN_EXPIRED, Credential, void_reason
from .session import SESSION_COOKIE

# Roles that may change their own projects; auditors change nothing.
WRITERS = ("user", "support")
QUERY_TOKEN = "aytada.query_token"  # noqa: S105 (a scope key, not a secret)
MAX_TOKEN_LENGTH = 200
SESSION_ENDED = "the session has ended; log in again"
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


@dataclass(frozen=True)
class Principal:
    """An authenticated account: its id, name and role, whether a cookie vouched for it, and
    the credential (token or session) it was authenticated with."""

    account_id: UUID
    name: str
    role: str
    by_cookie: bool = False
    credential: Credential | None = None

    @property
    def actor(self) -> str:
        """How events record who did something: `user:alice`."""
        return f"{self.role}:{self.name}"


def authenticate(conn: HTTPConnection) -> Principal:
    """The account making this request or WebSocket, or Unauthenticated (401).

    Blocking (it may read the database): from async code, run it in a thread. A page that
    catches Unauthenticated should redirect to `/login`.
    """
    web = web_of(conn)
    header = conn.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be `Bearer <token>`")
        return _by_token(web, token.strip())
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie:
        return _by_cookie(web, cookie)
    query_token = conn.scope.get(QUERY_TOKEN)
    if isinstance(query_token, str) and query_token:
        return _by_token(web, query_token)
    raise Unauthenticated("sign in first: send `Authorization: Bearer <token>` or log in")


def account_of_token(web: Web, token: str) -> AccountView:
    """The account a token lets in, or Unauthenticated: unknown, expired, or disabled."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("the token is not valid")
    token_hash = hash_token(token)
    account = web.read_models.account_by_token_hash(token_hash)
    if account is None:
        raise Unauthenticated("the token is not valid")
    reason = void_reason(account, _credential(account), time.time())
    if reason == TOKEN_EXPIRED:
        raise TokenExpired
    if reason is not None:
        raise Unauthenticated(reason)
    return account


def _by_token(web: Web, token: str) -> Principal:
    account = account_of_token(web, token)
    return _principal(account, _credential(account))


def _by_cookie(web: Web, cookie: str) -> Principal:
    now = time.time()
    session = web.sessions.find(cookie)
    if session is None or session.ended(now, web.sessions.idle_s):
        raise Unauthenticated(SESSION_ENDED)
    account = web.read_models.account(session.account_id)
    if account is None:
        raise Unauthenticated(SESSION_ENDED)
    credential = Credential(
        session.account_id,
        session.token_hash,
        account["position"],
        session=session.id_hash,
        expires_at=session.expires_at,
    )
    # A rotated token, a disabled account or an expired token ends the session too.
    if void_reason(account, credential, now) is not None:
        raise Unauthenticated(SESSION_ENDED)
    web.sessions.touch(session, now)
    return _principal(account, credential)


def _credential(account: AccountView) -> Credential:
    return Credential(
        account["id"],
        account["token_hash"],
        account["position"],
        expires_at=account["token_expires_at"],
    )


def _principal(account: AccountView, credential: Credential) -> Principal:
    by_cookie = credential.session is not None
    return Principal(UUID(account["id"]), account["name"], account["role"], by_cookie, credential)


def require_role(principal: Principal, roles: tuple[str, ...]) -> None:
    """Forbidden (403) unless the principal has one of the roles."""
    if principal.role not in roles:
        raise Forbidden(f"the {principal.role} role may not do this")


def require_same_origin(conn: HTTPConnection) -> None:
    """Forbidden (403) unless the browser says the request comes from our own pages."""
    origin = conn.headers.get("origin")
    if origin is not None:
        if _origin_host(origin) == _host(conn.headers.get("host", ""), conn.url.scheme):
            return
        raise Forbidden("cross-site request refused: the Origin is not this site")
    if conn.headers.get("sec-fetch-site") == "same-origin":
        return
    raise Forbidden("cross-site request refused: no Origin or Sec-Fetch-Site: same-origin")


def refuse_cross_site(conn: HTTPConnection) -> None:
    """Forbidden (403) when a browser says the request comes from another site."""
    if conn.headers.get("origin") is not None or conn.headers.get("sec-fetch-site") not in (
        None,
        "same-origin",
        "none",
    ):
        require_same_origin(conn)


def _origin_host(origin: str) -> str | None:
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return None
    return _host(parts.netloc, parts.scheme)


def _host(netloc: str, scheme: str) -> str:
    netloc = netloc.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and netloc.endswith(f":{default}"):
        return netloc[: -len(default) - 1]
    return netloc


class QueryToken:
    """Takes `?token=` off a WebSocket's query string, for `authenticate` and out of every log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and b"token=" in scope["query_string"]:
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            # The server logs the path from this same scope: change it in place.
            scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != "token"]).encode()
            scope[QUERY_TOKEN] = next((v for k, v in reversed(pairs) if k == "token"), "")
        await self.app(scope, receive, send)
