"""A stage worker (`aytada-es worker stages` with instant providers) whose clips are renders of
a limited provider, each recorded with its start and end in a file that several workers share.

Run as `python -m fakes.recorded_worker RECORD_FILE DELAY_S` with the AYTADA_* environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
import time
from pathlib import Path

from aytada_es.adapters.assets import AssetStore
from aytada_es.bootstrap import bootstrap
from aytada_es.config import Settings
from aytada_es.providers.base import Brief, Call
from aytada_es.providers.instant import instant_providers
from aytada_es.providers.limited import current_owner

JSON = dict[str, object]


class RecordedClips:
    """Instant clips that take `delay_s`, limited as `renders`, each written down as it runs
    (when, start or end, the process, the owner it ran for)."""

    limit_key = "renders"

    def __init__(self, inner: object, record: Path, delay_s: float) -> None:
        self.inner = inner
        self.record = record
        self.delay_s = delay_s

    async def clip(self, brief: Brief, scene: JSON, call: Call) -> JSON:
        self._write("start")
        try:
            await asyncio.sleep(self.delay_s)
            return await self.inner.clip(brief, scene, call)  # type: ignore[attr-defined, no-any-return]
        finally:
            self._write("end")

    def _write(self, what: str) -> None:
        # One short write in append mode: lines of several processes never mix.
        with self.record.open("a") as out:
            out.write(f"{time.time():.6f} {what} {os.getpid()} {current_owner.get()}\n")


async def main(record: Path, delay_s: float) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s %(args)s")
    settings = Settings.from_env(os.environ)
    base = instant_providers(AssetStore(settings.assets_dir))
    providers = dataclasses.replace(base, clips=RecordedClips(base.clips, record, delay_s))
    system = bootstrap(settings, providers=providers, roles=("stages",))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with system.running():
            print("running", flush=True)
            await stop.wait()
    finally:
        system.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2])))
