"""Shared HTTP plumbing of the cloud providers: one attempt, its failure classified.

A provider never retries: the stage runner alone does, with back-off and jitter, honouring a
`Retry-After` (consumers/runner.py). Errors, as the runner sees them:

    ProviderError                 5xx, 408, a timeout, a dropped connection: try again later
    ├── RateLimited               429: try again after its Retry-After
    └── PermanentProviderError    401/403, another 4xx: fails the step at once
        ├── InvalidOutput         a malformed answer
        └── NotFound              404: the provider may decide what a missing resource means
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ..base import InvalidOutput, PermanentProviderError, ProviderError, RateLimited


class NotFound(PermanentProviderError):
    """The remote resource does not exist (HTTP 404)."""


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The server's `Retry-After` in seconds, when it sent a usable one."""
    value = (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def check_status(api: str, response: httpx.Response) -> None:
    """Raise the provider error that a non-2xx response stands for."""
    status = response.status_code
    if status < 300:
        return
    what = f"{api}: HTTP {status} from {response.request.method} {response.request.url.path}"
    detail = response.text[:300]
    if status in (401, 403):
        raise PermanentProviderError(f"{what}: the API key was refused: {detail}")
    if status == 429:
        raise RateLimited(f"{what}: rate limited: {detail}", retry_after(response.headers))
    if status >= 500 or status == 408:
        raise ProviderError(f"{what}: {detail}")
    if status == 404:
        raise NotFound(f"{what}: {detail}")
    raise PermanentProviderError(f"{what}: {detail}")


async def send(
    http: httpx.AsyncClient, api: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send a request once; the response is a 2xx one, or the error it stands for is raised."""
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.TimeoutException as e:
        raise ProviderError(f"{api}: {method} {url} timed out ({type(e).__name__})") from e
    except httpx.TransportError as e:
        raise ProviderError(f"{api}: {method} {url} failed: {e!r}") from e
    check_status(api, response)
    return response


def json_of(api: str, response: httpx.Response) -> Any:
    """The response's JSON body, or a clear error naming what came instead."""
    try:
        return response.json()
    except ValueError:
        raise InvalidOutput(
            f"{api}: expected JSON from {response.request.url.path}, got "
            f"{response.headers.get('content-type', 'no content type')}: {response.text[:200]!r}"
        ) from None
