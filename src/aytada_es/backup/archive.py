"""The backup file: a plain tar, written 0600 and atomically, read back with every byte checked.

Every byte of the file is accounted for when it is read: each header must re-encode to exactly
its bytes, each member's content must match its sha256 in the manifest, and the padding after
each member and the end of the archive must be zeros. So a flipped byte anywhere is found.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..adapters.permissions import PRIVATE_DIR, PRIVATE_FILE
from .manifest import MANIFEST, MANIFEST_SUM, Manifest

BLOCK = tarfile.BLOCKSIZE
_NAME = re.compile(
    r"^(manifest\.json|manifest\.sha256|store\.sqlite|anchors\.jsonl|keys\.sealed"
    r"|assets/[0-9a-f]{2}/[0-9a-f]{64})$"
)
_CHUNK = 1 << 20


class BadArchive(Exception):
    """The file is not a whole, unchanged backup."""


@dataclass(frozen=True)
class Source:
    """A member to write: its name, size and a way to open its bytes."""

    name: str
    size: int
    open: Callable[[], BinaryIO]
    sha256: str | None = None  # checked while it is written, when known beforehand


@contextlib.contextmanager
def writing(path: Path) -> Iterator[tarfile.TarFile]:
    """A tar being written beside `path` (0600), renamed onto it only once it is whole."""
    if path.exists():
        raise FileExistsError(f"{path} exists; a backup never replaces a file")
    aside = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as file:
            with tarfile.open(fileobj=file, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                yield tar
            file.flush()
            os.fsync(file.fileno())
        os.link(aside, path)  # fails rather than replace a file made meanwhile
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def add(tar: tarfile.TarFile, source: Source, mtime: int) -> str:
    """Append one member; its sha256 (checked against `source.sha256` when given)."""
    info = tarfile.TarInfo(source.name)
    info.size, info.mode, info.mtime = source.size, 0o600, mtime
    info.uname = info.gname = ""
    digest = hashlib.sha256()
    with source.open() as raw:
        tar.addfile(info, _Hashing(raw, digest, source.size))
    found = digest.hexdigest()
    if source.sha256 is not None and found != source.sha256:
        raise BadArchive(f"{source.name} changed while it was copied (sha256 {found})")
    return found


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> str:
    return add(tar, Source(name, len(data), lambda: io.BytesIO(data)), mtime)


class _Hashing(io.RawIOBase):
    """Reads exactly `size` bytes of `raw`, hashing them; a short file is an error."""

    def __init__(self, raw: BinaryIO, digest: hashlib._Hash, size: int) -> None:
        self.raw, self.digest, self.left = raw, digest, size

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        data = self.raw.read(want)
        if len(data) < want:
            raise BadArchive("a file shrank while it was copied")
        self.left -= len(data)
        self.digest.update(data)
        return data


@dataclass
class Unpacked:
    """A backup read into `directory`: its manifest, and what did not check out."""

    directory: Path
    manifest: Manifest | None = None
    problems: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.directory / name


def unpack(path: Path, directory: Path) -> Unpacked:
    """Read every member into `directory`, checking every byte of the file as it goes."""
    found = Unpacked(directory)
    directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    sums: dict[str, tuple[str, int]] = {}
    try:
        with path.open("rb") as file, tarfile.open(fileobj=file, mode="r:") as tar:
            end = 0
            for info in tar:
                problem = _header_problem(file, info)
                if problem is not None:
                    found.problems.append(problem)
                    return found
                if info.name in sums:
                    found.problems.append(f"{info.name} appears twice")
                    return found
                sums[info.name] = (_extract(tar, info, directory), info.size)
                end = info.offset_data + _padded(info.size)
                if not _zeros(file, info.offset_data + info.size, end):
                    found.problems.append(f"the padding after {info.name} is not zeros")
                    return found
            if not _zeros(file, end, path.stat().st_size):
                found.problems.append("the bytes after the last member are not zeros")
                return found
    except (tarfile.TarError, OSError, BadArchive) as e:
        found.problems.append(f"not a readable backup: {e}")
        return found
    found.manifest = _manifest(found, sums)
    if found.manifest is not None:
        _compare(found, found.manifest, sums)
    return found


def _manifest(found: Unpacked, sums: dict[str, tuple[str, int]]) -> Manifest | None:
    if MANIFEST not in sums or MANIFEST_SUM not in sums:
        found.problems.append("the manifest is missing")
        return None
    body = found.path(MANIFEST).read_bytes()
    claimed = found.path(MANIFEST_SUM).read_text(errors="replace").strip()
    if hashlib.sha256(body).hexdigest() != claimed:
        found.problems.append("the manifest does not match its sha256: it was changed")
        return None
    try:
        return Manifest.model_validate_json(body)
    except ValueError as e:
        found.problems.append(f"the manifest cannot be read: {e}")
        return None


def _compare(found: Unpacked, manifest: Manifest, sums: dict[str, tuple[str, int]]) -> None:
    listed = set(manifest.members)
    present = set(sums) - {MANIFEST, MANIFEST_SUM}
    for name in sorted(listed - present):
        found.problems.append(f"{name} is listed in the manifest but missing")
    for name in sorted(present - listed):
        found.problems.append(f"{name} is in the file but not in the manifest")
    for name in sorted(listed & present):
        member, (digest, size) = manifest.members[name], sums[name]
        if (digest, size) != (member.sha256, member.size):
            found.problems.append(f"{name} does not match its sha256 in the manifest")


def _header_problem(file: BinaryIO, info: tarfile.TarInfo) -> str | None:
    if not _NAME.match(info.name) or not info.isfile():
        return f"unexpected member {info.name!r}"
    expected = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    file.seek(info.offset)
    if file.read(len(expected)) != expected or info.offset_data != info.offset + len(expected):
        return f"the header of {info.name} was changed"
    return None


def _extract(tar: tarfile.TarFile, info: tarfile.TarInfo, directory: Path) -> str:
    target = directory / info.name
    for folder in reversed(target.relative_to(directory).parents[:-1]):
        (directory / folder).mkdir(mode=PRIVATE_DIR, exist_ok=True)
    digest = hashlib.sha256()
    source = tar.extractfile(info)
    assert source is not None
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _zeros(file: BinaryIO, start: int, end: int) -> bool:
    file.seek(start)
    left = end - start
    while left > 0:
        chunk = file.read(min(left, _CHUNK))
        if not chunk or chunk.count(0) != len(chunk):
            return False
        left -= len(chunk)
    return True
