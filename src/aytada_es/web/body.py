"""Request bodies: capped in size, parsed into pydantic models, bad input named field by field."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.errors import BadInput
from ..parsing import whole_number
from .errors import BodyTooLarge, error_body

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 64 * 1024


class BodyLimit:
    """Refuses a body over `limit` bytes, by its Content-Length or as it streams in (413)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name != b"content-length":
                continue
            length = whole_number(value.decode("latin-1"))
            if length is None or length > self.limit:
                too_large = BodyTooLarge(self.limit)
                response = JSONResponse(
                    error_body(too_large.code, too_large.message),
                    413,
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counting, send)


def problems(error: ValidationError) -> dict[str, str]:
    """Each field at fault and what is wrong with it; `body` for the body as a whole."""
    fields: dict[str, str] = {}
    for e in error.errors(include_url=False):
        name = ".".join(str(part) for part in e["loc"]) or "body"
        message = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        fields[name] = f"{fields[name]}; {message}" if name in fields else message
    return fields


def parse(model: type[M], body: bytes) -> M:
    """A JSON body as the model; an empty body is `{}`."""
    try:
        return model.model_validate_json(body if body.strip() else b"{}")
    except ValidationError as e:
        raise BadInput("the request body is not valid", problems(e)) from None


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body, validated (422 naming the fields at fault)."""
    return parse(model, await request.body())


async def form_or_json(request: Request, model: type[M]) -> M:
    """A urlencoded form (a page's `<form>`) or a JSON body, validated alike."""
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise BadInput("the form is not valid", {"body": "not UTF-8"}) from None
        try:
            return model.model_validate(fields, strict=False)
        except ValidationError as e:
            raise BadInput("the form is not valid", problems(e)) from None
    return parse(model, body)
