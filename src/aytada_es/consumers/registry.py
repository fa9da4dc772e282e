"""Which stages run: the six built in, installed plug-ins (entry points), stages given in code."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..domain.assets import ASSET_LABELS
from ..domain.errors import ConfigError
from ..domain.steps import SPECS
from .addons import AddOnStage
from .ideas import IdeasStage
from .scenes import ScenesStage
from .script import ScriptStage
from .stage import Stage
from .stitching import StitchingStage
from .video import VideoStage
from .voiceover import VoiceoverStage
from .webhooks import WebhookStage

BUILT_IN: tuple[type[Stage], ...] = (
    IdeasStage,
    ScriptStage,
    ScenesStage,
    VideoStage,
    VoiceoverStage,
    StitchingStage,
    WebhookStage,
)
ENTRY_POINT_GROUP = "aytada_es.stages"
BUILT_IN_SOURCE = "builtin"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_EVENT = re.compile(r"^[A-Z][A-Za-z0-9]{0,99}$")


@dataclass(frozen=True)
class Registered:
    """A stage to run, and where it comes from: `builtin`, a distribution, or `code`."""

    stage: Stage
    source: str


def installed(wanted: Callable[[str], bool] = lambda _: True) -> list[tuple[type[Stage], str]]:
    """The stage classes installed distributions register, each with its distribution.

    Only the distributions `wanted` are imported (AYTADA_PLUGINS: `Settings.runs_plugin`).
    """
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        distribution = point.dist.name if point.dist is not None else point.value
        if wanted(distribution):
            found.append((point.load(), distribution))
    return found


def registered(
    extra: Iterable[type[Stage]] = (), *, plugins: Iterable[tuple[type[Stage], str]] = ()
) -> list[Registered]:
    """Every stage to run: built in, then `plugins`, then `extra`, each checked.

    A class registered twice (by its entry point and in code) runs once; two different
    classes with one name, or a plug-in named like a step of the pipeline, stop the start.
    """
    chosen: dict[str, Registered] = {}
    classes: dict[str, type[Stage]] = {}
    every = [
        *((cls, BUILT_IN_SOURCE) for cls in BUILT_IN),
        *plugins,
        *((cls, "code") for cls in extra),
    ]
    for cls, source in every:
        _check(cls, source)
        known = classes.get(cls.name)
        if known is cls:
            continue
        if known is not None:
            raise ConfigError(
                f"two stages are named {cls.name!r}: {_where(known)} ({chosen[cls.name].source})"
                f" and {_where(cls)} ({source})"
            )
        classes[cls.name] = cls
        chosen[cls.name] = Registered(cls(), source)
    asset_kinds(r.stage for r in chosen.values())  # one label per kind
    return list(chosen.values())


def asset_kinds(stages: Iterable[Stage]) -> Mapping[str, str]:
    """Every asset kind the stages record, with its label, built-in kinds first."""
    kinds = dict(ASSET_LABELS)
    for stage in stages:
        for kind, label in stage.records.items():
            if kinds.setdefault(kind, label) != label:
                raise ConfigError(
                    f"stage {stage.name!r} labels asset kind {kind!r} {label!r};"
                    f" it is already {kinds[kind]!r}"
                )
    return kinds


def _check(cls: object, source: str) -> None:
    """ConfigError naming what a stage class declares wrong."""
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise ConfigError(f"{cls!r} (from {source}) is not a Stage subclass")
    where = f"stage {_where(cls)} (from {source})"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: `name` must be 1-48 of a-z, 0-9 and -, not {name!r}")
    if source != BUILT_IN_SOURCE and name in {s.value for s in SPECS}:
        raise ConfigError(f"{where}: {name!r} is a step of the pipeline")
    version = getattr(cls, "version", None)
    if not isinstance(version, str) or not 0 < len(version) <= 64 or not version.isprintable():
        raise ConfigError(f"{where}: `version` must be a short text, not {version!r}")
    reacts_to = getattr(cls, "reacts_to", None)
    if (
        not isinstance(reacts_to, frozenset | set)
        or not reacts_to
        or not all(isinstance(t, str) and _EVENT.match(t) for t in reacts_to)
    ):
        raise ConfigError(f"{where}: `reacts_to` must name event types, not {reacts_to!r}")
    for kind, label in dict(cls.records).items():
        if not _KIND.match(kind) or not isinstance(label, str) or not 0 < len(label) <= 60:
            raise ConfigError(f"{where}: asset kind {kind!r} needs a name and a short label")
    if issubclass(cls, AddOnStage):
        if not hasattr(cls, "price"):
            raise ConfigError(f"{where}: a billed stage declares its `price`")
        if not cls.records:
            raise ConfigError(f"{where}: a billed stage declares the asset kinds it `records`")


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
