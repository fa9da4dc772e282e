"""The Starlette app of aytada-es: the HTTP API, the live push, the pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, WebSocketRoute

from ..adapters.keys import session_key
from ..adapters.links import AssetLinks
from ..adapters.sessions import Sessions
from ..adapters.webhooks import Webhooks
from ..service import Service
from . import (
    evidence,
    health,
    library,
    login,
    metrics,
    pages,
    prices,
    projects,
    public,
    staff,
    webhooks,
)
from .auth import QueryToken
from .body import BodyLimit
from .context import Web, WebOptions
from .endpoints import Endpoint
from .errors import EXCEPTION_HANDLERS, UnexpectedErrors
from .headers import Nosniff
from .hosts import AllowedHosts
from .hub import Hub
from .openapi import OPENAPI, openapi_document
from .quota import SocketQuota, descriptor_budget
from .throttle import RateLimit
from .video_lists import VideoLists
from .ws import videos_socket

ENDPOINTS: tuple[Endpoint, ...] = (
    *projects.ENDPOINTS,
    *library.ENDPOINTS,
    *prices.ENDPOINTS,
    *evidence.ENDPOINTS,
    *staff.ENDPOINTS,
    *webhooks.ENDPOINTS,
    *login.ENDPOINTS,
    *health.ENDPOINTS,
    *metrics.ENDPOINTS,
    OPENAPI,
)


def _version() -> str:
    try:
        return version("aytada-es")
    except PackageNotFoundError:
        return "0"


def create_app(
    service: Service, options: WebOptions | None = None, *, secret_key: str | None = None
) -> Starlette:
    """The web app over a built system's service; starting the system is the caller's business.

    `secret_key` signs asset links (`AYTADA_SECRET_KEY`); without it, a key kept in the data
    dir. Sessions live in the event store's database, shared by every web process. The live
    push listens to this process's projections when it runs them, and tails the change feed
    otherwise (see `WebOptions.live`).
    """
    options = options or WebOptions()
    settings = service.settings
    sessions = Sessions(
        service.read_models.store,
        ttl_s=settings.session_ttl_s if options.session_ttl_s is None else options.session_ttl_s,
        idle_s=settings.session_idle_s
        if options.session_idle_s is None
        else options.session_idle_s,
    )
    source = options.live or ("projections" if "projections" in service.roles else "feed")
    hub = Hub(
        service.read_models,
        source=source,
        sessions=sessions,
        queue_limit=options.queue_limit,
        poll_s=options.feed_poll_s,
        revocation_check_s=options.revocation_check_s,
    )
    key = session_key(settings.data_dir, secret_key or settings.secret_key)
    web = Web(service, hub, sessions, options)
    web.video_lists = VideoLists(hub.feed, service.read_models.videos, service.read_models.epoch)
    max_sockets = options.max_sockets or descriptor_budget().sockets
    web.sockets = SocketQuota(settings.ws_per_user, max_sockets)
    web.logins = RateLimit(settings.rate_limit_login, "login attempts from this address")
    web.writes = RateLimit(settings.rate_limit_writes, "changes by this user")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        web.expected_parts = set(service.parts.health()) if service.roles else set()
        service.metrics.pushes.add(hub)
        try:
            yield
        finally:
            service.metrics.pushes.discard(hub)
            await hub.stop()

    routes: list[BaseRoute] = [e.route() for e in ENDPOINTS]
    routes.append(WebSocketRoute("/ws/videos", videos_socket))
    routes += pages.routes()
    links = AssetLinks(key, settings.public_url)
    routes += public.routes(links, service.assets)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Nosniff),
            Middleware(UnexpectedErrors),
            Middleware(AllowedHosts, hosts=settings.allowed_host_names()),
            Middleware(BodyLimit, limit=options.max_body),
            Middleware(QueryToken),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.web = web
    app.state.service = service
    app.state.openapi = openapi_document(ENDPOINTS, version=_version())
    app.state.webhooks = Webhooks(service.read_models.store)
    return app
