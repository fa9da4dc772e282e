"""The Host check: only the names this service is reached by (AYTADA_ALLOWED_HOSTS)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from .errors import HostNotAllowed, error_response

ANY_HOST = "*"
POLICY_VIOLATION = 1008


def host_name(header: str) -> str:
    """The host of a Host header: lower case, without the port or an IPv6 address's brackets."""
    host = header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        host = host[1:end] if end > 0 else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


class AllowedHosts:
    """Answers 400 to a request or WebSocket handshake whose Host is not an allowed name.

    A page of another site that points its own name at this server (DNS rebinding) reaches it
    with that name in the Host header, and is refused before anything reads a cookie.
    """

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.any = ANY_HOST in hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
        if host_name(header) in self.hosts:
            await self.app(scope, receive, send)
            return
        response = error_response(HostNotAllowed(header))
        if scope["type"] == "http":
            await response(scope, receive, send)
        elif "websocket.http.response" in scope.get("extensions", {}):
            await WebSocket(scope, receive, send).send_denial_response(response)
        else:
            await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": ""})
