"""The proof that a restored copy is whole, run before it is moved into place."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from uuid import UUID

from ..adapters.anchors import AnchorLog
from ..adapters.sql import SQLStore
from ..application import Studio
from ..audit.account import account_audit
from ..audit.project import project_audit
from ..audit.reports import ChainCheck, Finding
from ..projections import ProjectionFailed, read_models
from ..projections.audited import ReadSideOf
from .contents import Contents
from .manifest import Manifest
from .snapshot import TEXT_KEYS, Progress


def prove(
    env: Mapping[str, str],
    anchors_dir: Path,
    assets_dir: Path,
    manifest: Manifest,
    contents: Contents,
    progress: Progress | None = None,
) -> tuple[list[str], int]:
    """Rebuild the read models, then audit every project and account and check every asset.

    Each project's and account's chain must verify against the anchors, its history replay, its
    credits reconcile (and the rebuilt read models' ledgers and balances agree with the replay),
    every needed asset be there with its checksum, and the store end at the backup's position.
    The problems found (none: proven whole) and how many events the rebuild applied.
    """
    problems: list[str] = []
    studio = Studio(env)
    try:
        last = studio.recorder.max_notification_id() or 0
        if last != manifest.position:
            problems.append(f"the store ends at {last}, the backup at {manifest.position}")
        models = read_models(studio)
        try:
            rebuilt = models.rebuild(progress=progress)
        except ProjectionFailed as failed:
            return [*problems, f"the read models could not be rebuilt: {failed}"], 0
        read_side = ReadSideOf(models)
        anchors = AnchorLog(anchors_dir)
        for project in sorted(contents.projects):
            trail = project_audit(studio, UUID(project), None, read_side, anchors)
            disagree = _disagreements(trail.findings)
            consistent = trail.reconciliation.consistent and trail.replay_error is None
            if not (trail.chain.verified and consistent and not disagree):
                why = _why(trail.chain, consistent, disagree)
                problems.append(f"project {project}: {why or trail.replay_error}")
        for account in sorted(contents.accounts):
            name = studio.account(UUID(account)).name
            audit = account_audit(studio, name, None, read_side, anchors)
            disagree = _disagreements(audit.findings)
            consistent = audit.consistent and not audit.unreadable_versions
            chains = audit.chain.verified and all(p.chain.verified for p in audit.projects)
            if not (chains and consistent and not disagree):
                problems.append(f"account {name!r}: {_why(audit.chain, consistent, disagree)}")
        problems += _assets(assets_dir, contents)
        keys = SQLStore.of(studio).query(
            f"SELECT COUNT(*) AS n FROM {{{TEXT_KEYS}}} WHERE key IS NOT NULL"  # noqa: S608
        )[0]["n"]
        if keys != manifest.counts.text_keys:
            problems.append(
                f"{keys} text keys restored, the backup holds {manifest.counts.text_keys}"
            )
    finally:
        studio.close()
    return problems, rebuilt


def _disagreements(findings: list[Finding]) -> list[Finding]:
    """The read models disagreeing with the replay. Other findings (a charge after a cancel)
    are the history's own, restored as they were: `aytada-es audit` reports them."""
    return [f for f in findings if f.kind == "read_model_disagrees"]


def _why(chain: ChainCheck, consistent: bool, findings: list[Finding]) -> str:
    reasons = []
    if not chain.verified:
        broken = chain.first_bad_version
        reasons.append(f"chain broken at v{broken}" if broken else "chain differs from anchors")
        reasons += chain.anchor_problems[:3]
    if not consistent:
        reasons.append("credits do not reconcile")
    reasons += [f.message for f in findings[:3]]
    return "; ".join(reasons)


def _assets(root: Path, contents: Contents) -> list[str]:
    problems = []
    for asset in sorted(contents.needed_assets()):
        try:
            with (root / asset[:2] / asset).open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            problems.append(f"asset {asset} is missing")
            continue
        if digest != asset:
            problems.append(f"asset {asset} does not match its checksum")
    return problems
