"""What a worker without the web app (relay, stages, projections) serves: /healthz, /metrics."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..service import Service
from . import health, metrics


def probes_app(service: Service) -> Starlette:
    """The health and metrics of a started system, for an orchestrator and a scraper."""
    expected = set(service.parts.health())
    keeps_read_models = "projections" in service.roles

    async def healthz(request: Request) -> Response:
        parts = await health.parts_of(service, expected, read_models=keeps_read_models)
        return health.answer(parts)

    app = Starlette(routes=[Route("/healthz", healthz), *(e.route() for e in metrics.ENDPOINTS)])
    app.state.service = service
    return app
