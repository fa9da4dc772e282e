"""One HTTP endpoint: its route, who may call it, its bodies; OpenAPI reads the same table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain.account import ROLES
from ..domain.errors import ProjectNotFound
from .auth import Principal, authenticate, require_role, require_same_origin
from .body import json_body
from .context import Web, web_of

M = TypeVar("M", bound=BaseModel)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Call:
    """An authenticated request, its validated body, and the web edge."""

    request: Request
    principal: Principal
    body: BaseModel | None
    web: Web

    def parsed(self, model: type[M]) -> M:
        """The body as the endpoint's declared model."""
        assert isinstance(self.body, model)
        return self.body

    def project_id(self) -> UUID:
        """The `{id}` of the path; a malformed one is a project that does not exist."""
        raw = self.request.path_params["id"]
        try:
            return UUID(raw)
        except ValueError:
            raise ProjectNotFound(raw) from None


@dataclass(frozen=True)
class Parameter:
    """A query parameter of an endpoint, as the OpenAPI document shows it."""

    description: str
    schema: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[BaseModel | Response]]
PublicHandler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """A route of the API. `roles` None: public (no authentication)."""

    method: str
    path: str
    handler: Handler | PublicHandler
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    roles: tuple[str, ...] | None = ROLES
    errors: tuple[int, ...] = ()
    query: dict[str, Parameter] = field(default_factory=dict)
    media: str | tuple[str, ...] = ()  # the answer's content type(s), when it is not JSON
    tag: str = "projects"

    def route(self) -> Route:
        if self.roles is None:
            return Route(self.path, self.handler, methods=[self.method])
        return Route(self.path, self._guarded, methods=[self.method])

    async def _guarded(self, request: Request) -> Response:
        assert self.roles is not None
        web = web_of(request)
        principal = await run_in_threadpool(authenticate, request)
        require_role(principal, self.roles)
        if self.method not in SAFE_METHODS:
            if principal.by_cookie:
                require_same_origin(request)
            web.writes.hit(str(principal.account_id))
        body = await json_body(request, self.body) if self.body is not None else None
        handler: Handler = self.handler  # type: ignore[assignment]
        answer = await handler(Call(request, principal, body, web))
        if isinstance(answer, Response):
            return answer
        return Response(answer.model_dump_json(), self.status, media_type="application/json")

    @property
    def error_statuses(self) -> tuple[int, ...]:
        """Every error status this endpoint can answer."""
        statuses = set(self.errors)
        if self.roles is not None:
            statuses |= {401}
            if set(self.roles) != set(ROLES) or self.method not in SAFE_METHODS:
                statuses |= {403}
            if self.method not in SAFE_METHODS:
                statuses |= {429}  # AYTADA_RATE_LIMIT_WRITES
        if self.body is not None:
            statuses |= {413, 422}
        return tuple(sorted(statuses))
