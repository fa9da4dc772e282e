"""`GET /metrics`: the system's metrics in the Prometheus text format (OpenMetrics on request)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..bootstrap import System
from .endpoints import Endpoint


def system_of(request: Request) -> System:
    """The system of the app serving this request."""
    system = request.app.state.system
    assert isinstance(system, System)
    return system


async def metrics(request: Request) -> Response:
    body, content_type = await run_in_threadpool(
        system_of(request).metrics.exposition, request.headers.get("accept")
    )
    return Response(body, headers={"Content-Type": content_type})


ENDPOINTS = (
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Metrics in the Prometheus text format: events stored and published, stages, lags, clients",
        roles=None,
        media="text/plain",
        tag="health",
    ),
)
