"""Which stages run, and what a stage must declare to run at all."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from aytada_es.consumers.addons import AddOnOutput, AddOnStage
from aytada_es.consumers.context import StageContext
from aytada_es.consumers.registry import BUILT_IN, asset_kinds, registered
from aytada_es.consumers.stage import Done, Stage
from aytada_es.domain.errors import ConfigError
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Price
from aytada_es.kafka.envelope import Envelope


class Captions(AddOnStage):
    name = "captions"
    version = "2.1.0"
    reacts_to = frozenset({"VideoStitched"})
    records: ClassVar[dict[str, str]] = {"captioned_video": "Captioned video"}
    price = Price("video", 2)

    async def generate(self, project: Project, ctx: StageContext) -> AddOnOutput:
        return AddOnOutput([], 1)


class Notify(Stage):
    name = "notify"
    reacts_to = frozenset({"VideoStitched"})

    async def handle(self, envelope: Envelope, ctx: StageContext) -> Done:
        return Done()


def declared(**attributes: Any) -> type[Stage]:
    """A stage class like `Notify` with some declarations changed."""
    return type("Odd", (Notify,), attributes)


def test_the_six_built_in_stages_run_as_built_in() -> None:
    stages = registered()
    assert [r.stage.name for r in stages] == [cls.name for cls in BUILT_IN]
    assert {r.source for r in stages} == {"builtin"}


def test_a_plug_in_registered_by_entry_point_and_in_code_runs_once() -> None:
    stages = registered([Captions], plugins=[(Captions, "aytada-captions")])
    found = [r for r in stages if r.stage.name == "captions"]
    assert len(found) == 1 and found[0].source == "aytada-captions"


def test_two_stages_of_one_name_stop_the_start_naming_both() -> None:
    other = type("Captions", (Captions,), {"version": "9"})
    with pytest.raises(ConfigError, match="two stages are named 'captions'"):
        registered([other], plugins=[(Captions, "aytada-captions")])


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({"name": "Bad Name"}, "`name`"),
        ({"name": "ideas"}, "a step of the pipeline"),
        ({"version": ""}, "`version`"),
        ({"version": 2}, "`version`"),
        ({"reacts_to": frozenset()}, "`reacts_to`"),
        ({"reacts_to": frozenset({"video stitched"})}, "`reacts_to`"),
        ({"records": {"Bad-Kind": "x"}}, "asset kind"),
        ({"records": {"caption": ""}}, "asset kind"),
    ],
)
def test_a_stage_that_declares_something_wrong_stops_the_start(
    attributes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        registered([declared(**attributes)])


def test_a_billed_stage_declares_its_price_and_what_it_records() -> None:
    declarations = {"name": "np", "reacts_to": frozenset({"X"}), "records": {"x": "X"}}
    no_price = type("NoPrice", (AddOnStage,), declarations)
    with pytest.raises(ConfigError, match="price"):
        registered([no_price])
    no_records = type("NoRecords", (Captions,), {"name": "nr", "records": {}})
    with pytest.raises(ConfigError, match="records"):
        registered([no_records])


def test_asset_kinds_carry_one_label_each() -> None:
    kinds = asset_kinds([Captions()])
    assert kinds["captioned_video"] == "Captioned video" and kinds["clip"] == "Video clip"
    relabel = type("Relabel", (Captions,), {"name": "re", "records": {"clip": "A clip"}})
    with pytest.raises(ConfigError, match="already 'Video clip'"):
        registered([relabel])


def test_a_class_that_is_not_a_stage_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a Stage subclass"):
        registered(plugins=[(dict, "somebody")])  # type: ignore[list-item]
