"""What the provider limits' gate costs a call: slots taken and freed per second, in one process.

Usage: python bench/limits.py [--calls N] [--tasks N] [--concurrency N] [--database-url URL]
Prints, for calls that do nothing inside their slot: the rate with no limit (a pause check
only), with a limit no call waits for (`--concurrency` above `--tasks`), and with a limit the
calls queue for (`--concurrency` below `--tasks`), owners taking turns.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from pipeline import fresh

from aytada_es.adapters.limits import ProviderLimits
from aytada_es.adapters.sql import SQLStore
from aytada_es.application import Studio
from aytada_es.config import ProviderLimit, Settings


async def rate(gate: ProviderLimits, provider: str, calls: int, tasks: int) -> float:
    """Slots per second, `tasks` callers at once, `calls` in all."""
    left = calls

    async def caller(owner: str) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with gate.slot(provider, owner):
                pass

    began = time.perf_counter()
    await asyncio.gather(*(caller(f"owner-{i % 4}") for i in range(tasks)))
    return calls / (time.perf_counter() - began)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh(args.database_url) as url:
        env = {"AYTADA_DATA_DIR": tmp}
        if url:
            env["AYTADA_DATABASE_URL"] = url
        studio = Studio(Settings.from_env(env).database().eventsourcing_env())
        limits = {
            "roomy": ProviderLimit(concurrency=args.tasks + 1),
            "tight": ProviderLimit(concurrency=args.concurrency),
        }
        gate = ProviderLimits(SQLStore.of(studio), limits)
        try:
            for provider, what in [
                ("free", "no limit (pause check)"),
                ("roomy", f"limit {args.tasks + 1}, never reached"),
                ("tight", f"limit {args.concurrency}, {args.tasks} callers queue"),
            ]:
                per_s = await rate(gate, provider, args.calls, args.tasks)
                print(f"{what:<36} {per_s:8.0f} slots/s ({1000 / per_s:.2f} ms each)")
        finally:
            await gate.aclose()
            studio.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--database-url")
    asyncio.run(main(parser.parse_args()))
