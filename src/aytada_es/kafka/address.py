"""Where `serve`'s bundled broker listens, written in the data dir for the other commands."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..adapters.permissions import PRIVATE_FILE

ADDRESS_FILE = "broker.address"


@contextlib.contextmanager
def announced(data_dir: Path, address: str) -> Iterator[None]:
    """Keep `address` in `<data dir>/broker.address` (0600) while the block runs."""
    path = data_dir / ADDRESS_FILE
    aside = data_dir / f".{ADDRESS_FILE}.{os.getpid()}"
    with os.fdopen(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE), "w") as f:
        f.write(f"{address}\n")
    os.replace(aside, path)
    try:
        yield
    finally:
        # Another serve of this data dir may have announced itself since: leave its address.
        if announced_address(data_dir) == address:
            path.unlink(missing_ok=True)


def announced_address(data_dir: Path) -> str | None:
    """The address a running `serve` announced in the data dir, if any."""
    try:
        address = (data_dir / ADDRESS_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return address or None
