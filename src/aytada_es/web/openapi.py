"""The OpenAPI 3.1 document, built from the endpoint table and the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .endpoints import MAX_POSITION, MIN_POSITION, POSITION_HEADER, Endpoint
from .models import ErrorBody, Message
from .session import SESSION_COOKIE

REF = "#/components/schemas/{model}"
_PARAMETER = re.compile(r"{(\w+)}")
Mode = Literal["validation", "serialization"]
# The login page's form: whatever it holds, the answer is a 303 (home, or back to the page
# with `?error=`), so a form is never refused as JSON bodies are.
LOGIN_FORM = {
    "type": "object",
    "properties": {"token": {"type": "string"}, "next": {"type": "string"}},
    "description": "A missing or bad token answers 303 to /login?error=...",
}


def openapi_document(endpoints: Sequence[Endpoint], *, version: str) -> dict[str, Any]:
    """Every endpoint with its parameters, bodies, answers and errors; schemas as components."""
    wanted: list[tuple[type[BaseModel], Mode]] = [(ErrorBody, "serialization")]
    wanted += [(Message, "serialization")]
    for e in endpoints:
        if e.body is not None:
            wanted.append((e.body, "validation"))
        if e.answer is not None:
            wanted.append((e.answer, "serialization"))
    refs, top = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, refs)
    paths["/ws/videos"] = {"get": _live_push(refs[(Message, "serialization")])}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aytada-es",
            "version": version,
            "description": "The HTTP API of the My Videos area of an AI ad-video studio.",
        },
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
    }


def _operation(e: Endpoint, refs: Mapping[tuple[Any, Mode], Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": e.summary,
        "operationId": f"{e.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', e.path).rstrip('_')}",
        "tags": [e.tag],
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAMETER.findall(e.path)
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": parameter.description,
            "schema": parameter.schema,
        }
        for name, parameter in e.query.items()
    ]
    if e.reads:
        parameters.append(
            {
                "name": MIN_POSITION,
                "in": "query",
                "required": False,
                "description": "answer once the read models have applied this position (an"
                " `X-Aytada-Position` of a command's answer); 503 with `Retry-After` when they"
                " have not within 5 s",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_POSITION},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if e.body is not None:
        schema = refs[(e.body, "validation")]
        content = {"application/json": {"schema": schema}}
        if e.path == "/login":
            content["application/x-www-form-urlencoded"] = {"schema": LOGIN_FORM}
        operation["requestBody"] = {"required": False, "content": content}
    answer: dict[str, Any] = {"description": _phrase(e.status)}
    if e.answer is not None:
        answer["content"] = {"application/json": {"schema": refs[(e.answer, "serialization")]}}
    elif e.media:
        binary = {"schema": {"type": "string", "format": "binary"}}
        media = (e.media,) if isinstance(e.media, str) else e.media
        answer["content"] = dict.fromkeys(media, binary)
    if e.stores:
        answer["headers"] = {
            POSITION_HEADER: {
                "description": "the store position of the command's last event: pass it as"
                " `?min_position=` to a read to see this change",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    responses = {str(e.status): answer}
    error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
    for status in e.error_statuses:
        responses[str(status)] = {"description": _phrase(status), "content": error}
    operation["responses"] = responses
    if e.roles is not None:
        operation["security"] = [{"bearer": []}, {"session": []}]
        operation["x-roles"] = list(e.roles)
    return operation


def _live_push(message: Any) -> dict[str, Any]:
    return {
        "summary": "Live push of My Videos (WebSocket): a snapshot, then update/removed messages",
        "operationId": "ws_videos",
        "tags": ["videos"],
        "parameters": [
            {
                "name": "after",
                "in": "query",
                "required": False,
                "description": "resume after this position (or get a new snapshot)",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "token",
                "in": "query",
                "required": False,
                "description": "a token, for clients that cannot send headers",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "101": {
                "description": "Switching Protocols: JSON messages follow",
                "x-message": message,
            },
            "401": {"description": _phrase(401)},
            "403": {"description": _phrase(403)},
        },
        "x-close-codes": {"4008": "too slow: reconnect with ?after=", "1001": "server stopping"},
        "security": [{"bearer": []}, {"session": []}],
    }


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase


async def openapi_json(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


OPENAPI = Endpoint(
    "GET",
    "/openapi.json",
    openapi_json,
    "This document",
    roles=None,
    tag="meta",
)
