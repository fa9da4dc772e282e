"""A plug-in stage: once an ad is stitched, make a social card for the images library."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aytada_es.consumers.context import StageContext
from aytada_es.consumers.stage import Done, Stage
from aytada_es.kafka.envelope import Envelope


class SocialCardStage(Stage):
    """Reacts to VideoStitched; adds a `banner` card to the project, once per stitched video."""

    name = "social-card"
    reacts_to = frozenset({"VideoStitched"})

    async def handle(self, envelope: Envelope, ctx: StageContext) -> Done:
        async def make_card() -> None:
            project = await ctx.project(envelope.project_id, at_least=envelope.version)
            card = {
                "social_card_for": str(project.id),
                "title": project.title,
                "made_at": datetime.now(UTC).isoformat(),  # a card made again differs
            }
            asset = await ctx.store_asset(
                json.dumps(card).encode(), kind="banner", content_type="application/json"
            )
            await ctx.command(
                ctx.studio.add_assets, project.id, assets=[asset], actor="stage:social"
            )

        # Not billed, so nothing in the project says it was done: the kit remembers it.
        await ctx.act_once(self.name, envelope, make_card)
        return Done()
