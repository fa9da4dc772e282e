"""The ffmpeg binary bundled by imageio-ffmpeg, run as a separate process."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import imageio_ffmpeg

from ...children import dying_with_parent
from ..base import ProviderError

T = TypeVar("T")
QUIET = ("-hide_banner", "-nostdin", "-loglevel", "error", "-y")


@cache
def executable() -> str:
    """The path of the bundled ffmpeg."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def run(*args: str) -> None:
    """Run ffmpeg with `args`; raise ProviderError with its message when it fails.

    Cancelled (the step was abandoned), ffmpeg is killed before the cancel goes on.
    """
    process = await asyncio.create_subprocess_exec(
        executable(),
        *QUIET,
        *args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=dying_with_parent(),
    )
    err = await finished(process)
    if process.returncode != 0:
        raise ProviderError(f"ffmpeg failed: {err.decode(errors='replace')[-800:]}")


async def finished(process: asyncio.subprocess.Process, stdin: bytes | None = None) -> bytes:
    """What the process wrote to stderr once it exited; killed if the wait is cancelled."""
    try:
        _, err = await process.communicate(stdin)
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
        raise
    return err


def encode_frames(
    frames: Iterable[bytes],
    path: Path,
    size: tuple[int, int],
    fps: int,
    preset: str,
    abandoned: threading.Event | None = None,
) -> None:
    """Encode raw RGB frames to H.264 (yuv420p) at `path`; blocking, run it in a thread.

    Setting `abandoned` stops the encoding at the next frame and kills ffmpeg.
    """
    width, height = size
    command = [executable(), *QUIET, "-f", "rawvideo", "-pix_fmt", "rgb24"]
    command += ["-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-an"]
    command += ["-c:v", "libx264", "-preset", preset, "-crf", "20", "-pix_fmt", "yuv420p"]
    command += ["-r", str(fps), "-movflags", "+faststart", str(path)]
    # The thread that forks waits for ffmpeg here, so it outlives it (see dying_with_parent).
    with subprocess.Popen(  # noqa: S603 - the bundled ffmpeg, our own arguments
        command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=dying_with_parent()
    ) as process:
        assert process.stdin is not None and process.stderr is not None
        try:
            for frame in frames:
                if abandoned is not None and abandoned.is_set():
                    process.kill()
                    raise Abandoned("the clip was abandoned")
                process.stdin.write(frame)
            process.stdin.close()
        except BrokenPipeError:
            pass
        finally:
            err = process.stderr.read()
            process.wait()
    if process.returncode != 0:
        raise ProviderError(f"ffmpeg failed: {err.decode(errors='replace')[-800:]}")


class Abandoned(Exception):
    """Blocking work stopped half-way because its step was abandoned."""


async def in_thread(work: Callable[[threading.Event], T]) -> T:
    """Run blocking `work(abandoned)` in a thread; a cancel sets `abandoned` and waits for it."""
    abandoned = threading.Event()
    future = asyncio.ensure_future(asyncio.to_thread(work, abandoned))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        abandoned.set()
        with contextlib.suppress(Exception):
            await future  # the thread still writes to our files: let it stop first
        raise


@dataclass(frozen=True)
class MediaInfo:
    """What `ffmpeg -i` tells of a media file."""

    duration_s: float
    video: str | None
    audio: str | None
    size: tuple[int, int] | None


def probe(path: Path) -> MediaInfo:
    """Streams and duration of a file, read from `ffmpeg -i` (there is no ffprobe)."""
    result = subprocess.run(  # noqa: S603 - the bundled ffmpeg
        [executable(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=dying_with_parent(),
    )
    text = result.stderr
    found = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", text)
    if not found:
        raise ProviderError(f"not a media file: {path.name}")
    hours, minutes, seconds = found.groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    video = re.search(r"Stream #.*Video: (\w+).*?, (\d{2,5})x(\d{2,5})", text)
    audio = re.search(r"Stream #.*Audio: (\w+)", text)
    return MediaInfo(
        duration_s=duration,
        video=video.group(1) if video else None,
        audio=audio.group(1) if audio else None,
        size=(int(video.group(2)), int(video.group(3))) if video else None,
    )
