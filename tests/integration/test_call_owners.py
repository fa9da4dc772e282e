"""A step's provider calls, and an add-on's, are made for the project's owner: the owner the
provider limits serve in fair order (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import ClassVar

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.config import Settings
from aytada_es.consumers.addons import AddOnOutput, AddOnStage
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.ideas import IdeasStage
from aytada_es.consumers.stage import Done
from aytada_es.domain.project import JSON, Project
from aytada_es.domain.steps import Price
from aytada_es.kafka.envelope import Envelope
from aytada_es.providers.base import Brief, Call
from aytada_es.providers.instant import instant_providers
from aytada_es.providers.limited import current_owner

seen: list[str] = []


class OwnerNotingIdeas:
    """The instant ideas, noting whom each call is made for."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    async def ideas(self, brief: Brief, count: int, call: Call) -> list[JSON]:
        seen.append(current_owner.get())
        return await self.inner.ideas(brief, count, call)  # type: ignore[attr-defined, no-any-return]


class OwnerNotingAddOn(AddOnStage):
    name = "owner-noting"
    version = "1"
    reacts_to = frozenset({"IdeasGenerated"})
    records: ClassVar[dict[str, str]] = {}
    price = Price("call", 0)

    async def generate(self, project: Project, ctx: StageContext) -> AddOnOutput:
        seen.append(current_owner.get())
        return AddOnOutput([], 0)


def envelope(studio: Studio, project_id: uuid.UUID, type: str) -> Envelope:
    """The message of the project's last event of this type, as the relay publishes it."""
    event = [e for e in studio.events.get(project_id) if e.__class__.__name__ == type][-1]
    return Envelope(
        event_id=uuid.uuid4(),
        position=1,
        project_id=project_id,
        version=event.originator_version,
        type=type,
        occurred_at=datetime.now(UTC),
        data={},
    )


async def test_a_steps_and_an_add_ons_calls_are_made_for_the_projects_owner(
    studio: Studio, settings: Settings
) -> None:
    seen.clear()
    owner = studio.open_account("alice", credits=100)[0].id
    project = studio.create_project(owner, title="Fizz", format="1:1", brief="b", actor="u")
    studio.request_ideas(owner, project.id, count=2, actor="user:alice")
    assets = AssetStore(settings.assets_dir)
    base = instant_providers(assets)
    ctx = StageContext(
        studio, assets, dataclasses.replace(base, ideas=OwnerNotingIdeas(base.ideas))
    )

    outcome = await IdeasStage().handle(envelope(studio, project.id, "IdeasRequested"), ctx)
    assert isinstance(outcome, Done) and studio.project(project.id).ideas
    trigger = envelope(studio, project.id, "IdeasGenerated")
    assert isinstance(await OwnerNotingAddOn().handle(trigger, ctx), Done)

    assert seen == [str(owner), str(owner)]
    assert current_owner.get() == ""  # only inside the generation
