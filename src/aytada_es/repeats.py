"""Errors that come by the thousand (a process out of file descriptors) logged once a second."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

INTERVAL_S = 1.0
MAX_KINDS = 1000  # kinds remembered; beyond, those quiet for a second are forgotten


class Repeats:
    """Which occurrences of a kind of error to log: the first, then at most one per interval."""

    def __init__(
        self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._logged_at: dict[Hashable, float] = {}
        self._suppressed: Counter[Hashable] = Counter()

    def admit(self, kind: Hashable) -> int | None:
        """None: do not log this one; else log it, saying how many like it were not logged."""
        now = self.clock()
        last = self._logged_at.get(kind)
        if last is not None and now - last < self.interval_s:
            self._suppressed[kind] += 1
            return None
        if len(self._logged_at) >= MAX_KINDS:
            self._forget(now)
        self._logged_at[kind] = now
        return self._suppressed.pop(kind, 0)

    def _forget(self, now: float) -> None:
        for kind, at in list(self._logged_at.items()):
            if now - at >= self.interval_s:
                del self._logged_at[kind]
                self._suppressed.pop(kind, None)


def _not_logged(count: int) -> str:
    return f" ({count} more like it since the last one were not logged)"


def quiet_loop_errors(loop: asyncio.AbstractEventLoop, repeats: Repeats | None = None) -> None:
    """Give `loop` an exception handler that logs each kind of error at most once a second.

    When descriptors run out, asyncio's accept loop reports "socket.accept() out of system
    resource" for every attempt (thousands a second, each with its traceback); other errors are
    logged as before.
    """
    repeats = repeats or Repeats()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        kind = (context.get("message"), type(error).__name__, str(error)[:200])
        suppressed = repeats.admit(kind)
        if suppressed is None:
            return
        if suppressed:
            context = {**context, "message": str(context.get("message")) + _not_logged(suppressed)}
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class RepeatFilter(logging.Filter):
    """Lets a warning or error through at most once a second per message and exception type.

    Records below WARNING (access lines) all pass.
    """

    def __init__(self, repeats: Repeats | None = None) -> None:
        super().__init__()
        self.repeats = repeats or Repeats()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        error = record.exc_info[1] if record.exc_info else None
        kind = (record.name, record.levelno, str(record.msg), type(error).__name__, str(error))
        suppressed = self.repeats.admit(kind)
        if suppressed is None:
            return False
        if suppressed:
            record.msg = str(record.msg) + _not_logged(suppressed).replace("%", "%%")
        return True
