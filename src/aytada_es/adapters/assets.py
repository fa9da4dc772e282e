"""Generated files, stored once by content hash under the data directory."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..domain.assets import ASSET_LABELS
from ..domain.errors import AssetNotFound
from .permissions import PRIVATE_FILE, private_dir


class AssetStore:
    """Content-addressed files; events carry only the asset record, never the bytes.

    `kinds` are the asset kinds it stores, with their labels: the built-in ones and those the
    registered stages declare.
    """

    def __init__(self, root: Path, kinds: Mapping[str, str] = ASSET_LABELS) -> None:
        self.root = root
        self.kinds = dict(kinds)
        self._folders: set[str] = set()

    def path(self, asset_id: str) -> Path:
        if len(asset_id) != 64 or not all(c in "0123456789abcdef" for c in asset_id):
            raise AssetNotFound(asset_id)
        return self.root / asset_id[:2] / asset_id

    def put(self, content: bytes, *, kind: str, content_type: str) -> dict[str, Any]:
        """Store bytes (once) and return the asset record that events carry."""
        if kind not in self.kinds:
            raise ValueError(f"unknown asset kind {kind!r}: no registered stage records it")
        asset_id = hashlib.sha256(content).hexdigest()
        folder = os.path.join(self.root, asset_id[:2])
        target = os.path.join(folder, asset_id)
        if not os.path.exists(target):
            if folder not in self._folders:
                private_dir(self.root)
                private_dir(Path(folder))
                self._folders.add(folder)
            # Written aside, then renamed into place: a reader never sees half a file. Both
            # reach the disk before the event that names the asset is saved, so a power cut
            # never leaves a stored event pointing at a lost or empty file.
            aside = os.path.join(folder, f".{asset_id}.{os.getpid()}.{threading.get_ident()}")
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            with os.fdopen(os.open(aside, flags, PRIVATE_FILE), "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(aside, target)
            _sync_folder(folder)
        return {
            "id": asset_id,
            "kind": kind,
            "content_type": content_type,
            "size": len(content),
            "created_at": datetime.now(UTC).isoformat(),
        }

    def read(self, asset_id: str) -> bytes:
        try:
            return self.path(asset_id).read_bytes()
        except FileNotFoundError:
            raise AssetNotFound(asset_id) from None


def _sync_folder(folder: str) -> None:
    """Make a rename in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
