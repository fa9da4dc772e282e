"""A plug-in stage: once an ad is stitched, make a square social card for the images library."""

from __future__ import annotations

import json

from aytada_es.consumers.context import StageContext
from aytada_es.consumers.stage import Done, Stage
from aytada_es.kafka.envelope import Envelope


class SocialCardStage(Stage):
    """Reacts to VideoStitched; adds a `banner` image to the project."""

    name = "social-card"
    reacts_to = frozenset({"VideoStitched"})

    async def handle(self, envelope: Envelope, ctx: StageContext) -> Done:
        project = await ctx.project(envelope.project_id, at_least=envelope.version)
        card = json.dumps({"social_card_for": str(project.id), "title": project.title}).encode()
        asset = await ctx.store_asset(card, kind="banner", content_type="application/json")
        # add_assets is idempotent: a repeated message adds nothing more.
        await ctx.command(ctx.studio.add_assets, project.id, assets=[asset], actor="stage:social")
        return Done()
