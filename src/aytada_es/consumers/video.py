"""Video: a clip per scene, each recorded as it finishes (progress moves, a redelivery resumes)."""

from __future__ import annotations

import functools

from ..domain.project import Project
from ..domain.steps import Step
from .context import StageContext, StepAbandoned
from .steps import (
    StepOutput,
    StepStage,
    brief_of,
    call_key,
    seconds,
)


class VideoStage(StepStage):
    name = "video"
    step = Step.VIDEO
    reacts_to = frozenset({"VideoRequested"})

    async def generate(self, project: Project, version: int, ctx: StageContext) -> StepOutput:
        done = {c["scene"] for c in project.clips}
        brief = brief_of(project)
        for scene in project.scenes:
            if scene["index"] in done:
                continue
            asset = await ctx.once(
                call_key(project, version, self.step, f"scene-{scene['index']}"),
                functools.partial(ctx.providers.clips.clip, brief, scene),
            )
            recorded = await ctx.command(
                ctx.studio.record_clip,
                project.id,
                version=version,
                scene=scene["index"],
                asset=asset,
                actor=f"stage:{self.name}",
            )
            if not recorded:  # cancelled or deleted meanwhile: render no more
                raise StepAbandoned(f"video request v{version} of {project.id} was withdrawn")
        total = seconds(project.scenes)
        return StepOutput({"duration_s": float(total)}, units=total)
