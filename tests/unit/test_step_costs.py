"""What each command reserves, what autopilot reserves in all, and when a pause still shows."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from aytada_es.domain.credits import CreditMovement, Movement
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project, autopilot_estimate, paused_at
from aytada_es.domain.status import Status
from aytada_es.domain.steps import MAX_SCENE_SECONDS, MAX_SCENES, SPECS, Step, chain

SCRIPT = {"text": "Fresh coffee at your door before you wake up.", "idea": 0}
SCENES = [{"index": i, "duration_s": s} for i, s in enumerate((3, 4, 5))]


def a_project(*, autopilot: bool = False) -> Project:
    return Project.create(
        owner_id=uuid4(),
        title="Morning Brew",
        format="9:16",
        brief="Coffee at dawn",
        autopilot=autopilot,
        actor="user:ada",
    )


def reserved(movements: list[CreditMovement]) -> int:
    return sum(m.amount for m in movements if m.kind is Movement.RESERVE)


def succeed(project: Project, result: dict[str, Any], units: int = 1) -> None:
    assert project.request is not None
    project.succeed(
        step=Step(project.request["step"]),
        version=project.request["version"],
        result=result,
        generation={
            "provider": "offline",
            "stage_version": "1",
            "units": units,
            "started_at": project.created_on,
            "finished_at": project.created_on,
            "attempts": 1,
        },
        actor="stage",
    )


def test_each_command_offered_costs_what_giving_it_reserves() -> None:
    project = a_project()
    assert project.step_costs() == {"ideas": 3, "script": SPECS[Step.SCRIPT].credits_per_unit}
    assert reserved(project.request_ideas(count=None, actor="user")) == 3
    assert project.step_costs() == {}  # nothing can be given while a step runs

    succeed(project, {"ideas": [{"title": f"Idea {i}"} for i in range(3)]}, units=3)
    costs = project.step_costs()
    assert set(costs) == {"ideas", "script"}
    assert reserved(project.request_script(idea=1, actor="user")) == costs["script"]
    succeed(project, {"script": SCRIPT})
    costs = project.step_costs()
    assert set(costs) == {"script", "scenes"}
    assert reserved(project.request_scenes(actor="user")) == costs["scenes"]
    succeed(project, {"scenes": SCENES}, units=len(SCENES))

    costs = project.step_costs()
    assert set(costs) == {"scenes", "render"}
    # the render reserves its three steps at once, from the scenes and the script it has
    assert costs["render"] == sum(project.estimate(s) for s in chain(Step.VIDEO))
    assert costs["render"] == 12 + 1 + 5  # 12 clip seconds, 46 characters, one render
    assert reserved(project.request_render(actor="user")) == costs["render"]


def test_a_failed_step_offers_its_retry_at_what_the_retry_reserves() -> None:
    project = a_project()
    project.request_ideas(count=5, actor="user")
    assert project.request is not None
    project.fail(
        step=Step.IDEAS,
        version=project.request["version"],
        code=FailureCode.RATE_LIMITED,
        error="HTTP 429",
        generation={
            "provider": "offline",
            "stage_version": "1",
            "units": 0,
            "started_at": project.created_on,
            "finished_at": project.created_on,
            "attempts": 3,
        },
        actor="stage",
    )
    assert project.status is Status.FAILED
    assert project.step_costs() == {"retry": 5}  # the five ideas asked for, not the default
    assert reserved(project.retry(actor="user")) == 5


def test_the_autopilot_total_is_every_step_at_its_longest_estimate() -> None:
    longest = {
        Step.IDEAS: 3,
        Step.SCRIPT: 2,
        Step.SCENES: MAX_SCENES,
        Step.VIDEO: MAX_SCENES * MAX_SCENE_SECONDS,
        Step.VOICEOVER: 6,  # 600 characters at one credit per 100
        Step.STITCHING: 5,
    }
    assert autopilot_estimate() == sum(longest.values())
    # and it covers a whole run from a draft: each step reserves no more than its share
    project = a_project(autopilot=True)
    total = 0
    for result, units in (
        ({"ideas": [{"title": "Idea"}] * 3}, 3),
        ({"script": SCRIPT}, 1),
        ({"scenes": SCENES}, 3),
    ):
        total += reserved(project.continue_autopilot(actor="autopilot"))
        succeed(project, result, units)
    total += reserved(project.continue_autopilot(actor="autopilot"))
    assert 0 < total <= autopilot_estimate()


@pytest.mark.parametrize(
    ("status", "step", "shown"),
    [
        ("draft", "ideas", True),
        ("generating_ideas", "ideas", False),
        ("ideas_ready", "ideas", False),  # the owner went on by hand
        ("script_ready", "scenes", True),
        ("scenes_ready", "video", True),
        ("failed", "video", False),
    ],
)
def test_a_pause_shows_only_while_the_project_stands_before_its_step(
    status: str, step: str, shown: bool
) -> None:
    paused = {
        "step": step,
        "reason": "needs 6 credits; the balance is 2",
        "needed": 6,
        "balance": 2,
    }
    expected = {"step": step, "needed": 6, "balance": 2}
    assert paused_at(status, paused) == (expected if shown else None)
    assert paused_at(status, None) is None


def test_a_project_paused_by_autopilot_says_what_it_needs() -> None:
    project = a_project(autopilot=True)
    needed = project.autopilot_cost()
    project.pause_autopilot(needed=needed, balance=1, actor="autopilot")
    assert project.waiting_for_credits == {"step": "ideas", "needed": needed, "balance": 1}
    assert project.continue_autopilot(actor="autopilot") == []  # autopilot stays off
    project.request_script(idea=None, actor="user")
    assert project.waiting_for_credits is None
