"""The keys a restored copy needs: what is sealed into `keys.sealed`, and where it goes back."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.keys import KEY_FILE as SECRET_KEY_FILE
from ..pack.signing import KEY_FILE as SIGNING_KEY_FILE

# The keys kept as files in the data dir: the service's secret key (sessions, signed asset
# links; none when AYTADA_SECRET_KEY is set) and the Ed25519 key that signs dispute packs.
KEY_FILES = (SECRET_KEY_FILE, SIGNING_KEY_FILE)


@dataclass
class Keys:
    """Users' text keys, webhook secrets and the key files, by name."""

    text_keys: dict[str, str] = field(default_factory=dict)  # owner id (hex) -> key (hex)
    webhook_secrets: dict[str, str] = field(default_factory=dict)  # endpoint id -> secret
    files: dict[str, bytes] = field(default_factory=dict)  # file name in the data dir -> bytes

    def dump(self) -> bytes:
        return json.dumps(
            {
                "text_keys": self.text_keys,
                "webhook_secrets": self.webhook_secrets,
                "files": {k: base64.b64encode(v).decode() for k, v in self.files.items()},
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def load(cls, data: bytes) -> Keys:
        raw = json.loads(data)
        files = {str(k): base64.b64decode(v) for k, v in raw["files"].items()}
        unknown = set(files) - set(KEY_FILES)
        if unknown:
            raise ValueError(f"unexpected key files {sorted(unknown)}")
        return cls(dict(raw["text_keys"]), dict(raw["webhook_secrets"]), files)


def key_files(data_dir: Path) -> dict[str, bytes]:
    """The key files the data dir holds."""
    found = {}
    for name in KEY_FILES:
        try:
            found[name] = (data_dir / name).read_bytes()
        except FileNotFoundError:
            continue
    return found
