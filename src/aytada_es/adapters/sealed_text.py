"""A person's text stored sealed with their key (AES-GCM), so destroying the key erases it.

Every string inside the personal fields below is stored as `SEALED` + the owner's id (hex) +
`:` + base64url(nonce | ciphertext | tag), the owner's id as associated data. The marker starts
with ESC, a control character no accepted text contains, so a release-1 plaintext value is
never taken for a sealed one. Keys, numbers and the shape of the value stay as they were.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import AggregateRecorder, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from .chain import ChainMapper, unseal
from .text_keys import TextKeys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED = "\x1baes1:"
ERASED = "[erased]"
# The fields that hold a person's text, by event class name: the title (on create and rename)
# and brief, the ideas, the script (the voice text), the scenes (their texts).
PERSONAL: dict[str, tuple[str, ...]] = {
    "ProjectCreated": ("title", "brief"),
    "ProjectRenamed": ("title",),
    "IdeasGenerated": ("ideas",),
    "ScriptGenerated": ("script",),
    "ScenesGenerated": ("scenes",),
}
_CREATED = "ProjectCreated"
_NONCE = 12
_CIPHERS_MAX = 10_000


def each_string(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with every string in it (not the keys of its objects) changed."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [each_string(v, change) for v in value]
    if isinstance(value, dict):
        return {k: each_string(v, change) for k, v in value.items()}
    return value


def seal_text(text: str, owner_id: UUID, key: bytes) -> str:
    """The sealed form of one string."""
    nonce = secrets.token_bytes(_NONCE)
    sealed = _aead(key).encrypt(nonce, text.encode(), owner_id.bytes)
    return f"{SEALED}{owner_id.hex}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_text(value: str, keys: TextKeys) -> str:
    """The plain text of a sealed string, `[erased]` without its key, unsealed text as is."""
    if not value.startswith(SEALED):
        return value
    owner_hex, _, body = value[len(SEALED) :].partition(":")
    owner_id = UUID(hex=owner_hex)
    key = keys.for_reading(owner_id)
    if key is None:
        return ERASED
    raw = base64.urlsafe_b64decode(body)
    return _aead(key).decrypt(raw[:_NONCE], raw[_NONCE:], owner_id.bytes).decode()


class SealedTextMapper(ChainMapper):
    """Seals the personal fields with their owner's key on the way in, opens them on the way out.

    `attach` gives it the key table and the recorder (to find a project's owner); until then,
    and for events without personal fields, it maps as `ChainMapper` does.
    """

    def __init__(self, transcoder: Transcoder) -> None:
        super().__init__(transcoder)
        self.keys: TextKeys | None = None
        self._recorder: AggregateRecorder | None = None
        self._owners: dict[UUID, UUID] = {}
        self._lock = threading.Lock()
        self._ciphers: dict[bytes, AESGCM] = {}  # by key: making one costs as much as opening

    def attach(self, keys: TextKeys, recorder: AggregateRecorder) -> None:
        self.keys, self._recorder = keys, recorder

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        fields = PERSONAL.get(type(domain_event).__name__)
        if not fields or self.keys is None:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        owner_id = self._owner(originator_id, state)
        key = self.keys.for_writing(owner_id)
        for field in fields:
            if key is None:  # the owner was erased: their text is not kept at all
                state[field] = each_string(state[field], lambda _: ERASED)
            else:
                state[field] = each_string(state[field], _sealer(owner_id, key))
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.opening(stored_event)

    def opening(
        self, stored_event: StoredEvent, only: Mapping[str, tuple[str, ...]] | None = None
    ) -> DomainEventProtocol[UUID]:
        """The domain event with the personal fields `only` names (by event class) opened and
        the others left sealed, as stored; every field of a class it does not name is opened."""
        event = super().to_domain_event(stored_event)
        name = type(event).__name__
        fields = PERSONAL.get(name)
        if fields and self.keys is not None:
            state = vars(event)
            if name == _CREATED:
                self._remember(event.originator_id, state["owner_id"])
            if only is not None:
                fields = only.get(name, fields)
            if fields:
                opener = _Opener(self.keys, self._ciphers)
                for field in fields:
                    state[field] = each_string(state[field], opener)
        return event

    def _owner(self, project_id: UUID, state: dict[str, Any]) -> UUID:
        if "owner_id" in state:
            owner = state["owner_id"]
            self._remember(project_id, owner)
            return owner  # type: ignore[no-any-return]
        known = self._owners.get(project_id)
        if known is not None:
            return known
        assert self._recorder is not None
        first = self._recorder.select_events(project_id, lte=1)
        sealed = unseal(first[0].state) if first else None
        if sealed is None:
            raise LookupError(f"project {project_id} has no readable first event")
        found: UUID = self.transcoder.decode(sealed[1])["owner_id"]
        self._remember(project_id, found)
        return found

    def _remember(self, project_id: UUID, owner_id: UUID) -> None:
        with self._lock:
            self._owners[project_id] = owner_id
            if len(self._owners) > 100_000:
                del self._owners[next(iter(self._owners))]


class _Opener:
    """Opens the sealed strings of one event, each owner's key looked up once."""

    def __init__(self, keys: TextKeys, ciphers: dict[bytes, AESGCM]) -> None:
        self.keys = keys
        self.ciphers = ciphers
        self._owners: dict[str, tuple[AESGCM | None, bytes]] = {}

    def __call__(self, value: str) -> str:
        if not value.startswith(SEALED):
            return value
        owner_hex, _, body = value[len(SEALED) :].partition(":")
        known = self._owners.get(owner_hex)
        if known is None:
            owner_id = UUID(hex=owner_hex)
            key = self.keys.for_reading(owner_id)
            known = self._owners[owner_hex] = (
                None if key is None else self._cipher(key),
                owner_id.bytes,
            )
        cipher, owner = known
        if cipher is None:
            return ERASED
        raw = base64.urlsafe_b64decode(body)
        return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], owner).decode()

    def _cipher(self, key: bytes) -> AESGCM:
        cipher = self.ciphers.get(key)
        if cipher is None:
            if len(self.ciphers) >= _CIPHERS_MAX:
                self.ciphers.clear()
            cipher = self.ciphers[key] = _aead(key)
        return cipher


def _sealer(owner_id: UUID, key: bytes) -> Callable[[str], str]:
    return lambda text: seal_text(text, owner_id, key)


def _aead(key: bytes) -> AESGCM:
    # Imported when text is first sealed or opened: commands that touch none start faster.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)
