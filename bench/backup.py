"""Online backup of a ~75k-event store: how long it takes and how long a writer ever waits.

Usage: python bench/backup.py [--projects N] [--owners N] [--seconds S] [--restore]
Builds once, and then reuses, the SQLite store of N project lives that `bench/rebuild.py`
builds (1,500 lives of 150 users: about 78,000 events) under var/bench-backup/. A writer in
another process (as `serve` is to the CLI) saves one event after another and times each save,
first alone, then while `aytada-es backup`'s code path runs: in steps of 256 pages (what the
command does) and, for comparison, in one step. It prints the backup's time and size, the
writes made meanwhile and the save latencies (median, p99, longest: the longest write stall)
side by side with the writer alone. `--restore` also times `backup verify` and `restore`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aytada_es.application import Studio
from aytada_es.backup.restore import restore_backup
from aytada_es.backup.take import take_backup
from aytada_es.backup.verify import verify_backup
from aytada_es.config import Settings
from aytada_es.domain.errors import AccountExists
from aytada_es.testing.history import store_history

ROOT = Path(__file__).resolve().parent.parent
PHRASE = "bench passphrase, not a secret"
WRITER = "bench-writer"


def settings_for(projects: int, owners: int) -> Settings:
    data_dir = ROOT / "var" / "bench-backup" / f"sqlite-p{projects}o{owners}"
    return Settings.from_env({"AYTADA_DATA_DIR": str(data_dir), "AYTADA_PROVIDERS": "instant"})


def ensure_history(settings: Settings, projects: int, owners: int) -> int:
    studio = Studio(settings.database().eventsourcing_env(), sole_writer=True)
    try:
        if not studio.recorder.max_notification_id():
            began = time.perf_counter()
            store_history(studio, projects, owners)
            print(f"stored the history in {time.perf_counter() - began:.1f} s (reused next)")
        with contextlib.suppress(AccountExists):  # made on the first run
            studio.open_account(WRITER, credits=0)
        return studio.recorder.max_notification_id() or 0
    finally:
        studio.close()


def write(data_dir: str, stop_file: str, out: str) -> None:
    """The writer process: one event per save until `stop_file` appears; (start, seconds) each."""
    settings = Settings.from_env({"AYTADA_DATA_DIR": data_dir, "AYTADA_PROVIDERS": "instant"})
    studio = Studio(settings.database().eventsourcing_env())
    saves = []
    try:
        while not os.path.exists(stop_file):
            began = time.time()
            t0 = time.perf_counter()
            studio.grant_credits(WRITER, 1)
            saves.append((began, time.perf_counter() - t0))
            if len(saves) == 20:
                Path(stop_file + ".ready").touch()
    finally:
        studio.close()
    Path(out).write_text(json.dumps(saves))


class Writer:
    """The writer process, started and stopped around a phase."""

    def __init__(self, settings: Settings, work: Path) -> None:
        self.stop_file, self.out = work / "stop", work / "saves.json"
        self.stop_file.unlink(missing_ok=True)
        self.ready = Path(f"{self.stop_file}.ready")
        self.ready.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--writer",
                str(settings.data_dir),
                str(self.stop_file),
                str(self.out),
            ]
        )

    def started(self) -> None:
        """Wait until the writer has saved a few events (its start is slow on a loaded box)."""
        while not self.ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError("the writer process ended")
            time.sleep(0.05)

    def stop(self) -> list[tuple[float, float]]:
        self.stop_file.touch()
        self.process.wait(timeout=60)
        return [tuple(s) for s in json.loads(self.out.read_text())]  # type: ignore[misc]


def figures(saves: list[tuple[float, float]], start: float, end: float) -> dict[str, float]:
    """The saves that began between `start` and `end` (or ended after `start`)."""
    inside = sorted(s for began, s in saves if began + s >= start and began <= end)
    if not inside:
        return {"saves": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "saves": len(inside),
        "p50_ms": statistics.median(inside) * 1000,
        "p99_ms": inside[min(len(inside) - 1, int(len(inside) * 0.99))] * 1000,
        "max_ms": inside[-1] * 1000,
    }


def phase(settings: Settings, work: Path, pages: int | None, seconds: float) -> dict[str, float]:
    """Writer alone (`pages` None) or with a backup in steps of `pages` pages (-1: one step)."""
    writer = Writer(settings, work)
    writer.started()
    start = time.time()
    result: dict[str, float] = {}
    if pages is None:
        time.sleep(seconds)
    else:
        target = work / f"backup-{pages}.tar"
        taken = take_backup(settings, target, PHRASE, pages=pages)
        result = {
            "backup_s": taken.seconds,
            "snapshot_s": taken.snapshot_s,
            "size_mb": target.stat().st_size / 1e6,
            "events": taken.manifest.counts.events,
        }
        if taken.problems:
            print("problems:", taken.problems[:3])
    end = time.time()
    saves = writer.stop()
    if pages is not None:  # the snapshot is the part that reads the store
        during = figures(saves, start, start + result["snapshot_s"])
        result["snapshot_max_ms"] = during["max_ms"]
        result["snapshot_saves"] = during["saves"]
    return {**result, **figures(saves, start, end), "seconds": end - start}


def main() -> None:
    if sys.argv[1:2] == ["--writer"]:
        write(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=1500)
    parser.add_argument("--owners", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=3.0, help="the writer alone, this long")
    parser.add_argument("--restore", action="store_true", help="also time verify and restore")
    args = parser.parse_args()
    settings = settings_for(args.projects, args.owners)
    stored = ensure_history(settings, args.projects, args.owners)
    database = Path(settings.database().path)
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as temporary:
        work = Path(temporary)
        alone = phase(settings, work, None, args.seconds)
        stepped = phase(settings, work, 256, args.seconds)
        one_step = phase(settings, work, -1, args.seconds)
        print(
            f"store:            SQLite, {stored:,} events, {database.stat().st_size / 1e6:.0f} MB"
        )
        print(f"load average:     {os.getloadavg()[0]:.1f} (2 cores, shared)")
        print(f"{'':18}{'writer alone':>14}{'backup, 256 pages/step':>26}{'backup, one step':>20}")
        rows = [
            ("backup (s)", None, "backup_s", "{:.2f}"),
            ("  snapshot (s)", None, "snapshot_s", "{:.2f}"),
            ("  file (MB)", None, "size_mb", "{:.1f}"),
            ("saves in snapshot", None, "snapshot_saves", "{:.0f}"),
            ("  longest (ms)", None, "snapshot_max_ms", "{:.1f}"),
            ("saves", "saves", "saves", "{:.0f}"),
            ("save p50 (ms)", "p50_ms", "p50_ms", "{:.1f}"),
            ("save p99 (ms)", "p99_ms", "p99_ms", "{:.1f}"),
            ("longest save (ms)", "max_ms", "max_ms", "{:.1f}"),
        ]
        for label, base, key, form in rows:
            first = form.format(alone[base]) if base else "-"
            print(
                f"{label:18}{first:>14}{form.format(stepped[key]):>26}"
                f"{form.format(one_step[key]):>20}"
            )
        ratio = stepped["max_ms"] / alone["max_ms"] if alone["max_ms"] else 0
        print(f"longest save during the backup / writer alone: {ratio:.2f}")
        if args.restore:
            backup = work / "backup-256.tar"
            began = time.perf_counter()
            verdict = verify_backup(backup, PHRASE)
            print(
                f"verify:           {time.perf_counter() - began:.2f} s, intact: {verdict.passed}"
            )
            target = work / "restored"
            began = time.perf_counter()
            done = restore_backup(
                Settings.from_env({"AYTADA_DATA_DIR": str(target), "AYTADA_PROVIDERS": "instant"}),
                backup,
                PHRASE,
            )
            print(
                f"restore:          {time.perf_counter() - began:.2f} s ({done.projects} projects,"
                f" {done.accounts} accounts audited, {done.rebuilt:,} events rebuilt)"
            )
            shutil.rmtree(target)


if __name__ == "__main__":
    main()
