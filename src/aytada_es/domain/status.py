"""The twelve statuses of a project, their kind, action button and progress floor."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    DRAFT = "draft"
    GENERATING_IDEAS = "generating_ideas"
    IDEAS_READY = "ideas_ready"
    GENERATING_SCRIPT = "generating_script"
    SCRIPT_READY = "script_ready"
    GENERATING_SCENES = "generating_scenes"
    SCENES_READY = "scenes_ready"
    GENERATING_VIDEO = "generating_video"
    GENERATING_VOICEOVER = "generating_voiceover"
    STITCHING = "stitching"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE

    @property
    def action(self) -> str | None:
        return ACTIONS.get(self)


ACTIVE = frozenset(
    {
        Status.GENERATING_IDEAS,
        Status.GENERATING_SCRIPT,
        Status.GENERATING_SCENES,
        Status.GENERATING_VIDEO,
        Status.GENERATING_VOICEOVER,
        Status.STITCHING,
    }
)
TERMINAL = frozenset({Status.COMPLETED, Status.FAILED})
READY = frozenset(set(Status) - ACTIVE - TERMINAL)

ACTIONS: dict[Status, str] = {
    Status.DRAFT: "continue",
    Status.IDEAS_READY: "continue",
    Status.SCRIPT_READY: "continue",
    Status.SCENES_READY: "continue",
    Status.COMPLETED: "view",
    Status.FAILED: "retry",
}

# The least progress a status shows; progress never goes down (see Project._advance).
PROGRESS_FLOOR: dict[Status, int] = {
    Status.DRAFT: 0,
    Status.GENERATING_IDEAS: 5,
    Status.IDEAS_READY: 15,
    Status.GENERATING_SCRIPT: 20,
    Status.SCRIPT_READY: 30,
    Status.GENERATING_SCENES: 35,
    Status.SCENES_READY: 45,
    Status.GENERATING_VIDEO: 50,
    Status.GENERATING_VOICEOVER: 82,
    Status.STITCHING: 92,
    Status.COMPLETED: 100,
    Status.FAILED: 0,
}
# generating_video moves from its floor towards this as clips finish.
VIDEO_PROGRESS_CEILING = 80
