"""A user's webhook endpoints over HTTP: register, list, delete, and each one's deliveries."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..adapters.addresses import MAX_URL, AddressGuard
from ..adapters.webhooks import Webhooks
from ..domain.errors import BadInput, WebhookNotFound
from ..notation import utc_iso
from .auth import WRITERS
from .endpoints import Call, Endpoint
from .models import Answer, Request

EventType = Literal["project.completed", "project.failed", "project.status_changed"]


class NewWebhook(Request):
    """`POST /api/webhooks`: where to send, and which events (at least one)."""

    url: str = Field(min_length=1, max_length=MAX_URL)
    events: list[EventType] = Field(min_length=1, max_length=3)


class WebhookEndpoint(Answer):
    """An endpoint as listed: never its secret."""

    id: str
    url: str
    events: list[EventType]
    created_at: str


class NewWebhookAnswer(Answer):
    """The endpoint just registered, with its signing secret: shown this once only."""

    id: str
    url: str
    events: list[EventType]
    secret: str


class WebhookList(Answer):
    webhooks: list[WebhookEndpoint]


class Delivery(Answer):
    """One event's delivery to the endpoint, with every attempt's outcome so far."""

    webhook_id: str
    event_type: EventType
    project_id: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None


class DeliveryList(Answer):
    deliveries: list[Delivery]


def _webhooks(call: Call) -> Webhooks:
    """The webhook tables (made by `create_app`)."""
    webhooks = call.request.app.state.webhooks
    assert isinstance(webhooks, Webhooks)
    return webhooks


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else utc_iso(datetime.fromtimestamp(seconds, UTC))


def _listed(row: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"], url=row["url"], events=row["events"], created_at=str(_time(row["created_at"]))
    )


async def create_webhook(call: Call) -> NewWebhookAnswer:
    new = call.parsed(NewWebhook)
    if len(set(new.events)) != len(new.events):
        raise BadInput("the webhook is not valid", {"events": "name each event type once"})
    settings = call.web.service.settings
    guard = AddressGuard(settings.webhook_allowed_networks)
    await run_in_threadpool(guard.target, new.url)  # refused: 422 naming `url`, nothing stored
    endpoint = {
        "id": str(uuid.uuid4()),
        "owner_id": str(call.principal.account_id),
        "url": new.url,
        "events": list(new.events),
        "secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "created_at": time.time(),
    }
    webhooks = _webhooks(call)
    await run_in_threadpool(webhooks.add_endpoint, endpoint, limit=settings.webhook_max_endpoints)
    return NewWebhookAnswer(
        id=endpoint["id"], url=new.url, events=list(new.events), secret=endpoint["secret"]
    )


async def list_webhooks(call: Call) -> WebhookList:
    webhooks = _webhooks(call)
    rows = await run_in_threadpool(webhooks.endpoints_of, call.principal.account_id)
    return WebhookList(webhooks=[_listed(r) for r in rows])


def _own(call: Call, webhooks: Webhooks) -> dict[str, Any]:
    """The endpoint of the path, if it is the caller's and not deleted."""
    endpoint_id = call.request.path_params["id"]
    endpoint = webhooks.endpoint(endpoint_id)
    if (
        endpoint is None
        or endpoint["owner_id"] != str(call.principal.account_id)
        or endpoint["deleted_at"] is not None
    ):
        raise WebhookNotFound(endpoint_id)
    return endpoint


async def delete_webhook(call: Call) -> Response:
    webhooks = _webhooks(call)

    def delete() -> None:
        endpoint = _own(call, webhooks)
        if not webhooks.delete_endpoint(call.principal.account_id, endpoint["id"], time.time()):
            raise WebhookNotFound(endpoint["id"])

    await run_in_threadpool(delete)
    return Response(status_code=204)


async def list_deliveries(call: Call) -> DeliveryList:
    webhooks = _webhooks(call)

    def deliveries() -> list[dict[str, Any]]:
        return webhooks.deliveries_of(_own(call, webhooks)["id"])

    rows = await run_in_threadpool(deliveries)
    return DeliveryList(
        deliveries=[
            Delivery(
                webhook_id=r["webhook_id"],
                event_type=r["event_type"],
                project_id=r["project_id"],
                status=r["status"],
                attempts=r["attempts"],
                last_status_code=r["last_status_code"],
                last_error=r["last_error"],
                next_attempt_at=_time(r["next_attempt_at"]),
                created_at=str(_time(r["created_at"])),
                delivered_at=_time(r["delivered_at"]),
            )
            for r in rows
        ]
    )


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/webhooks",
        create_webhook,
        "Register a webhook endpoint; its signing secret is in this answer only",
        status=201,
        body=NewWebhook,
        answer=NewWebhookAnswer,
        roles=WRITERS,
        errors=(409,),
        tag="webhooks",
    ),
    Endpoint(
        "GET",
        "/api/webhooks",
        list_webhooks,
        "The user's webhook endpoints, oldest first (no secrets)",
        answer=WebhookList,
        tag="webhooks",
    ),
    Endpoint(
        "DELETE",
        "/api/webhooks/{id}",
        delete_webhook,
        "Delete a webhook endpoint; its pending deliveries are cancelled",
        status=204,
        roles=WRITERS,
        errors=(404,),
        tag="webhooks",
    ),
    Endpoint(
        "GET",
        "/api/webhooks/{id}/deliveries",
        list_deliveries,
        "An endpoint's deliveries, newest first: attempts, status, last answer, next attempt",
        answer=DeliveryList,
        errors=(404,),
        tag="webhooks",
    ),
)
