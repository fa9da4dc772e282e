"""The kinds of files a project holds, each with the label a person sees; plug-ins add more."""

from __future__ import annotations

from collections.abc import Mapping

ASSET_LABELS: dict[str, str] = {
    "scene_still": "Scene still",
    "product_shot": "Product shot",
    "banner": "Banner",
    "flyer": "Flyer",
    "clip": "Video clip",
    "voiceover": "Voiceover",
    "final_video": "Final video",
    "thumbnail": "Thumbnail",
}
IMAGE_KINDS = ("product_shot", "banner", "flyer", "scene_still")


def label_of(kind: str, labels: Mapping[str, str] = ASSET_LABELS) -> str:
    """A kind's label; a kind no stage declares any more reads as its own name."""
    return labels.get(kind) or kind.replace("_", " ").capitalize()
