"""The hash chain of stored events, checked from raw stored events alone."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from aytada_es.adapters.chain import (
    GENESIS,
    chain_hash,
    first_broken,
    head_of,
    seal,
    unseal,
)

TOPIC = "aytada_es.domain.project:Project.CreditsCharged"


def a_history(aggregate: UUID, bodies: list[bytes]) -> list[StoredEvent]:
    """Stored events sealed as the event store seals them."""
    events, previous = [], GENESIS
    for version, body in enumerate(bodies, start=1):
        digest = chain_hash(previous, aggregate, version, TOPIC, body)
        events.append(StoredEvent(aggregate, version, TOPIC, seal(body, digest)))
        previous = digest
    return events


def bodies(n: int) -> list[bytes]:
    return [
        json.dumps({"step": "ideas", "amount": i}, separators=(",", ":")).encode() for i in range(n)
    ]


def test_the_hash_covers_the_previous_hash_the_id_the_version_the_topic_and_the_bytes() -> None:
    aggregate = uuid4()
    body = b'{"amount":3}'
    head = GENESIS.encode() + aggregate.bytes + (1).to_bytes(8, "big") + TOPIC.encode() + b"\n"
    expected = hashlib.sha256(head + body).hexdigest()
    assert chain_hash(GENESIS, aggregate, 1, TOPIC, body) == expected
    for changed in (
        chain_hash("1" * 64, aggregate, 1, TOPIC, body),
        chain_hash(GENESIS, uuid4(), 1, TOPIC, body),
        chain_hash(GENESIS, aggregate, 2, TOPIC, body),
        chain_hash(GENESIS, aggregate, 1, TOPIC.replace("Charged", "Released"), body),
        chain_hash(GENESIS, aggregate, 1, TOPIC, b'{"amount":4}'),
    ):
        assert changed != expected


def test_a_seal_is_valid_json_and_comes_off_exactly() -> None:
    digest = "ab" * 32
    for body in (b'{"amount":3,"step":"ideas"}', b"{}", '{"title":"Café ☕"}'.encode()):
        sealed = seal(body, digest)
        assert json.loads(sealed)["_chain"] == digest
        assert unseal(sealed) == (digest, body)
    assert unseal(b'{"amount":3}') is None
    assert unseal(b'{"_chain":"' + b"a" * 64 + b'"x') is None


def test_an_intact_history_verifies_and_its_head_is_the_last_hash() -> None:
    aggregate = uuid4()
    history = a_history(aggregate, bodies(5))
    assert first_broken(history) is None
    assert first_broken([]) is None
    assert head_of(history) == unseal(history[-1].state)[0]  # type: ignore[index]
    assert head_of([]) is None


def test_an_edited_event_is_named_even_when_its_own_hash_is_recomputed() -> None:
    aggregate = uuid4()
    history = a_history(aggregate, bodies(5))
    edited = history[2].state.replace(b'"amount":2', b'"amount":1')
    assert edited != history[2].state
    tampered = [*history[:2], replace(history[2], state=edited), *history[3:]]
    assert first_broken(tampered) == 3

    # Whoever also recomputes the edited event's own hash breaks the link to the next one.
    _, body = unseal(edited)  # type: ignore[misc]
    previous = unseal(history[1].state)[0]  # type: ignore[index]
    resealed = seal(body, chain_hash(previous, aggregate, 3, TOPIC, body))
    assert first_broken([*history[:2], replace(history[2], state=resealed), *history[3:]]) == 4


def test_a_removed_a_reordered_or_an_unsealed_event_is_named() -> None:
    aggregate = uuid4()
    history = a_history(aggregate, bodies(4))
    assert first_broken([history[0], history[2], history[3]]) == 2
    assert first_broken([history[1], history[0], *history[2:]]) == 1
    unsealed = replace(history[1], state=unseal(history[1].state)[1])  # type: ignore[index]
    assert first_broken([history[0], unsealed, *history[2:]]) == 2
    # The type of an event is part of what is sealed.
    retyped = replace(history[3], topic=TOPIC.replace("Charged", "Released"))
    assert first_broken([*history[:3], retyped]) == 4
    # So is the aggregate: a history cannot be moved to another project.
    other = uuid4()
    assert first_broken([replace(e, originator_id=other) for e in history]) == 1


def test_the_mapper_drops_the_seal_as_unseal_finds_it_and_keeps_a_state_without_one() -> None:
    from uuid import uuid4

    from eventsourcing.application import Application
    from eventsourcing.persistence import JSONTranscoder, StoredEvent
    from eventsourcing.utils import get_topic

    from aytada_es.adapters.chain import ChainMapper, seal, unseal
    from aytada_es.domain.account import Account

    transcoder = JSONTranscoder()
    Application[UUID]().register_transcodings(transcoder)
    mapper, topic = ChainMapper(transcoder), get_topic(Account.CreditsGranted)
    body = (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-05T21:00:00+00:00"},"amount":5}'
    )
    odd = b'{"_chain":"' + b'a"' * 32 + b'",' + body[1:]  # a claimed "hash" holding quotes
    for state in (seal(body, "f" * 64), body, seal(b"{}", "0" * 64), odd):
        event = mapper.to_domain_event(StoredEvent(uuid4(), 1, topic, state))
        found = unseal(state)
        expected = transcoder.decode(found[1] if found else state)
        assert {k: v for k, v in vars(event).items() if not k.startswith("originator")} == expected
