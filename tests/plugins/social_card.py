"""A plug-in stage: once an ad is stitched, make a square social card for the images library."""

from __future__ import annotations

import json

from aytada_es.consumers.base import Stage, StageContext
from aytada_es.kafka.envelope import Envelope


class SocialCardStage(Stage):
    """Reacts to VideoStitched; adds a `banner` image to the project."""

    name = "social-card"
    reacts_to = frozenset({"VideoStitched"})

    async def handle(self, envelope: Envelope, ctx: StageContext) -> None:
        project = await ctx.call(ctx.studio.project, envelope.project_id)
        card = json.dumps({"social_card_for": str(project.id), "title": project.title}).encode()
        asset = ctx.assets.put(card, kind="banner", content_type="application/json")
        # add_assets is idempotent: a repeated message adds nothing more.
        await ctx.command(ctx.studio.add_assets, project.id, assets=[asset], actor="stage:social")
