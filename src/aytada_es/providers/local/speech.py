"""The voiceover spoken offline by espeak-ng (in its own process), fitted to the video."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from ...adapters.assets import AssetStore
from ...children import dying_with_parent
from ..base import JSON, Brief, Call, ProviderError
from . import ffmpeg

RATE, MIN_RATE, MAX_RATE = 165, 130, 380
LEAD_S, TAIL_S = 0.25, 0.35


async def synthesize(text: str, out: Path, rate: int) -> float:
    """Speak `text` into the WAV `out` at `rate` words a minute; return its duration."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"{__package__}._espeak",
        str(out),
        "--rate",
        str(rate),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=dying_with_parent(),
    )
    err = await ffmpeg.finished(process, text.encode())
    if process.returncode != 0:
        raise ProviderError(f"espeak-ng failed: {err.decode(errors='replace')[-500:]}")
    return wav_duration(out)


def wav_duration(path: Path) -> float:
    """The length of a WAV file in seconds."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def fit(source: Path, duration_s: float) -> bytes:
    """The WAV padded with silence (a short lead-in, then to the end) to exactly `duration_s`."""
    with wave.open(str(source), "rb") as w:
        params, samples = w.getparams(), w.readframes(w.getnframes())
    frame_bytes = params.sampwidth * params.nchannels
    total = round(duration_s * params.framerate) * frame_bytes
    lead = b"\0" * (round(LEAD_S * params.framerate) * frame_bytes)
    body = (lead + samples)[:total]
    out = Path(str(source) + ".fit.wav")
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        w.writeframes(body + b"\0" * (total - len(body)))
    return out.read_bytes()


class LocalSpeech:
    """A voiceover WAV of the script, spoken to fit the video's length."""

    limit_key = "ffmpeg"  # CPU-bound as ffmpeg is: the same slots (AYTADA_LIMIT_FFMPEG_*)
    limit_per_machine = True  # the CPUs of this machine, shared by its stage workers

    def __init__(self, assets: AssetStore) -> None:
        self.assets = assets

    async def voiceover(self, brief: Brief, text: str, duration_s: float, call: Call) -> JSON:
        duration_s = float(duration_s) if duration_s and duration_s > 0 else 12.0
        room = max(duration_s - LEAD_S - TAIL_S, 0.5)
        with tempfile.TemporaryDirectory(prefix="aytada-voice-") as tmp:
            spoken = Path(tmp) / "spoken.wav"
            length = await synthesize(text, spoken, RATE)
            if length > room or length < 0.7 * room:
                rate = math.ceil(RATE * length / (room * (0.97 if length > room else 0.85)))
                rate = min(max(rate, MIN_RATE), MAX_RATE)
                if rate != RATE:
                    length = await synthesize(text, spoken, rate)
            if length > room:  # still too long at the fastest clear rate: speed it up
                faster = Path(tmp) / "faster.wav"
                await ffmpeg.run("-i", str(spoken), "-af", _atempo(length / room), str(faster))
                spoken = faster
            content = await asyncio.to_thread(fit, spoken, duration_s)
        asset = await asyncio.to_thread(
            self.assets.put, content, kind="voiceover", content_type="audio/wav"
        )
        return {**asset, "duration_s": duration_s}


def _atempo(factor: float) -> str:
    """An ffmpeg `atempo` chain for `factor` (each stage between 0.5 and 2)."""
    stages = []
    while factor > 2.0:
        stages.append(2.0)
        factor /= 2.0
    stages.append(factor)
    return ",".join(f"atempo={s:.4f}" for s in stages)
