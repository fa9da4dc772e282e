"""One HTTP endpoint: its route, who may call it, its bodies; OpenAPI reads the same table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..application import Studio
from ..domain.account import ROLES
from ..domain.errors import BadInput, NotYetApplied, ProjectNotFound
from ..parsing import whole_number
from .auth import Principal, authenticate, require_role, require_same_origin
from .body import json_body
from .context import Web, web_of

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# On every 2xx answer to a command: where its last event landed in the log (docs/api.md §2).
POSITION_HEADER = "X-Aytada-Position"
MIN_POSITION = "min_position"
# A position fits a signed 64-bit integer (BIGINT in the store).
MAX_POSITION = 2**63 - 1
RETRY_AFTER_S = 1
# How often a waiting read looks at the positions where this process's runner wakes it anyway
# (a safety net), and where another process applies the read models (its only way to learn).
POSITION_POLL_WITH_RUNNER_S = 1.0
POSITION_POLL_S = 0.05


@dataclass(frozen=True)
class Call:
    """An authenticated request, its validated body, and the web edge."""

    request: Request
    principal: Principal
    body: BaseModel | None
    web: Web
    # Where the commands this request ran left their last events.
    written: list[int] = field(default_factory=list)

    async def command(self, command: Callable[[Studio], T]) -> T:
        """Run a studio command in a thread; the answer then carries `X-Aytada-Position`."""
        studio = self.web.studio
        result, position = await run_in_threadpool(studio.positioned, lambda: command(studio))
        self.written.append(position)
        return result

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
    # A command that stores events: its 2xx answers carry `X-Aytada-Position` (`Call.command`).
    stores: bool = False
    # The read models it answers from: `?min_position=P` waits until they have applied P.
    reads: tuple[str, ...] = ()

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
        if self.reads:
            await self._wait_for_position(request, web)
        handler: Handler = self.handler  # type: ignore[assignment]
        call = Call(request, principal, body, web)
        answer = await handler(call)
        if not isinstance(answer, Response):
            answer = Response(answer.model_dump_json(), self.status, media_type="application/json")
        if self.stores and 200 <= answer.status_code < 300:
            if call.written:
                answer.headers[POSITION_HEADER] = str(max(call.written))
            else:  # a handler that did not run its command through `Call.command`
                log.error("%s %s answered without %s", self.method, self.path, POSITION_HEADER)
        return answer

    async def _wait_for_position(self, request: Request, web: Web) -> None:
        """With `?min_position=P`, answer once the read models have applied P, or 503."""
        position = min_position(request)
        if position is None:
            return
        if not await applied_in_time(web, position, self.reads):
            raise NotYetApplied(position, web.options.position_wait_s, RETRY_AFTER_S)

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
        if self.reads:
            statuses |= {422, 503}  # a bad `min_position`; not applied in time
        return tuple(sorted(statuses))


async def applied_in_time(web: Web, position: int, reads: Collection[str]) -> bool:
    """Wait (without applying anything) until the named read models have applied `position`."""
    options = web.options
    poll_s = options.position_poll_s
    if poll_s is None:
        runs_projections = "projections" in web.service.roles
        poll_s = POSITION_POLL_WITH_RUNNER_S if runs_projections else POSITION_POLL_S
    applied = web.read_models.applied
    return await applied.reach(position, reads, options.position_wait_s, poll_s)


def min_position(request: Request) -> int | None:
    """`?min_position=P`: a position of the log (a whole number, 0 or more), or None when absent."""
    raw = request.query_params.get(MIN_POSITION)
    if raw is None:
        return None
    position = whole_number(raw)
    if position is None or position > MAX_POSITION:
        raise BadInput(
            "bad min_position",
            {MIN_POSITION: f"a position of the event log: a whole number from 0 to {MAX_POSITION}"},
        )
    return position
