"""Commands run together share one transaction, and one command's error affects no other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from aytada_es.application import Studio
from aytada_es.domain.errors import IllegalTransition, ProjectNotFound
from aytada_es.domain.steps import Step
from aytada_es.group_commit import GroupCommit

NOW = datetime.now(UTC)
GENERATION = {
    "provider": "test",
    "stage_version": "1",
    "units": 2,
    "started_at": NOW,
    "finished_at": NOW,
    "attempts": 1,
}


def ideas_ready_projects(studio: Studio, count: int) -> tuple[object, list[object]]:
    owner = studio.open_account("alice", credits=1000)[0].id
    projects = []
    for i in range(count):
        p = studio.create_project(
            owner, title=f"Ad {i}", format="1:1", brief="b", actor="user:alice"
        )
        studio.request_ideas(owner, p.id, count=2, actor="user:alice")
        projects.append(studio.project(p.id))
    return owner, projects


def test_commands_run_together_are_saved_in_one_transaction(
    studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, projects = ideas_ready_projects(studio, 5)
    before = studio.recorder.max_notification_id()
    puts: list[int] = []
    real_put = studio.events.put
    monkeypatch.setattr(
        studio.events,
        "put",
        lambda events, **kw: puts.append(len(events)) or real_put(events, **kw),
    )
    results = studio.run_together(
        [
            (
                lambda p=p: studio.complete_step(
                    p.id,
                    step=Step.IDEAS,
                    version=p.request["version"],
                    result={"ideas": [{"title": "a"}, {"title": "b"}]},
                    generation=GENERATION,
                    actor="stage:ideas",
                )
            )
            for p in projects
        ]
    )
    assert results == [True] * 5
    stored = studio.recorder.select_notifications(before + 1, 1000)
    # Generation, ideas and charge per project, one charge each on the shared account: all in
    # one write to the store.
    assert len(stored) == 5 * 3 + 5 * 1
    assert puts == [len(stored)]
    account = studio.account(owner)  # type: ignore[arg-type]
    assert account.reserved == 0 and account.balance == 1000 - 5 * 2
    assert all(studio.project(p.id).status == "ideas_ready" for p in projects)


def test_one_failing_command_does_not_affect_the_others(studio: Studio) -> None:
    owner, projects = ideas_ready_projects(studio, 3)
    missing = projects[0].id.__class__(int=1)

    def complete(p: object) -> bool:
        return studio.complete_step(
            p.id,
            step=Step.IDEAS,
            version=p.request["version"],  # type: ignore[attr-defined]
            result={"ideas": [{"title": "a"}]},
            generation=GENERATION,
            actor="stage:ideas",
        )

    results = studio.run_together(
        [
            lambda: complete(projects[0]),
            lambda: studio.request_scenes(owner, projects[1].id, actor="user:alice"),  # illegal
            lambda: studio.project(missing),
            lambda: complete(projects[2]),
        ]
    )
    assert results[0] is True and results[3] is True
    assert isinstance(results[1], IllegalTransition)
    assert isinstance(results[2], ProjectNotFound)
    assert studio.project(projects[0].id).status == "ideas_ready"
    assert studio.project(projects[1].id).status == "generating_ideas"
    assert studio.project(projects[2].id).status == "ideas_ready"


async def test_concurrent_commands_from_the_event_loop_share_groups(studio: Studio) -> None:
    _, projects = ideas_ready_projects(studio, 30)
    commits = GroupCommit(studio)
    results = await asyncio.gather(
        *(
            commits.run(
                studio.complete_step,
                p.id,
                step=Step.IDEAS,
                version=p.request["version"],
                result={"ideas": [{"title": "a"}]},
                generation=GENERATION,
                actor="s",
            )
            for p in projects
        )
    )
    await commits.close()
    assert results == [True] * 30
    assert commits.commands == 30
    assert commits.groups < 30
    with pytest.raises(ProjectNotFound):
        await commits.run(studio.project, projects[0].id.__class__(int=2))
