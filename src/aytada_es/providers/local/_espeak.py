"""Speak stdin to a WAV file with libespeak-ng (GPL: run as `python -m`, never imported)."""

from __future__ import annotations

import argparse
import ctypes
import sys
import wave

import espeakng_loader

SYNCHRONOUS = 2
RATE, PITCH = 1, 3
UTF8 = 1
CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def speak(text: str, rate: int, voice: str) -> tuple[bytes, int]:
    """16-bit mono samples of `text` spoken at `rate` words a minute, and their sample rate."""
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    sample_rate = lib.espeak_Initialize(SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if sample_rate <= 0:
        raise SystemExit("espeak-ng did not start")
    chunks: list[bytes] = []

    def collect(samples: ctypes._Pointer[ctypes.c_short], count: int, _: object) -> int:
        if count > 0:
            chunks.append(ctypes.string_at(samples, count * 2))
        return 0

    callback = CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(voice.encode())
    lib.espeak_SetParameter(RATE, rate, 0)
    lib.espeak_SetParameter(PITCH, 45, 0)
    data = text.encode() + b"\0"
    lib.espeak_Synth(data, len(data), 0, 1, 0, UTF8, None, None)
    lib.espeak_Synchronize()
    lib.espeak_Terminate()
    return b"".join(chunks), sample_rate


def main() -> None:
    """Read the text from stdin and write the WAV named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--rate", type=int, default=165)
    parser.add_argument("--voice", default="en-us")
    args = parser.parse_args()
    samples, sample_rate = speak(sys.stdin.read(), args.rate, args.voice)
    with wave.open(args.out, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples)


if __name__ == "__main__":
    main()
