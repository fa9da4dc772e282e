"""`GET /healthz`: 200 while the store and every part are up; 503 naming what is down."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..projections import ReadModels
from ..service import Service
from .context import web_of
from .endpoints import Endpoint
from .errors import error_body
from .models import Health

log = logging.getLogger(__name__)
STORE_TIMEOUT_S = 2.0


async def store_up(models: ReadModels) -> bool:
    """Whether the event store's database answers a trivial query in time."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            await run_in_threadpool(models.answers)
    except Exception:
        log.warning("the store does not answer", exc_info=True)
        return False
    return True


async def read_models_up(models: ReadModels) -> dict[str, bool]:
    """`read_model:NAME` for each read model: up unless stopped or lagging (docs/api.md §2)."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            statuses = await run_in_threadpool(models.statuses)
    except Exception:
        log.warning("the read models' positions cannot be read", exc_info=True)
        return {f"read_model:{p.name}": False for p in models.projections}
    return {f"read_model:{s.name}": s.healthy for s in statuses}


async def parts_of(
    service: Service, expected: set[str], *, read_models: bool = False
) -> dict[str, bool]:
    """Whether each part of this process is up: its tasks, the broker, the store, and the read
    models when it serves them or keeps them.

    An `expected` part (one that was up at start-up) that has gone since counts as down.
    """
    parts = dict.fromkeys(expected, False)
    models = service.read_models
    checks = read_models_up(models) if read_models else _nothing()
    if service.roles:
        parts.update(service.parts.health())
        parts["broker"], parts["store"], kept = await asyncio.gather(
            service.parts.broker_answers(), store_up(models), checks
        )
    else:
        parts["store"], kept = await asyncio.gather(store_up(models), checks)
    parts.update(kept)
    return parts


async def _nothing() -> dict[str, bool]:
    return {}


def answer(parts: dict[str, bool]) -> Response:
    """200 with every part when all are up; 503 naming those that are down otherwise."""
    down = sorted(name for name, up in parts.items() if not up)
    health = Health(status="unavailable" if down else "ok", parts=parts, down=down)
    if not down:
        return Response(health.model_dump_json(exclude_none=True), media_type="application/json")
    body = health.model_dump(mode="json") | error_body("unavailable", f"down: {', '.join(down)}")
    return Response(
        Health.model_validate(body).model_dump_json(exclude_none=True),
        503,
        media_type="application/json",
    )


async def healthz(request: Request) -> Response:
    web = web_of(request)
    parts = await parts_of(web.service, web.expected_parts, read_models=True)
    parts["push"] = web.hub.healthy
    return answer(parts)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/healthz",
        healthz,
        "Health: 200 when the store, the broker, the workers and the read models are up;"
        " 503 and what is down",
        answer=Health,
        roles=None,
        errors=(503,),
        tag="health",
    ),
)
