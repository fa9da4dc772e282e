"""The keys inside a backup, sealed with the operator's passphrase (scrypt, then AES-256-GCM).

The passphrase comes from `AYTADA_BACKUP_PASSPHRASE` and is never stored: without it a backup's
keys (users' text keys, webhook secrets, the secret key, the packs' signing key) cannot be read,
and so neither can any user's sealed text in it. Everything else a verifier checks without it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..domain.errors import ConfigError
from .manifest import FORMAT, Sealing

PASSPHRASE_VARIABLE = "AYTADA_BACKUP_PASSPHRASE"  # noqa: S105 (a name, not a value)
MIN_PASSPHRASE = 12
# scrypt's cost: 2^15 x 8 x 128 bytes = 32 MiB and about 0.1 s per guess on these machines.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


class WrongPassphrase(Exception):
    """The passphrase does not open the sealed keys (or they were changed)."""


def passphrase(environ: Mapping[str, str]) -> str:
    """The backup passphrase from the environment; a missing or short one fails loudly."""
    given = environ.get(PASSPHRASE_VARIABLE, "")
    if len(given) < MIN_PASSPHRASE:
        raise ConfigError(
            f"{PASSPHRASE_VARIABLE} must hold a passphrase of at least {MIN_PASSPHRASE} characters:"
            " it seals the keys inside the backup (keep it apart from the backups)"
        )
    return given


def seal(plain: bytes, phrase: str) -> tuple[bytes, Sealing]:
    """The sealed bytes and how to open them again."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _derive(phrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed = AESGCM(key).encrypt(nonce, plain, FORMAT.encode())
    how = Sealing(n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, salt=_b64(salt), nonce=_b64(nonce))
    return sealed, how


def open_sealed(sealed: bytes, how: Sealing, phrase: str) -> bytes:
    """The plain bytes; `WrongPassphrase` when the passphrase or the bytes are wrong."""
    key = _derive(phrase, base64.b64decode(how.salt), how.n, how.r, how.p)
    try:
        return AESGCM(key).decrypt(base64.b64decode(how.nonce), sealed, FORMAT.encode())
    except InvalidTag:
        raise WrongPassphrase("the passphrase does not open the backup's keys") from None


def _derive(phrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(phrase.encode())


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
