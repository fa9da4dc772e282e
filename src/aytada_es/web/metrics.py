"""`GET /metrics`: the system's metrics in the Prometheus text format (OpenMetrics on request)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..service import Service
from .endpoints import Endpoint


def service_of(request: Request) -> Service:
    """The service of the app serving this request."""
    service = request.app.state.service
    assert isinstance(service, Service)
    return service


async def metrics(request: Request) -> Response:
    body, content_type = await run_in_threadpool(
        service_of(request).metrics.exposition, request.headers.get("accept")
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
