"""Events stored by an older release read back as today's: the application, the read models,
the relay's envelope and the audit all see the current shape, and the hash chain still holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent

from aytada_es.adapters.chain import ChainedEventStore, ChainMapper
from aytada_es.application import Studio
from aytada_es.audit import project_audit
from aytada_es.bootstrap import make_relay
from aytada_es.config import Settings
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import Project
from aytada_es.domain.steps import Step
from aytada_es.projections import read_models

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class ReleaseOneMapper(ChainMapper):
    """Writes events as release 1 did: `StepFailed` had no `code` and no class version."""

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        if not isinstance(domain_event, Project.StepFailed):
            return stored
        state = json.loads(stored.state)
        del state["code"], state["class_version"]
        old = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, old)


def a_project_that_failed_under_release_one(studio: Studio) -> Project:
    project = Project.create(
        owner_id=uuid4(), title="Fizz", format="9:16", brief="", autopilot=False, actor="alice"
    )
    project.request_ideas(count=2, actor="alice")
    assert project.request is not None
    project.fail(
        step=Step.IDEAS,
        version=project.request["version"],
        code=FailureCode.INTERNAL,  # dropped: release 1 did not record it
        error="ProviderError: LLM: HTTP 503 from POST /chat/completions: busy",
        generation={
            "provider": "cloud",
            "stage_version": "1",
            "units": 0,
            "started_at": T0,
            "finished_at": T0,
            "attempts": 3,
        },
        actor="stage:ideas",
    )
    old_store = ChainedEventStore(ReleaseOneMapper(studio.mapper.transcoder), studio.recorder)
    old_store.put(project.collect_events())
    return project


def test_a_failure_stored_by_release_one_reads_back_with_the_code_its_error_implies(
    settings: Settings,
) -> None:
    studio = Studio(settings.database().eventsourcing_env())
    try:
        project = a_project_that_failed_under_release_one(studio)
        stored = [n.state for n in studio.recorder.select_notifications(1, 100)]
        assert not any(b'"code"' in state for state in stored)

        loaded = studio.project(project.id)
        assert loaded.failure is not None
        assert loaded.failure["code"] == "provider_unavailable"

        models = read_models(studio)
        assert models.catch_up() == len(stored)
        assert models.videos.videos_of(project.owner_id)[1][0]["status"] == "failed"

        relay = make_relay(studio, settings, producer=None)  # type: ignore[arg-type]
        notifications = studio.recorder.select_notifications(1, 100)
        envelopes = [json.loads(relay.envelope(n).value) for n in notifications]
        failed = next(e for e in envelopes if e["type"] == "StepFailed")
        assert failed["data"]["code"] == "provider_unavailable"

        report = project_audit(studio, project.id)
        assert report["chain"]["verified"] and report["passed"]
        event = next(e for e in report["events"] if e["type"] == "StepFailed")
        assert event["data"]["code"] == "provider_unavailable"
    finally:
        studio.close()
