"""Checks a dispute pack with nothing but the file: no database, no service, no settings.

The format and every check are specified in docs/auditing.md; this module imports only the
standard library and `cryptography`, so that `aytada-es audit verify` runs anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

FORMAT = "aytada-pack/1"
GENESIS = "0" * 64
SEAL_OPEN = b'{"_chain":"'
PROJECT_CREATED = ":Project.ProjectCreated"
# Each account event that moves credits: its kind, and how it moves the balance and the reserve.
ACCOUNT_MOVEMENTS = {
    ":Account.CreditsGranted": ("grant", 1, 0),
    ":Account.CreditsAdjusted": ("adjust", 1, 0),
    ":Account.CreditsHeld": ("reserve", -1, 1),
    ":Account.HoldCharged": ("charge", 0, -1),
    ":Account.HoldReleased": ("release", 1, -1),
}
PROJECT_CREDITS = {
    ":Project.CreditsReserved": "reserved",
    ":Project.CreditsCharged": "charged",
    ":Project.CreditsReleased": "released",
}
_KINDS = {"pack", "schemas", "event", "chain", "anchor", "reconciliation", "account", "movement"}
JSON = dict[str, Any]


@dataclass
class Verdict:
    """What a pack holds and every check it failed (none: intact and reconciled)."""

    problems: list[str] = field(default_factory=list)
    scope: JSON = field(default_factory=dict)
    public_key: str = ""
    events: int = 0
    aggregates: int = 0
    anchored: int = 0  # events covered by an anchor (at or before an anchored version)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> list[str]:
        scope = ", ".join(f"{k} {v}" for k, v in self.scope.items()) or "?"
        lines = [
            f"pack of {scope}: {self.events} events of {self.aggregates} aggregates,"
            f" {self.anchored} covered by anchors; signed by {self.public_key or '?'}"
        ]
        lines += [f"  FAILED: {p}" for p in self.problems]
        lines.append("pack verified" if self.passed else "pack NOT verified")
        return lines


def verify(data: bytes, pinned_key: str | None = None) -> Verdict:
    """Every check of docs/auditing.md on a pack's bytes; `pinned_key` must have signed it."""
    verdict = Verdict()
    lines = _lines(data, verdict)
    if lines is None:
        return verdict
    header, records, signature = lines[0][1], [r for _, r in lines[1:-1]], lines[-1][1]
    scope = header.get("scope")
    verdict.scope = scope if isinstance(scope, dict) else {}
    verdict.public_key = str(header.get("public_key", ""))
    signed = b"".join(raw for raw, _ in lines[:-1])
    _check_signature(signed, header, signature, pinned_key, verdict)
    try:
        _check_contents(records, verdict)
    except (KeyError, TypeError, ValueError) as e:
        verdict.problems.append(f"a record lacks a field or has a wrong type: {e!r}")
    return verdict


def _lines(data: bytes, verdict: Verdict) -> list[tuple[bytes, JSON]] | None:
    if not data.endswith(b"\n"):
        verdict.problems.append("the pack does not end with a newline (cut short?)")
        return None
    parsed: list[tuple[bytes, JSON]] = []
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            record = json.loads(raw)
        except ValueError:
            verdict.problems.append(f"line {number} is not JSON")
            return None
        if not isinstance(record, dict) or "kind" not in record:
            verdict.problems.append(f"line {number} is not a JSON object with a kind")
            return None
        parsed.append((raw, record))
    if len(parsed) < 2 or parsed[0][1]["kind"] != "pack" or parsed[-1][1]["kind"] != "signature":
        verdict.problems.append("a pack starts with its `pack` line and ends with its signature")
        return None
    if parsed[0][1].get("format") != FORMAT:
        verdict.problems.append(f"format {parsed[0][1].get('format')!r} is not {FORMAT}")
        return None
    for number, (_, record) in enumerate(parsed[1:-1], start=2):
        if record["kind"] not in _KINDS or record["kind"] == "pack":
            verdict.problems.append(f"line {number} has an unknown or repeated kind")
            return None
    return parsed


def _check_signature(
    signed: bytes, header: JSON, signature: JSON, pinned: str | None, verdict: Verdict
) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key_text = header.get("public_key")
    if signature.get("algorithm") != "ed25519" or signature.get("public_key") != key_text:
        verdict.problems.append("the signature line names another algorithm or key than the pack")
        return
    if pinned is not None and pinned.strip() != key_text:
        verdict.problems.append(f"signed by {key_text}, not by the pinned key {pinned.strip()}")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(key_text), validate=True))
        key.verify(base64.b64decode(str(signature.get("signature")), validate=True), signed)
    except (InvalidSignature, ValueError, binascii.Error):
        verdict.problems.append("the signature does not match the pack's bytes (altered)")


def _check_contents(records: list[JSON], verdict: Verdict) -> None:
    by_kind: dict[str, list[JSON]] = defaultdict(list)
    for record in records:
        by_kind[record["kind"]].append(record)
    schemas = by_kind["schemas"][0]["versions"] if len(by_kind["schemas"]) == 1 else None
    if schemas is None:
        verdict.problems.append("the pack needs exactly one `schemas` line")
        schemas = {}
    histories: dict[str, list[JSON]] = defaultdict(list)
    for event in by_kind["event"]:
        histories[event["aggregate_id"]].append(event)
    verdict.events, verdict.aggregates = len(by_kind["event"]), len(histories)
    heads: dict[str, dict[int, str]] = {}
    bodies: dict[str, list[tuple[str, JSON]]] = {}
    for aggregate_id, events in histories.items():
        heads[aggregate_id], bodies[aggregate_id] = _check_chain(
            aggregate_id, events, schemas, verdict
        )
    _check_chain_lines(by_kind["chain"], heads, verdict)
    _check_anchors(by_kind["anchor"], heads, verdict)
    projects = {a: b for a, b in bodies.items() if b and b[0][0].endswith(PROJECT_CREATED)}
    sums = _check_reconciliations(by_kind["reconciliation"], projects, verdict)
    accounts = {a["account_id"]: a for a in by_kind["account"]}
    if len(accounts) != 1:
        verdict.problems.append("the pack needs exactly one `account` line")
        return
    (account,) = accounts.values()
    if account["account_id"] not in bodies:
        verdict.problems.append(f"the events of account {account['account_id']} are missing")
        return
    _check_account(
        account, bodies[account["account_id"]], heads[account["account_id"]],
        by_kind["movement"], sums, verdict,
    )  # fmt: skip


def _check_chain(
    aggregate_id: str, events: list[JSON], schemas: JSON, verdict: Verdict
) -> tuple[dict[int, str], list[tuple[str, JSON]]]:
    """Each event's seal recomputed; the hash each version claims, and the bodies."""
    heads: dict[int, str] = {}
    bodies: list[tuple[str, JSON]] = []
    previous = GENESIS
    for expected, event in enumerate(events, start=1):
        where = f"{aggregate_id} v{event['version']}"
        if event["version"] != expected:
            verdict.problems.append(f"{aggregate_id}: v{expected} is missing or out of order")
            break
        state = base64.b64decode(event["state"], validate=True)
        claimed, body = _unsealed(state)
        if claimed is None:
            verdict.problems.append(f"{where} carries no seal")
            break
        if chain_hash(previous, aggregate_id, expected, event["topic"], body) != claimed:
            verdict.problems.append(f"{where} does not match its hash (altered)")
            break
        content = json.loads(body)
        version = content.get("class_version", 1)
        if event["topic"] not in schemas or version > schemas[event["topic"]]:
            verdict.problems.append(
                f"{where}: schema version {version} of {event['topic']} unknown"
            )
        heads[expected], previous = claimed, claimed
        bodies.append((event["topic"], content))
    return heads, bodies


def chain_hash(previous: str, aggregate_id: str, version: int, topic: str, body: bytes) -> str:
    """The hash that seals one stored event (docs/auditing.md, "The chain")."""
    parts = (
        previous.encode(),
        UUID(aggregate_id).bytes,
        version.to_bytes(8, "big"),
        topic.encode(),
        b"\n",
        body,
    )
    return hashlib.sha256(b"".join(parts)).hexdigest()


def _unsealed(state: bytes) -> tuple[str | None, bytes]:
    """The hash a stored state claims and the JSON it seals."""
    end = len(SEAL_OPEN) + 64
    if not state.startswith(SEAL_OPEN):
        return None, state
    claimed, rest = state[len(SEAL_OPEN) : end].decode("ascii", "replace"), state[end:]
    if rest == b'"}':
        return claimed, b"{}"
    if rest.startswith(b'",'):
        return claimed, b"{" + rest[2:]
    return None, state


def _check_chain_lines(
    chains: list[JSON], heads: dict[str, dict[int, str]], verdict: Verdict
) -> None:
    stated = {c["aggregate_id"]: c for c in chains}
    for aggregate_id, claimed in heads.items():
        chain = stated.get(aggregate_id)
        last = max(claimed, default=0)
        if chain is None:
            verdict.problems.append(f"{aggregate_id} has no `chain` line")
        elif chain["events"] != last or chain["head"] != claimed.get(last):
            verdict.problems.append(
                f"{aggregate_id}: the chain line says {chain['events']} events, head"
                f" {str(chain['head'])[:12]}..., the events end at v{last}"
            )
    for aggregate_id in set(stated) - set(heads):
        verdict.problems.append(f"{aggregate_id} has a `chain` line but no events")


def _check_anchors(anchors: list[JSON], heads: dict[str, dict[int, str]], verdict: Verdict) -> None:
    covered: dict[str, int] = {}
    for anchor in anchors:
        aggregate_id, version = anchor["aggregate_id"], anchor["version"]
        claimed = heads.get(aggregate_id, {}).get(version)
        if claimed != anchor["head"]:
            verdict.problems.append(
                f"{aggregate_id} v{version} was anchored at position {anchor['position']} with"
                f" {str(anchor['head'])[:12]}..., the pack's event claims"
                f" {'nothing' if claimed is None else claimed[:12] + '...'} (rewritten or cut)"
            )
        else:
            covered[aggregate_id] = max(covered.get(aggregate_id, 0), version)
    verdict.anchored = sum(covered.values())


def _check_reconciliations(
    stated: list[JSON], projects: dict[str, list[tuple[str, JSON]]], verdict: Verdict
) -> dict[str, dict[str, int]]:
    """Each project's credits summed from its events, checked against its reconciliation."""
    lines = {r["project_id"]: r for r in stated}
    sums: dict[str, dict[str, int]] = {}
    for project_id, bodies in projects.items():
        own = {"reserved": 0, "charged": 0, "released": 0}
        for topic, content in bodies:
            for suffix, name in PROJECT_CREDITS.items():
                if topic.endswith(suffix):
                    own[name] += int(content["amount"])
        sums[project_id] = own
        still = own["reserved"] - own["charged"] - own["released"]
        line = lines.get(project_id)
        if line is None:
            verdict.problems.append(f"project {project_id} has no reconciliation line")
            continue
        if still < 0:
            verdict.problems.append(
                f"project {project_id}: more charged and released than reserved"
            )
        if {k: line[k] for k in (*own, "still_reserved")} != {**own, "still_reserved": still}:
            verdict.problems.append(
                f"project {project_id}: its events add up to {own} with {still} still reserved,"
                f" the reconciliation says { ({k: line[k] for k in (*own, 'still_reserved')}) }"
            )
    for project_id in set(lines) - set(projects):
        verdict.problems.append(f"a reconciliation names project {project_id}, not in the pack")
    return sums


def _check_account(
    account: JSON,
    bodies: list[tuple[str, JSON]],
    heads: dict[int, str],
    movements: list[JSON],
    projects: dict[str, dict[str, int]],
    verdict: Verdict,
) -> None:
    """The account's movements replayed: each statement line, the end, and each project's sums."""
    balance = reserved = 0
    replayed: list[JSON] = []
    per_project: dict[str, dict[str, int]] = defaultdict(
        lambda: {"reserved": 0, "charged": 0, "released": 0}
    )
    names = {"reserve": "reserved", "charge": "charged", "release": "released"}
    for version, (topic, content) in enumerate(bodies, start=1):
        effect = next((e for s, e in ACCOUNT_MOVEMENTS.items() if topic.endswith(s)), None)
        if effect is None:
            continue
        kind, to_balance, to_reserved = effect
        amount = int(content["amount"])
        balance += to_balance * amount
        reserved += to_reserved * amount
        project_id = _uuid(content.get("project_id"))
        if project_id is not None and kind in names:
            per_project[project_id][names[kind]] += amount
        replayed.append(
            {
                "version": version,
                "movement": kind,
                "project_id": project_id,
                "amount": amount,
                "balance": balance,
                "reserved": reserved,
                "head": heads[version],
                "actor": content.get("actor"),
                "reason": content.get("reason"),
                "ticket": content.get("ticket"),
            }
        )
    shown = [{k: m.get(k) for k in replayed[0]} for m in movements] if replayed else movements
    if shown != replayed:
        verdict.problems.append("the statement's lines differ from the account's replayed events")
    if (account["balance"], account["reserved"]) != (balance, reserved):
        verdict.problems.append(
            f"the account says balance {account['balance']}, reserved {account['reserved']};"
            f" its events add up to {balance}, {reserved}"
        )
    for project_id, own in projects.items():
        theirs = per_project.get(project_id, {"reserved": 0, "charged": 0, "released": 0})
        if own != theirs:
            verdict.problems.append(
                f"project {project_id}: its own credits {own} differ from the account's {theirs}"
            )
    if "account" in verdict.scope:
        for project_id in set(per_project) - set(projects):
            verdict.problems.append(
                f"the account moved credits of project {project_id}, not in the pack"
            )


def _uuid(value: object) -> str | None:
    """A UUID as the stored JSON holds it (`{"_type_": "uuid_hex", "_data_": hex}`), as text."""
    if isinstance(value, dict) and value.get("_type_") == "uuid_hex":
        return str(UUID(str(value["_data_"])))
    return None if value is None else str(UUID(str(value)))
