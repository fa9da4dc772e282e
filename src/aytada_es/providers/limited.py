"""Providers behind their limits: each call takes a slot of the limit its provider declares.

A provider class declares `limit_key = "elevenlabs"` (say) to share the limits
`AYTADA_LIMIT_ELEVENLABS_*` with every other provider of that key, in every process; one
without a key is never held back. A provider of a resource of the machine (its CPUs) also
declares `limit_per_machine = True`: the limit then holds per host, as the key `ffmpeg@host`.
The owner a call is made for is set by the stage kit around a step's generation
(`calls_for`); waiters are served fairly by owner.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import socket
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from .base import Providers, RateLimited

current_owner: ContextVar[str] = ContextVar("aytada_current_owner", default="")
STEPS = ("ideas", "script", "scenes", "clips", "voiceover", "stitching", "images")


class Gate(Protocol):
    """What a limited provider waits at (`adapters.limits.ProviderLimits`)."""

    def slot(self, provider: str, owner: str) -> AbstractAsyncContextManager[None]: ...

    async def slow_down(self, provider: str, seconds: float) -> None: ...


@contextmanager
def calls_for(owner: str) -> Iterator[None]:
    """Provider calls made inside (and in tasks started inside) are made for `owner`."""
    token = current_owner.set(owner)
    try:
        yield
    finally:
        current_owner.reset(token)


def limit_key(provider: object, host: str = "") -> str | None:
    """The limit a provider's calls take, if it declares one (`key@host` for one per machine)."""
    key = getattr(provider, "limit_key", None)
    if not isinstance(key, str) or not key:
        return None
    if getattr(provider, "limit_per_machine", False) is True:
        return f"{key}@{host or socket.gethostname()}"
    return key


class Limited:
    """A provider whose every public coroutine method waits for a slot of its limit first.

    A `RateLimited` with a Retry-After pauses every caller of the limit before it propagates.
    """

    def __init__(self, inner: object, gate: Gate, key: str) -> None:
        self.inner = inner
        self.gate = gate
        self.limit_key = key

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        async def limited(*args: Any, **kwargs: Any) -> Any:
            async with self.gate.slot(self.limit_key, current_owner.get()):
                try:
                    return await attribute(*args, **kwargs)
                except RateLimited as e:
                    if e.retry_after_s:
                        await self.gate.slow_down(self.limit_key, e.retry_after_s)
                    raise

        return limited


def limited_providers(providers: Providers, gate: Gate, *, host: str = "") -> Providers:
    """The same providers, each one that declares a `limit_key` behind the gate.

    `host`: the name of this machine, for limits per machine (default: its host name).
    """
    wrapped: dict[int, Limited] = {}
    changes: dict[str, Any] = {}
    for step in STEPS:
        provider = getattr(providers, step)
        key = limit_key(provider, host)
        if provider is None or key is None:
            continue
        if id(provider) not in wrapped:
            wrapped[id(provider)] = Limited(provider, gate, key)
        changes[step] = wrapped[id(provider)]
    return dataclasses.replace(providers, **changes) if changes else providers
