"""A running system in a test, and what a stage's test does with it: users, projects, events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..application import Studio
from ..audit.project import project_audit
from ..bootstrap import System, bootstrap
from ..config import Settings
from ..consumers.stage import Stage
from ..domain.project import Project
from ..kafka import clients
from ..kafka.envelope import TYPE_HEADER
from ..kafka.lag import group_lags, log_bounds
from ..kafka.topics import PROJECT_EVENTS
from ..providers.local import local_providers
from . import WAIT_S, wait_for

BRIEF = "Smooth cold brew coffee, ready in the fridge. Made for busy mornings."


class StudioRun:
    """A started system (`system`) with helpers to drive projects to a stage's trigger."""

    def __init__(self, system: System) -> None:
        self.system = system
        self._stopped = False

    @classmethod
    async def start(
        cls,
        settings: Settings,
        broker: str,
        stages: Iterable[type[Stage]],
        *,
        providers: Literal["instant", "local"] = "instant",
        scale: float = 0.2,
    ) -> StudioRun:
        """Build and start the system: built-in stages and `stages`, on `broker`."""
        if providers not in ("instant", "local"):
            raise ValueError(f"providers: instant or local, not {providers!r}")
        system = bootstrap(settings, bootstrap_servers=broker, extra_stages=tuple(stages))
        if providers == "local":
            system.providers = local_providers(system.assets, scale=scale)
        run = cls(system)
        try:
            await system.start()
        except BaseException:
            await run.stop()
            raise
        return run

    async def stop(self) -> None:
        """Stop every part and close the store (once; later calls do nothing)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            await self.system.stop()
        finally:
            self.system.close()

    @property
    def studio(self) -> Studio:
        return self.system.studio

    @property
    def settings(self) -> Settings:
        return self.system.settings

    def user(self, name: str = "alice", *, credits: int = 1000) -> UUID:
        """A new user with `credits`; its id."""
        account, _ = self.studio.open_account(name, credits=credits, actor="cli")
        return account.id

    def autopilot_project(
        self,
        owner: UUID,
        *,
        title: str = "Sunrise Cold Brew",
        format: str = "9:16",
        brief: str = BRIEF,
    ) -> UUID:
        """A project of `owner` on autopilot: it runs every step by itself; its id."""
        name = self.studio.account(owner).name
        project = self.studio.create_project(
            owner, title=title, format=format, brief=brief, autopilot=True, actor=f"user:{name}"
        )
        return project.id

    def project(self, project_id: UUID) -> Project:
        return self.studio.project(project_id)

    def events(self, project_id: UUID) -> list[Project.Event]:
        """Every event stored for the project, oldest first."""
        return [e for e in self.studio.events.get(project_id) if isinstance(e, Project.Event)]

    def event_types(self, project_id: UUID) -> list[str]:
        return [type(e).__name__ for e in self.events(project_id)]

    async def until_event(
        self,
        project_id: UUID,
        event_type: str,
        *,
        timeout_s: float = WAIT_S,
        fail_fast: bool = True,
    ) -> Project.Event:
        """Wait until an event of `event_type` (`VideoStitched`) is stored for the project;
        the latest one.

        With `fail_fast`, a project that fails (status `failed`) first ends the wait at once,
        with its failure.
        """
        found: list[Project.Event] = []
        failure: list[Any] = []

        def stored() -> bool:
            events = self.events(project_id)
            found[:] = [e for e in events if type(e).__name__ == event_type][-1:]
            if not found and fail_fast and self.project(project_id).status == "failed":
                failure.append(self.project(project_id).failure)
                return True
            return bool(found)

        await wait_for(stored, timeout_s=timeout_s, what=f"{event_type} of project {project_id}")
        if not found:
            raise AssertionError(f"project {project_id} failed before {event_type}: {failure[0]}")
        return found[0]

    def audit(self, project_id: UUID) -> dict[str, Any]:
        """The project's audit report (`aytada-es audit --json`); `passed` when it reconciles."""
        return project_audit(self.studio, project_id).model_dump(mode="json")

    def asset_path(self, asset: dict[str, Any]) -> Path:
        """Where an asset record's file is stored."""
        return self.system.assets.path(str(asset["id"]))

    async def republish(self, project_id: UUID, event_type: str) -> int:
        """Publish the project's events of `event_type` again, as a relay does after a restart;
        how many."""
        topic = self.settings.topic(PROJECT_EVENTS)
        key, kind = str(project_id).encode(), event_type.encode()
        found = [
            r
            for r in await _read_all(self.system.bootstrap_servers, topic)
            if r.key == key and (TYPE_HEADER, kind) in list(r.headers)
        ]
        producer = clients.producer(self.system.bootstrap_servers)
        try:
            await clients.start(producer)
            for record in found:
                await producer.send_and_wait(
                    topic, value=record.value, key=record.key, headers=list(record.headers)
                )
        finally:
            await clients.to_the_end(producer.stop())
        return len(found)

    async def until_consumed(self, stage: str, *, timeout_s: float = WAIT_S) -> None:
        """Wait until the stage's consumer group has handled and committed every stored event.

        First until this process's relay has published every event stored so far: a lag of 0
        over a topic that lacks the newest events would say nothing about them.
        """
        group = self.system.runners[stage].group_id
        topic = self.settings.topic(PROJECT_EVENTS)
        deadline = asyncio.get_running_loop().time() + timeout_s
        stored = self.studio.recorder.max_notification_id() or 0
        relay = self.system.relay
        while relay is not None and relay.position < stored:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the relay is at {relay.position}, not yet at {stored}")
            await asyncio.sleep(0.05)
        while True:
            lags = await group_lags(self.system.bootstrap_servers, topic, [group])
            if lags is not None and lags[group] == 0:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"stage {stage} still lags {lags} after {timeout_s:g} s")
            await asyncio.sleep(0.05)


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of the topic, from the start to its end now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    records: list[Any] = []
    try:
        await clients.start(consumer)
        if topic not in await consumer.topics():  # all topics: naming one would create it
            return records
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        _, ends = await log_bounds(consumer, tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await clients.to_the_end(consumer.stop())
    return records
