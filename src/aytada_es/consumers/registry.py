"""Where stages are declared: the built-in six, plus plug-ins from an entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

from .base import Stage
from .ideas import IdeasStage
from .scenes import ScenesStage
from .script import ScriptStage
from .stitching import StitchingStage
from .video import VideoStage
from .voiceover import VoiceoverStage

BUILT_IN: tuple[type[Stage], ...] = (
    IdeasStage,
    ScriptStage,
    ScenesStage,
    VideoStage,
    VoiceoverStage,
    StitchingStage,
)
ENTRY_POINT_GROUP = "aytada_es.stages"


def stages(extra: tuple[type[Stage], ...] = ()) -> list[Stage]:
    """Every stage to run: built-in, installed plug-ins, then `extra`; names must be unique."""
    plugins = tuple(ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP))
    found: dict[str, Stage] = {}
    for cls in (*BUILT_IN, *plugins, *extra):
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise TypeError(f"{cls!r} is not a Stage subclass")
        if cls.name in found:
            raise ValueError(f"two stages are named {cls.name!r}")
        found[cls.name] = cls()
    return list(found.values())
