"""A person's text sealed with their key: its shape kept, unreadable once the key is gone."""

from __future__ import annotations

import base64
import json
from uuid import uuid4

import pytest
from cryptography.exceptions import InvalidTag

from aytada_es.adapters.sealed_text import ERASED, SEALED, each_string, open_text, seal_text
from aytada_es.adapters.text_keys import TextKeys


def test_every_string_is_sealed_and_the_shape_of_the_value_stays() -> None:
    keys, owner = TextKeys(None), uuid4()
    key = keys.for_writing(owner)
    assert key is not None and len(key) == 32
    script = {"title": "Zest", "text": "Zest is here.", "words": 3, "lines": ["Zest", "is"]}
    sealed = each_string(script, lambda t: seal_text(t, owner, key))
    assert sealed["words"] == 3 and len(sealed["lines"]) == 2
    assert "Zest" not in json.dumps(sealed)
    assert all(v.startswith(SEALED + owner.hex + ":") for v in (sealed["title"], *sealed["lines"]))
    assert each_string(sealed, lambda t: open_text(t, keys)) == script


def test_two_seals_of_one_text_differ_and_neither_opens_as_another_owner() -> None:
    keys, owner, other = TextKeys(None), uuid4(), uuid4()
    key = keys.for_writing(owner)
    assert key is not None
    first, second = seal_text("Zest", owner, key), seal_text("Zest", owner, key)
    assert first != second  # a fresh nonce each time
    keys.for_writing(other)
    forged = SEALED + other.hex + ":" + first.rsplit(":", 1)[1]  # the owner is bound in
    with pytest.raises(InvalidTag):
        open_text(forged, keys)
    assert base64.urlsafe_b64decode(first.rsplit(":", 1)[1])[:12] != b"\0" * 12


def test_a_destroyed_key_reads_erased_and_is_never_made_again() -> None:
    keys, owner = TextKeys(None), uuid4()
    key = keys.for_writing(owner)
    assert key is not None
    sealed = seal_text("Zest", owner, key)
    keys.destroy(owner)
    assert open_text(sealed, keys) == ERASED
    assert keys.for_writing(owner) is None
    assert open_text("plain text of release 1", keys) == "plain text of release 1"
