"""`aytada-es audit export | verify | key`: dispute packs on the command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

SUBCOMMANDS = ("export", "verify", "key")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aytada-es audit", description=__doc__)
    commands = parser.add_subparsers(dest="pack_command", required=True)
    export = commands.add_parser(
        "export", help="write a project's or an account's signed dispute pack"
    )
    export.add_argument("project_id", nargs="?", metavar="PROJECT_ID")
    export.add_argument("--account", metavar="USER", help="the user's pack instead")
    export.add_argument("-o", "--output", required=True, metavar="FILE", type=Path)
    export.set_defaults(usage=export)
    verify = commands.add_parser(
        "verify",
        help="check a pack with no database and no service: exit 0 when intact and reconciled,"
        " 1 otherwise",
    )
    verify.add_argument("file", metavar="FILE", type=Path)
    verify.add_argument("--key", metavar="PUBLIC_KEY", help="the signer's public key to insist on")
    commands.add_parser(
        "key", help="print the public key that signs this data dir's packs (last line, alone)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run `aytada-es audit SUBCOMMAND ...` (argv after `audit`)."""
    args = _parser().parse_args(argv)
    if args.pack_command == "verify":
        return _verify(args.file, args.key)
    # Only these two need the data dir, and only export needs the store.
    from ..config import Settings
    from ..domain.errors import AytadaError
    from .signing import public_key_text, signing_key

    try:
        settings = Settings.from_env(os.environ)
        key = signing_key(settings.data_dir)
        if args.pack_command == "key":
            print("the public key that signs this service's dispute packs (Ed25519, base64):")
            print(public_key_text(key))
            return 0
        if (args.project_id is None) == (args.account is None):
            args.usage.error("give either a PROJECT_ID or --account USER")
        return _export(settings, key, args)
    except AytadaError as e:
        print(f"aytada-es: {e.message}", file=sys.stderr)
        return 2


def _export(settings: object, key: object, args: argparse.Namespace) -> int:
    from uuid import UUID

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..adapters.anchors import AnchorLog
    from ..application import Studio
    from ..config import Settings
    from ..domain.errors import ProjectNotFound
    from .export import account_pack, project_pack, write

    assert isinstance(settings, Settings) and isinstance(key, Ed25519PrivateKey)
    studio = Studio(settings.database().eventsourcing_env())
    anchors = AnchorLog(settings.anchors_dir)
    try:
        if args.account is not None:
            data = account_pack(studio, anchors, key, args.account)
        else:
            try:
                project_id = UUID(args.project_id)
            except ValueError:
                raise ProjectNotFound(args.project_id) from None
            data = project_pack(studio, anchors, key, project_id)
    finally:
        studio.close()
    write(args.output, data)
    print(f"wrote {args.output} ({len(data)} bytes); check it with `aytada-es audit verify`")
    return 0


def _verify(path: Path, pinned: str | None) -> int:
    from .verify import verify

    try:
        data = path.read_bytes()
    except OSError as e:
        print(f"aytada-es: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 1
    verdict = verify(data, pinned)
    print("\n".join(verdict.summary()))
    return 0 if verdict.passed else 1
