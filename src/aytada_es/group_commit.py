"""Group commit: commands submitted concurrently from the event loop are saved together."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from .application import Studio


class GroupCommit:
    """Queues commands; while one group is being written the next one gathers.

    When idle a command runs at once (a group of one), so there is no added latency;
    under load many commands share one transaction and one commit.
    """

    def __init__(self, studio: Studio, *, max_group: int = 200) -> None:
        self.studio = studio
        self.max_group = max_group
        self._queue: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0
        self.commands = 0

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` (a Studio command) in the next group; return its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((functools.partial(fn, *args, **kwargs), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="group-commit")
        return await future

    async def _write(self) -> None:
        while self._queue:
            group = self._queue[: self.max_group]
            del self._queue[: self.max_group]
            commands = [command for command, _ in group]
            try:
                results = await asyncio.to_thread(self.studio.run_together, commands)
            except BaseException as e:  # the thread itself failed: every caller learns why
                results = [e] * len(group)
                if isinstance(e, asyncio.CancelledError):
                    for _, future in group:
                        future.cancel()
                    raise
            self.groups += 1
            self.commands += len(group)
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self) -> None:
        """Wait for the commands already queued."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
