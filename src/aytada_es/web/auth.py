"""Who is asking (Bearer token, session cookie, or `?token=` on WebSockets), and may they."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..application import hash_token
from ..domain.errors import Forbidden, Unauthenticated
from ..projections import AccountView
from .context import Web, fresh, web_of
from .session import SESSION_COOKIE

# Roles that may change their own projects; auditors change nothing.
WRITERS = ("user", "support")
QUERY_TOKEN = "aytada.query_token"  # noqa: S105 (a scope key, not a secret)
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


@dataclass(frozen=True)
class Principal:
    """An authenticated account: its id, name and role, and whether a cookie vouched for it."""

    account_id: UUID
    name: str
    role: str
    by_cookie: bool = False

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


def account_of_token(web: Web, token: str) -> AccountView | None:
    """The account a token belongs to, if any."""
    if len(token) > 200:
        return None
    token_hash = hash_token(token)
    return fresh(web, lambda: web.read_models.accounts.account_by_token_hash(token_hash))


def _by_token(web: Web, token: str) -> Principal:
    account = account_of_token(web, token)
    if account is None:
        raise Unauthenticated("the token is not valid")
    return _principal(account, by_cookie=False)


def _by_cookie(web: Web, cookie: str) -> Principal:
    account_id = web.sessions.claimed(cookie)
    if account_id is not None:
        account = fresh(web, lambda: web.read_models.accounts.account(account_id))
        if account is not None and web.sessions.verify(cookie, account["token_hash"]):
            return _principal(account, by_cookie=True)
    raise Unauthenticated("the session has ended; log in again")


def _principal(account: AccountView, *, by_cookie: bool) -> Principal:
    return Principal(UUID(account["id"]), account["name"], account["role"], by_cookie)


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
