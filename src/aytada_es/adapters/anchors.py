"""The anchor log: chain heads written down outside the event store, append-only.

One file, `anchors.jsonl`, in its own directory (0700; the file 0600). Each line is a JSON
object `{"aggregate_id", "version", "head", "position", "at"}`: at store position `position`,
the aggregate's event `version` claimed the hash `head`. Lines are appended under an exclusive
lock and fsynced; nothing here rewrites or removes a line. `checked` compares a stored history
with its anchors: a rewrite of any anchored event, or of any event before it, shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from .chain import first_broken, unseal
from .permissions import PRIVATE_FILE, private_dir

LOG_FILE = "anchors.jsonl"
_TAIL = 64 * 1024  # enough of the end of the log to hold its last line


@dataclass(frozen=True)
class Anchor:
    """One aggregate's chain head as it was at a store position."""

    aggregate_id: str
    version: int
    head: str
    position: int
    at: str

    def line(self) -> bytes:
        fields = {
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "head": self.head,
            "position": self.position,
            "at": self.at,
        }
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes | str) -> Anchor:
        data: dict[str, Any] = json.loads(line)
        return cls(
            str(data["aggregate_id"]),
            int(data["version"]),
            str(data["head"]),
            int(data["position"]),
            str(data["at"]),
        )


class AnchorLog:
    """The append-only file of anchors in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOG_FILE
        self._read: tuple[tuple[int, int], bytes] | None = None  # (size, mtime), the bytes

    @contextlib.contextmanager
    def appending(self) -> Iterator[tuple[int, int]]:
        """Hold the log's lock: yields (the file's descriptor, the last anchored position)."""
        private_dir(self.directory)
        new = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        if new:  # the file's name is durable too
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd, _last_position(fd)
        finally:
            os.close(fd)  # and so unlocked

    def append(self, fd: int, anchors: Sequence[Anchor]) -> None:
        """Append these anchors in one write, durably (call inside `appending`)."""
        if not anchors:
            return
        data = b"".join(a.line() for a in anchors)
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)

    def last_position(self) -> int:
        """The store position of the last anchor (0 with none)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:
            return _last_position(fd)
        finally:
            os.close(fd)

    def of(self, aggregate_id: str) -> list[Anchor]:
        """Every anchor of one aggregate, in the order written."""
        # The log is read once while it does not change: an account's audit asks of each project.
        data, needle = self._bytes(), f'"aggregate_id":"{aggregate_id}"'.encode()
        anchors, at = [], data.find(needle)
        while at >= 0:
            start, end = data.rfind(b"\n", 0, at) + 1, data.find(b"\n", at)
            anchors.append(Anchor.parse(data[start : len(data) if end < 0 else end]))
            at = data.find(needle, len(data) if end < 0 else end)
        return anchors

    def _bytes(self) -> bytes:
        try:
            found = self.path.stat()
        except FileNotFoundError:
            return b""
        key = (found.st_size, found.st_mtime_ns)
        if self._read is None or self._read[0] != key:
            self._read = (key, self.path.read_bytes())
        return self._read[1]

    def all(self) -> list[Anchor]:
        try:
            with self.path.open("rb") as f:
                return [Anchor.parse(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


def _last_position(fd: int) -> int:
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    start = max(0, size - _TAIL)
    tail = os.pread(fd, size - start, start)
    lines = [line for line in tail.split(b"\n") if line.strip()]
    return Anchor.parse(lines[-1]).position if lines else 0


def head_at(events: Sequence[StoredEvent]) -> tuple[int, str] | None:
    """The version and hash the last of these events claims (None without a seal)."""
    if not events:
        return None
    sealed = unseal(events[-1].state)
    return None if sealed is None else (events[-1].originator_version, sealed[0])


def checked(history: Sequence[StoredEvent], anchors: Sequence[Anchor]) -> list[str]:
    """What does not match between a stored history (in version order) and its anchors."""
    problems: list[str] = []
    if anchors and first_broken(history) is not None:
        problems.append("the stored chain is broken, so the anchors cannot vouch for it")
    claimed: dict[int, str] = {}
    for event in history:
        sealed = unseal(event.state)
        if sealed is not None:
            claimed[event.originator_version] = sealed[0]
    for anchor in anchors:
        found = claimed.get(anchor.version)
        if found is None:
            problems.append(
                f"v{anchor.version} was anchored (position {anchor.position}, {anchor.at})"
                " but is no longer stored"
            )
        elif found != anchor.head:
            problems.append(
                f"v{anchor.version} claims {found[:12]}..., but {anchor.head[:12]}... was anchored"
                f" at position {anchor.position} ({anchor.at}): its history was rewritten"
            )
    return problems
