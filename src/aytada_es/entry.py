"""The `aytada-es` command's entry: pack commands run without loading the service."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .pack.commands import SUBCOMMANDS as PACK_COMMANDS
from .pack.commands import main as pack_main


def main(argv: Sequence[str] | None = None) -> int:
    """`aytada-es audit verify` imports only the verifier; every other command, the CLI."""
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["audit"] and given[1:2] and given[1] in PACK_COMMANDS:
        return pack_main(given[1:])
    from .cli import main as cli_main

    return cli_main(given)
