"""The runner opens a person's sealed text only where a read model reads it, and when in doubt."""

from __future__ import annotations

from collections.abc import Sequence

from aytada_es.adapters.sealed_text import PERSONAL
from aytada_es.adapters.sql import Transaction
from aytada_es.domain.project import Project
from aytada_es.projections import CardChange, Projection
from aytada_es.projections.accounts import Accounts
from aytada_es.projections.base import DomainEvent
from aytada_es.projections.credits import CreditStatements
from aytada_es.projections.deleted import DeletedProjects
from aytada_es.projections.images import MyImages
from aytada_es.projections.open_steps import OpenSteps
from aytada_es.projections.runner import _reads
from aytada_es.projections.scripts import MyScripts
from aytada_es.projections.videos import MyVideos

READ_MODELS: tuple[type[Projection], ...] = (
    MyVideos,
    DeletedProjects,
    Accounts,
    MyScripts,
    MyImages,
    CreditStatements,
    OpenSteps,
)


class Titles(Projection):
    """Acts on renames and creations, and names what it reads of creations only."""

    name = "titles"
    tables = ()
    ddl = ()
    events = (Project.ProjectCreated, Project.ProjectRenamed)
    reads = {"ProjectCreated": ("title",)}

    def apply(self, tx: Transaction, position: int, event: DomainEvent) -> Sequence[CardChange]:
        return ()


def test_every_field_a_read_model_names_is_a_personal_field() -> None:
    for projection in READ_MODELS:
        for kind, fields in projection.reads.items():
            assert kind in PERSONAL, (projection, kind)
            assert set(fields) <= set(PERSONAL[kind]), (projection, kind, fields)


def test_the_service_read_models_open_the_titles_and_scripts_and_leave_the_rest_sealed() -> None:
    opened = {
        kind: {f for p in READ_MODELS for f in _reads(p.__new__(p), kind, fields)}
        for kind, fields in PERSONAL.items()
    }
    assert opened == {
        "ProjectCreated": {"title"},
        "ProjectRenamed": {"title"},
        "IdeasGenerated": set(),
        "ScriptGenerated": {"script"},
        "ScenesGenerated": set(),
    }


def test_a_class_of_personal_events_a_read_model_acts_on_but_does_not_name_is_opened_whole() -> (
    None
):
    projection = Titles.__new__(Titles)
    assert _reads(projection, "ProjectCreated", PERSONAL["ProjectCreated"]) == ("title",)
    assert _reads(projection, "ProjectRenamed", PERSONAL["ProjectRenamed"]) == ("title",)
    assert _reads(projection, "IdeasGenerated", PERSONAL["IdeasGenerated"]) == ()
    assert _reads(projection, "SomethingNew", ("text",)) == ("text",)  # unknown: opened
