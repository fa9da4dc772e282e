"""Shared HTTP plumbing of the cloud providers: bounded retries with exponential backoff.

Errors, as the stages see them:

    ProviderError                 retryable: the stage backs off and tries again
    ├── Transient                 one attempt failed (5xx, timeout, busy); retried here first
    ├── RateLimited               still 429 after the retries here
    └── PermanentProviderError    401/403, another 4xx: fails the step at once
        ├── InvalidOutput         a malformed answer
        └── NotFound              404: the provider may decide what a missing resource means
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from ..base import InvalidOutput, PermanentProviderError, ProviderError, RateLimited

T = TypeVar("T")


class Transient(ProviderError):
    """One attempt failed in a way that a later attempt may not; `wait_s` overrides the backoff."""

    def __init__(
        self, message: str, wait_s: float | None = None, *, rate_limited: bool = False
    ) -> None:
        super().__init__(message)
        self.wait_s = wait_s
        self.rate_limited = rate_limited


class NotFound(PermanentProviderError):
    """The remote resource does not exist (HTTP 404)."""


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently a provider retries a transient failure itself."""

    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """The pause after the `attempt`-th failure (0-based)."""
        return float(min(self.base_s * 2**attempt, self.max_s))


DEFAULT_BACKOFF = Backoff()


async def with_retries(api: str, backoff: Backoff, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` until it succeeds, retrying `Transient` failures a bounded number of times."""
    for n in range(backoff.attempts):
        try:
            return await attempt()
        except Transient as e:
            if n + 1 >= backoff.attempts:
                if e.rate_limited:
                    raise RateLimited(f"{api}: {e}", e.wait_s) from e
                raise ProviderError(f"{api}: {e}") from e
            await asyncio.sleep(e.wait_s if e.wait_s is not None else backoff.delay(n))
    raise AssertionError("unreachable")  # pragma: no cover


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
        raise Transient(
            f"{what}: rate limited: {detail}", retry_after(response.headers), rate_limited=True
        )
    if status >= 500 or status == 408:
        raise Transient(f"{what}: {detail}")
    if status == 404:
        raise NotFound(f"{what}: {detail}")
    raise PermanentProviderError(f"{what}: {detail}")


async def send(
    http: httpx.AsyncClient,
    api: str,
    backoff: Backoff,
    method: str,
    url: str,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request, retrying 5xx, 429 and timeouts; the response is a 2xx one."""

    async def attempt() -> httpx.Response:
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TimeoutException as e:
            raise Transient(f"{method} {url} timed out ({type(e).__name__})") from e
        except httpx.TransportError as e:
            raise Transient(f"{method} {url} failed: {e!r}") from e
        check_status(api, response)
        return response

    return await with_retries(api, backoff, attempt)


def json_of(api: str, response: httpx.Response) -> Any:
    """The response's JSON body, or a clear error naming what came instead."""
    try:
        return response.json()
    except ValueError:
        raise InvalidOutput(
            f"{api}: expected JSON from {response.request.url.path}, got "
            f"{response.headers.get('content-type', 'no content type')}: {response.text[:200]!r}"
        ) from None
