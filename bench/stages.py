"""Issue 11's figures in one run: an idle `serve`'s CPU, one project's latency, the pipeline ratio.

Usage: python bench/stages.py [--projects 20] [--idle-s 30] [--pipeline-projects 300]
Starts `aytada-es serve` (with its bundled broker) on loopback in a fresh data dir with the
instant providers, then prints:
- the time from `POST /api/projects` (autopilot) to the card arriving `completed` over the
  owner's WebSocket, for N projects one after another (p50, p90, max), after one warm-up project;
- the CPU that the serve process and its broker child use while idle, as % of one core, over
  `--idle-s` seconds that start 5 s after the last project completed;
- then it stops serve and runs `bench/pipeline.py --projects P` (its own broker) for the ratio of
  end-to-end to raw event-store writes.
The load average is printed at the start and the end: on 2 cores anything else running moves
every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

HOST = "127.0.0.1"
GOALS = {"idle_cpu_pct": 3.0, "latency_p50_ms": 150.0, "pipeline_ratio": 0.45}
SETTLE_S = 5.0
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User plus system clock ticks of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    """The child processes of `pid`, whichever of its threads started them."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def new_user(env: dict[str, str], name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aytada_es", "users", "add", name, "--credits", str(10**7)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def start_serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start `aytada-es serve --port 0`; returns the process and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aytada_es", "serve", "--host", HOST, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if match := re.search(r"web on (http://[\d.]+:\d+)", line):
            return process, match.group(1)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError("serve did not start")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def completed_times(url: str, token: str, projects: int) -> list[float]:
    """Milliseconds from each create to its card `completed` on the owner's WebSocket."""
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = url.replace("http://", "ws://") + "/ws/videos"
    times: list[float] = []
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http,
        connect(ws_url, additional_headers=headers, compression=None) as socket,
    ):
        snapshot = json.loads(await socket.recv())
        assert snapshot["type"] == "snapshot", snapshot

        async def one(title: str, timeout_s: float) -> float:
            body = {
                "title": title,
                "format": "9:16",
                "brief": "Sparkling water.",
                "autopilot": True,
            }
            began = time.perf_counter()
            created = await http.post("/api/projects", json=body)
            created.raise_for_status()
            project_id = created.json()["id"]
            async with asyncio.timeout(timeout_s):
                while True:
                    message: dict[str, Any] = json.loads(await socket.recv())
                    video = message.get("video") or {}
                    if video.get("id") == project_id and video.get("status") == "completed":
                        return (time.perf_counter() - began) * 1000
                    if video.get("id") == project_id and video.get("status") == "failed":
                        raise RuntimeError(f"{title} failed: {video}")

        # The first project waits for the six stage groups to join: not timed.
        await one("Warm-up", 120)
        for i in range(projects):
            times.append(await one(f"Timed {i}", 30))
    return times


def idle_cpu(pid: int, seconds: float) -> tuple[float, float]:
    """% of one core used by serve and by its broker child over `seconds`."""
    broker = children(pid)
    before = cpu_ticks(pid), sum(cpu_ticks(c) for c in broker)
    began = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - began
    after = cpu_ticks(pid), sum(cpu_ticks(c) for c in broker)
    pct = [100 * (b - a) / TICKS_PER_S / elapsed for a, b in zip(before, after, strict=True)]
    return pct[0], pct[1]


def pipeline_ratio(projects: int) -> tuple[float, str]:
    """Run bench/pipeline.py; its ratio and its own output."""
    script = Path(__file__).with_name("pipeline.py")
    done = subprocess.run(
        [sys.executable, str(script), "--projects", str(projects)],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"^ratio \(goal >= [\d.]+\):\s+([\d.]+)", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no ratio in bench/pipeline.py's output:\n{done.stdout}")
    return float(match.group(1)), done.stdout


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=20, help="timed projects, one at a time")
    parser.add_argument("--idle-s", type=float, default=30.0, help="how long idle CPU is measured")
    parser.add_argument("--pipeline-projects", type=int, default=300)
    parser.add_argument("--no-pipeline", action="store_true", help="skip bench/pipeline.py")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "AYTADA_DATA_DIR": data_dir,
            "AYTADA_PROVIDERS": "instant",
            "AYTADA_LOG_LEVEL": "WARNING",
            "AYTADA_RATE_LIMIT_WRITES": "0",
        }
        token = new_user(env, "bench-stages")
        serve, url = start_serve(env)
        try:
            times = asyncio.run(completed_times(url, token, args.projects))
            time.sleep(SETTLE_S)
            serve_pct, broker_pct = idle_cpu(serve.pid, args.idle_s)
        finally:
            stop(serve)
    p50, p90 = percentile(times, 50), percentile(times, 90)
    print(
        f"create → completed, {args.projects} autopilot projects one at a time: p50 {p50:.0f} ms, "
        f"p90 {p90:.0f} ms, max {max(times):.0f} ms, mean {statistics.fmean(times):.0f} ms",
        flush=True,
    )
    idle = serve_pct + broker_pct
    print(
        f"idle serve over {args.idle_s:.0f} s: {idle:.1f} % of one core "
        f"(serve {serve_pct:.1f} %, broker {broker_pct:.1f} %)",
        flush=True,
    )
    ratio = None
    if not args.no_pipeline:
        ratio, output = pipeline_ratio(args.pipeline_projects)
        print(f"bench/pipeline.py --projects {args.pipeline_projects}:")
        print("".join(f"  {line}\n" for line in output.strip().splitlines()), end="", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print()
    print(f"{'figure':<44} {'measured':>10} {'goal':>10}")
    rows = [
        (
            "idle serve + broker, % of one core",
            idle,
            GOALS["idle_cpu_pct"],
            idle <= GOALS["idle_cpu_pct"],
            "≤",
        ),
        (
            "create → completed p50, ms",
            p50,
            GOALS["latency_p50_ms"],
            p50 <= GOALS["latency_p50_ms"],
            "≤",
        ),
    ]
    if ratio is not None:
        rows.append(
            (
                "bench/pipeline.py ratio",
                ratio,
                GOALS["pipeline_ratio"],
                ratio >= GOALS["pipeline_ratio"],
                "≥",
            )
        )
    for name, value, goal, met, sign in rows:
        print(f"{name:<44} {value:>10.2f} {sign + format(goal, 'g'):>10}  {verdict(met)}")


if __name__ == "__main__":
    main()
