"""The Ed25519 key that signs dispute packs, kept in the data directory (0600)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..adapters.permissions import PRIVATE_FILE, private_dir
from ..domain.errors import ConfigError

KEY_FILE = "pack-signing.key"


def signing_key(data_dir: Path) -> Ed25519PrivateKey:
    """The data dir's signing key, made at first use; of two processes making it, one wins."""
    path = data_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    private_dir(data_dir)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = data_dir / f".{KEY_FILE}.{secrets.token_hex(8)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read(path)


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The public key as a verifier pins it: its 32 raw bytes in base64."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode()


def _read(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} does not hold an Ed25519 key; move it away to make a new one")
    return key
