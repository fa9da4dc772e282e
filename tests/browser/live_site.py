"""The whole system behind a real uvicorn on loopback, with providers a test can hold or fail."""

# Stages run on the real broker with the instant providers wrapped in `Controls`: a test can
# hold a project at any point of the pipeline (to keep it active), make a step fail, release it.

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import imageio_ffmpeg
import uvicorn
from PIL import Image, ImageDraw

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import System
from aytada_es.domain.project import Project
from aytada_es.domain.status import Status
from aytada_es.providers.base import JSON, Brief, Call, PermanentProviderError
from aytada_es.providers.instant import InstantMedia, InstantText
from aytada_es.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOLD_LIMIT_S = 60.0
FORMAT_SIZES = {"9:16": (360, 640), "16:9": (640, 360), "1:1": (480, 480), "4:5": (432, 540)}


# ---- controllable providers ----------------------------------------------------------------


@dataclass
class Controls:
    """Hold a project (by title) at a point (`ideas`, `clip:1`, ...), or make a step fail."""

    holds: set[tuple[str, str]] = field(default_factory=set)
    failing: dict[str, tuple[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, title: str, *points: str) -> None:
        with self._lock:
            self.holds |= {(title, p) for p in points}

    def release(self, title: str, *points: str) -> None:
        with self._lock:
            self.holds = {
                (t, p) for t, p in self.holds if not (t == title and (not points or p in points))
            }

    def fail(self, title: str, step: str, error: str) -> None:
        with self._lock:
            self.failing[title] = (step, error)

    def heal(self, title: str) -> None:
        with self._lock:
            self.failing.pop(title, None)

    def reset(self) -> None:
        with self._lock:
            self.holds.clear()
            self.failing.clear()

    async def checkpoint(self, brief: Brief, step: str, point: str | None = None) -> None:
        with self._lock:
            failing = self.failing.get(brief.title)
        if failing and failing[0] == step:
            raise PermanentProviderError(failing[1])
        deadline = time.monotonic() + HOLD_LIMIT_S
        # the test thread releases holds: a plain poll, since an asyncio.Event is not thread-safe
        while (brief.title, point or step) in self.holds and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def thumbnail_png(title: str, format: str) -> bytes:
    """A poster frame in the format's aspect ratio: a sky, a sun and hills, tinted by the title."""
    width, height = FORMAT_SIZES.get(format, (360, 640))
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    seed = sum(map(ord, title))
    top = (40 + seed % 60, 30 + seed % 40, 110 + seed % 90)
    bottom = (240, 140 + seed % 70, 100 + seed % 50)
    for y in range(height):
        t = y / height
        colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (width, y)], fill=colour)
    r = min(width, height) // 6
    cx, cy = width // 2, int(height * 0.45)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 220, 130))
    far = [(0, int(height * 0.62)), (width * 0.35, int(height * 0.52)), (width, int(height * 0.66))]
    near = [(0, int(height * 0.74)), (width * 0.7, int(height * 0.6)), (width, int(height * 0.7))]
    draw.polygon([*far, (width, height), (0, height)], fill=(70, 50, 110))
    draw.polygon([*near, (width, height), (0, height)], fill=(34, 26, 64))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


_MP4: bytes | None = None


def tiny_mp4() -> bytes:
    """A one-second H.264 clip (made once), so the Studio's player really plays something."""
    global _MP4
    if _MP4 is None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "ad.mp4"
            subprocess.run(
                [
                    imageio_ffmpeg.get_ffmpeg_exe(),
                    "-y",
                    "-loglevel",
                    "error",
                    "-f",
                    "lavfi",
                    "-i",
                    "color=c=0x5b4cf0:s=180x320:d=1:r=12",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-pix_fmt",
                    "yuv420p",
                    "-movflags",
                    "+faststart",
                    str(out),
                ],
                check=True,
            )
            _MP4 = out.read_bytes()
    return _MP4


class ControlledText:
    """Instant ideas, script and scenes, behind the test's controls."""

    def __init__(self, controls: Controls) -> None:
        self.inner = InstantText()
        self.controls = controls

    async def ideas(self, brief: Brief, count: int, call: Call) -> list[JSON]:
        await self.controls.checkpoint(brief, "ideas")
        return await self.inner.ideas(brief, count, call)

    async def script(self, brief: Brief, idea: JSON | None, call: Call) -> JSON:
        await self.controls.checkpoint(brief, "script")
        return await self.inner.script(brief, idea, call)

    async def scenes(self, brief: Brief, script: JSON, call: Call) -> list[JSON]:
        await self.controls.checkpoint(brief, "scenes")
        return await self.inner.scenes(brief, script, call)


class ControlledMedia:
    """Instant clips and voiceover; a real poster PNG and a real (tiny) MP4 when stitching."""

    def __init__(self, assets: AssetStore, controls: Controls) -> None:
        self.inner = InstantMedia(assets)
        self.assets = assets
        self.controls = controls

    async def clip(self, brief: Brief, scene: JSON, call: Call) -> JSON:
        await self.controls.checkpoint(brief, "video", f"clip:{scene['index']}")
        return await self.inner.clip(brief, scene, call)

    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> JSON:
        await self.controls.checkpoint(brief, "voiceover")
        return await self.inner.voiceover(brief, text, duration_s, call)

    async def stitch(
        self, brief: Brief, clips: list[JSON], voiceover: JSON | None, call: Call
    ) -> tuple[JSON, JSON]:
        await self.controls.checkpoint(brief, "stitching")
        video = self.assets.put(tiny_mp4(), kind="final_video", content_type="video/mp4")
        poster = thumbnail_png(brief.title, brief.format)
        thumbnail = self.assets.put(poster, kind="thumbnail", content_type="image/png")
        return video, thumbnail


# ---- the live server -------------------------------------------------------------------------


class LiveServer:
    """The system and uvicorn on a loopback port, in a thread with its own event loop."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server: uvicorn.Server | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(60) or self.error is not None:
            raise RuntimeError(f"the live server did not start: {self.error!r}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported to the test thread
            self.error = e
            self.ready.set()

    async def _main(self) -> None:
        async with self.system.running():
            config = uvicorn.Config(
                create_app(self.system.service()),
                ws="websockets-sansio",
                log_level="warning",
                lifespan="on",
            )
            self.server = uvicorn.Server(config)
            serving = asyncio.create_task(self.server.serve(sockets=[self.sock]))
            while not self.server.started and not serving.done():  # noqa: ASYNC110 (a flag)
                await asyncio.sleep(0.02)
            self.ready.set()
            await serving


@dataclass
class Site:
    """What a browser test needs: the URL, the event store, the controls, and helpers."""

    url: str
    system: System
    controls: Controls

    @property
    def studio(self) -> Studio:
        return self.system.studio

    def user(self, credits: int = 10_000, name: str = "") -> tuple[UUID, str]:
        """A new account (a unique name unless given); its id and token."""
        name = name or f"u{uuid.uuid4().hex[:10]}"
        account, token = self.studio.open_account(name, credits=credits)
        return account.id, token

    def create(
        self, owner: UUID, title: str, *, format: str = "9:16", autopilot: bool = False
    ) -> UUID:
        project = self.studio.create_project(
            owner,
            title=title,
            format=format,
            brief=f"{title}: a short ad for people who like good things.",
            autopilot=autopilot,
            actor="user:test",
        )
        return project.id

    def project(self, project_id: UUID) -> Project:
        return self.studio.project(project_id)

    def wait_for(self, project_id: UUID, *statuses: str, timeout_s: float = 20) -> Project:
        """Wait until the project reaches one of the statuses (and the view shows it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            project = self.project(project_id)
            if project.status in statuses and self._card_shows(project):
                return project
            time.sleep(0.02)
        raise AssertionError(
            f"project {project_id} is {self.project(project_id).status}, not {statuses}"
        )

    def wait_until(self, check: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    def _card_shows(self, project: Project) -> bool:
        _, cards = self.system.read_models.videos.videos_of(project.owner_id)
        card = next((c for c in cards if c["id"] == str(project.id)), None)
        return (
            card is not None
            and card["status"] == project.status
            and card["progress"] == project.progress
        )

    def to_status(self, owner: UUID, title: str, status: str, **kwargs: Any) -> UUID:
        """A new project, taken through the real stages to a ready or terminal status."""
        project_id = self.create(owner, title, **kwargs)
        steps = {
            Status.IDEAS_READY: ("ideas",),
            Status.SCRIPT_READY: ("ideas", "script"),
            Status.SCENES_READY: ("ideas", "script", "scenes"),
            Status.COMPLETED: ("ideas", "script", "scenes", "render"),
        }[Status(status)]
        done = {
            "ideas": Status.IDEAS_READY,
            "script": Status.SCRIPT_READY,
            "scenes": Status.SCENES_READY,
            "render": Status.COMPLETED,
        }
        for step in steps:
            command = getattr(self.studio, f"request_{step}")
            command(owner, project_id, actor="user:test")
            self.wait_for(project_id, done[step], Status.FAILED)
        return project_id


def sign_in(page: Any, token: str) -> None:
    """Sign in through the login form."""
    page.goto("/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/videos")


# While `window.__wsBlocked` is true, the page's /ws/videos connections fail at once, as a
# refused connection does (error, then close 1006, never open); `window.__attempts` lists every
# URL the page tried.
BLOCK_WEBSOCKETS = """
(() => {
  const Real = window.WebSocket;
  window.__wsBlocked = true;
  window.__attempts = [];
  class Refused extends EventTarget {
    constructor(url) {
      super();
      Object.assign(this, { url, readyState: 0, protocol: "", extensions: "", binaryType: "blob" });
      Object.assign(this, { bufferedAmount: 0, onopen: null, onmessage: null });
      Object.assign(this, { onerror: null, onclose: null });
      queueMicrotask(() => {
        this.readyState = 3;
        const error = new Event("error");
        this.dispatchEvent(error);
        if (this.onerror) this.onerror(error);
        const close = new CloseEvent("close", { code: 1006, wasClean: false });
        this.dispatchEvent(close);
        if (this.onclose) this.onclose(close);
      });
    }
    send() {
      throw new DOMException("the socket is not open", "InvalidStateError");
    }
    close() {}
  }
  for (const state of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Refused[state] = Real[state];
  window.WebSocket = new Proxy(Real, {
    construct(target, args) {
      const url = String(args[0]);
      window.__attempts.push(url);
      if (window.__wsBlocked && url.includes("/ws/videos")) return new Refused(url);
      return new target(...args);
    },
  });
})();
"""
