"""The manifest of a backup: what it holds, where the snapshot stands, every member's sha256."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "aytada-es-backup/1"
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"  # the sha256 of manifest.json, so no byte of it goes unchecked
STORE = "store.sqlite"
ANCHORS = "anchors.jsonl"
KEYS = "keys.sealed"
ASSETS = "assets/"


class Member(BaseModel):
    """One file of the backup."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Sealing(BaseModel):
    """How `keys.sealed` was sealed: AES-256-GCM under a key derived from the passphrase."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cipher: Literal["AES-256-GCM"] = "AES-256-GCM"
    kdf: Literal["scrypt"] = "scrypt"
    n: int
    r: int
    p: int
    salt: str  # base64
    nonce: str  # base64


class StoreInfo(BaseModel):
    """Where the snapshot came from and how its events are laid out in `store.sqlite`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["sqlite", "postgres"]
    events_table: str
    # The tables copied beside the events (PostgreSQL; SQLite's snapshot is the whole file).
    tables: list[str] = []


class Counts(BaseModel):
    """What the snapshot holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    events: int
    aggregates: int
    projects: int
    accounts: int
    erased_accounts: int
    assets: int
    anchors: int
    text_keys: int
    webhook_secrets: int


class Manifest(BaseModel):
    """Everything a verifier needs to know about a backup before reading its members."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["aytada-es-backup/1"] = "aytada-es-backup/1"
    version: str
    created_at: str
    position: int = Field(ge=0)  # the last event's position in the snapshot
    store: StoreInfo
    counts: Counts
    keys: Sealing
    members: dict[str, Member]
    # Assets named by an event of a user who was not erased, but missing from the data dir.
    missing_assets: list[str] = []

    def body(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()
