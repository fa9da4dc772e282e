"""Every stored event is sealed into its aggregate's hash chain, whoever writes it."""

from __future__ import annotations

import json
import threading
from uuid import UUID

from eventsourcing.persistence import RecordConflictError
from histories import a_disputed_history, complete, edit_stored_event

from aytada_es.adapters.chain import first_broken, stored_history, unseal
from aytada_es.application import Studio
from aytada_es.bootstrap import make_relay
from aytada_es.config import Settings
from aytada_es.domain.project import Project
from aytada_es.kafka.envelope import Envelope


def verified(studio: Studio, *ids: UUID) -> dict[UUID, int | None]:
    return {id: first_broken(stored_history(studio, id)) for id in ids}


def test_every_event_of_projects_and_accounts_is_sealed_and_verifies(studio: Studio) -> None:
    ids = a_disputed_history(studio)

    assert set(verified(studio, *ids.values()).values()) == {None}
    every = studio.recorder.select_notifications(1, 10_000)
    assert every and all(json.loads(n.state)["_chain"] == unseal(n.state)[0] for n in every)  # type: ignore[index]
    history = stored_history(studio, ids["fizz"])
    assert [n.id for n in history] == [n.id for n in every if n.originator_id == ids["fizz"]]
    hashes = [unseal(n.state)[0] for n in every]  # type: ignore[index]
    assert len(set(hashes)) == len(hashes)


def test_domain_events_and_kafka_envelopes_never_carry_the_seal(
    studio: Studio, settings: Settings
) -> None:
    ids = a_disputed_history(studio)
    for event in studio.events.get(ids["fizz"]):
        assert "_chain" not in vars(event)
    relay = make_relay(studio, settings, producer=None)  # type: ignore[arg-type]  # never sends here
    for notification in studio.recorder.select_notifications(1, 10_000):
        outgoing = relay.envelope(notification)
        message = json.loads(outgoing.value)
        assert set(message) == {
            "event_id",
            "position",
            "version",
            "type",
            "occurred_at",
            "data",
            "project_id" if outgoing.topic == relay.project_topic else "account_id",
        }
        assert "_chain" not in message["data"] and b"_chain" not in outgoing.value
        if outgoing.topic == relay.project_topic:
            Envelope.from_bytes(outgoing.value)


def test_two_processes_writing_one_project_keep_one_chain(settings: Settings) -> None:
    env = settings.database().eventsourcing_env()
    web, stages = Studio(env, sole_writer=True), Studio(env)
    try:
        owner = web.open_account("alice", credits=500)[0].id
        project = web.create_project(
            owner, title="Fizz", format="9:16", brief="b", actor="user:alice"
        ).id
        web.request_ideas(owner, project, actor="user:alice")
        complete(stages, project, units=3)
        # `web` trusts its cache, which is now behind: its save conflicts and the command runs
        # again on a fresh load. The hash it computed for the refused event must not be used.
        web.delete_project(owner, project, actor="user:alice")
        web.restore_project(project, actor="support:sam")
        web.request_script(owner, project, actor="user:alice")  # the account was behind too
        complete(stages, project, units=1)
        stages.request_scenes(owner, project, actor="user:alice")

        events = [type(e).__name__ for e in stages.events.get(project)]
        assert events.count("ProjectDeleted") == events.count("ProjectRestored") == 1
        assert stages.project(project).status == "generating_scenes"
        assert verified(stages, project, owner) == {project: None, owner: None}
    finally:
        web.close()
        stages.close()


def test_threads_saving_one_project_at_once_keep_one_chain(settings: Settings) -> None:
    studio = Studio(settings.database().eventsourcing_env(), sole_writer=True)
    try:
        owner = studio.open_account("alice", credits=500)[0].id
        project = studio.create_project(
            owner, title="Fizz", format="9:16", brief="b", actor="user:alice"
        ).id
        saved: list[str] = []

        def add(thread: int) -> None:
            for i in range(8):
                asset = {"id": f"{thread}-{i}", "kind": "banner", "content_type": "image/png"}
                try:
                    studio.add_assets(project, assets=[asset], actor=f"stage:{thread}")
                except RecordConflictError:
                    continue  # lost every retry to the other threads: not saved, not chained
                saved.append(asset["id"])

        threads = [threading.Thread(target=add, args=(t,)) for t in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        added = [e for e in studio.events.get(project) if isinstance(e, Project.AssetsAdded)]
        assert saved and sorted(a["id"] for e in added for a in e.assets) == sorted(saved)
        assert verified(studio, project) == {project: None}
    finally:
        studio.close()


def test_an_event_edited_in_the_database_breaks_the_chain_at_exactly_that_event(
    studio: Studio,
) -> None:
    ids = a_disputed_history(studio)
    charged = next(
        e.originator_version
        for e in studio.events.get(ids["fizz"])
        if isinstance(e, Project.CreditsCharged)
    )
    edit_stored_event(studio, ids["fizz"], charged, b'"amount":2', b'"amount":1')
    edit_stored_event(studio, ids["alice"], 2, b'"amount":500', b'"amount":5000')

    assert verified(studio, *ids.values()) == {
        ids["alice"]: 2,
        ids["bob"]: None,
        ids["fizz"]: charged,
        ids["spritz"]: None,
        ids["cola"]: None,
    }
