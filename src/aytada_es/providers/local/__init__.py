"""Local providers (`AYTADA_PROVIDERS=local`): every step rendered offline from PyPI packages."""

from __future__ import annotations

from ...adapters.assets import AssetStore
from ..base import Providers
from .clips import LocalClips
from .images import LocalImages
from .speech import LocalSpeech
from .stitching import LocalStitching
from .text import LocalText


def local_providers(assets: AssetStore, *, scale: float = 1.0) -> Providers:
    """The offline provider set; `scale` shrinks every frame (tests only)."""
    text = LocalText()
    return Providers(
        "local",
        ideas=text,
        script=text,
        scenes=text,
        clips=LocalClips(assets, scale),
        voiceover=LocalSpeech(assets),
        stitching=LocalStitching(assets),
        images=LocalImages(assets, scale),
    )


__all__ = ["local_providers"]
