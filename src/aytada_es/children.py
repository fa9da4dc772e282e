"""Child processes (the broker, ffmpeg, espeak) that die with the service, even by SIGKILL."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def dying_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` making the kernel SIGKILL the child when its parent dies (None off Linux).

    Linux sends the signal when the *thread* that forked the child ends, not only the process:
    fork from a thread that lives as long as the child (the event loop's, one that waits for
    the child, or one of its own), never from a pool thread that may end while the child runs.
    """
    prctl = _prctl()  # looked up here: the child, between fork and exec, must not import
    if prctl is None:
        return None
    parent, kill = os.getpid(), int(signal.SIGKILL)

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), kill)

    return die_with_parent
