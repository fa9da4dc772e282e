"""Topic retention: after a broker loss the relay republishes the window and the active projects."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from polling import read_topic, wait_for

from aytada_es.adapters.assets import AssetStore
from aytada_es.application import Studio
from aytada_es.bootstrap import System, bootstrap, make_relay
from aytada_es.config import Settings
from aytada_es.consumers.context import StageContext
from aytada_es.domain.project import Project
from aytada_es.kafka.broker import BundledBroker
from aytada_es.kafka.relay import ActiveProjects, Relay, Replay
from aytada_es.kafka.roll import BrokerRoll
from aytada_es.kafka.topics import ACCOUNT_EVENTS, PROJECT_EVENTS, admin_client
from aytada_es.projections.runner import read_models
from aytada_es.providers.instant import instant_providers
from fakes.slow import assert_each_step_charged_once, serve_settings, slow_providers


def positions(studio: Studio, project_id: UUID) -> list[int]:
    every = studio.recorder.select_notifications(1, 100_000)
    return [n.id for n in every if n.originator_id == project_id]


def test_a_replay_is_the_projects_with_a_request_in_flight_then_the_rest_of_the_window(
    studio: Studio, settings: Settings
) -> None:
    owner = studio.open_account("alice", credits=1000)[0].id

    def project(title: str) -> UUID:
        made = studio.create_project(owner, title=title, format="1:1", brief="b", actor="user:a")
        return made.id

    idle, waiting = project("Idle"), project("Waiting")
    studio.request_ideas(owner, waiting, actor="user:alice")
    models = read_models(studio)
    while models.catch_up():
        pass
    recent = project("Recent")
    relay = make_relay(
        studio,
        settings,
        producer=None,  # type: ignore[arg-type]  # plans a replay, sends nothing
        active=lambda: ActiveProjects(*models.open_steps.active()),
    )
    until = studio.recorder.max_notification_id() or 0
    # The retention reaches back to the recent project's creation, not a moment more.
    created = next(iter(studio.events.get(recent))).timestamp  # type: ignore[attr-defined]
    replay = relay.replay(until, now=created + timedelta(seconds=relay.retention_s))

    assert replay.start == positions(studio, recent)[0]
    assert replay.projects == {waiting}
    assert [n.id for n in replay.active] == positions(studio, waiting)
    assert not set(positions(studio, idle)) & ({n.id for n in replay.active} | {replay.start})

    # A request the read model has not applied yet: the window reaches back to it.
    studio.request_ideas(owner, idle, actor="user:alice")
    later = studio.recorder.max_notification_id() or 0
    replay = relay.replay(later, now=created + timedelta(seconds=relay.retention_s))
    assert replay.start == min(positions(studio, idle)[-1], positions(studio, recent)[0])

    # Without a source of active projects, the whole log, as before.
    whole = make_relay(studio, settings, producer=None)  # type: ignore[arg-type]
    assert whole.replay(later).start == 1


def test_a_replay_s_position_already_passed_by_the_relay_s_tail_is_left_as_it_is(
    studio: Studio, settings: Settings
) -> None:
    relay = make_relay(studio, settings, producer=None)  # type: ignore[arg-type]
    relay.record_at_least(6)
    assert relay.tracked_position() == 6
    relay.record_at_least(10)  # the tail went on
    relay.record_at_least(6)  # the replay's record, late: no error, nothing moves back
    assert relay.tracked_position() == 10


def test_the_retention_is_a_duration_failing_loudly_when_it_is_not(tmp_path: Path) -> None:
    def retention(text: str) -> float:
        env = {"AYTADA_DATA_DIR": str(tmp_path), "AYTADA_TOPIC_RETENTION": text}
        return Settings.from_env(env).topic_retention_s

    assert Settings.from_env({"AYTADA_DATA_DIR": str(tmp_path)}).topic_retention_s == 7 * 86400
    assert [retention(t) for t in ("7d", "12h", "30m", "90s", "600")] == [
        7 * 86400,
        12 * 3600,
        1800,
        90,
        600,
    ]
    for bad in ("7 days", "-1d", "d", "0"):
        with pytest.raises(Exception, match="AYTADA_TOPIC_RETENTION"):
            retention(bad)


async def test_a_stage_reads_a_project_s_older_history_from_the_event_store(
    studio: Studio, tmp_path: Path
) -> None:
    owner = studio.open_account("alice", credits=1000)[0].id
    pid = studio.create_project(owner, title="T", format="1:1", brief="b", actor="user:a").id
    studio.request_ideas(owner, pid, actor="user:alice")
    assets = AssetStore(tmp_path / "assets")
    ctx = StageContext(studio, assets, instant_providers(assets))

    history = await ctx.history(pid)
    assert [e.originator_version for e in history] == list(range(1, len(history) + 1))
    assert isinstance(history[0], Project.ProjectCreated)
    assert any(isinstance(e, Project.IdeasRequested) for e in history)
    later = await ctx.history(pid, after=1)
    assert later == history[1:]


# ---- with the bundled broker ---------------------------------------------------------


def retention_settings(tmp_path: Path) -> Settings:
    """`serve`'s settings with a one-second retention: what came before is old."""
    return serve_settings(tmp_path, AYTADA_TOPIC_RETENTION="1s")


def statuses(studio: Studio, ids: list[UUID]) -> Counter[str]:
    return Counter(studio.project(i).status.value for i in ids)


def aged(studio: Studio, ids: list[UUID], retention_s: float) -> bool:
    """Whether every event of these projects is older than the retention."""
    newest = max(e.timestamp for i in ids for e in studio.events.get(i))  # type: ignore[attr-defined]
    return bool(datetime.now(UTC) - newest > timedelta(seconds=retention_s))


def autopilot(studio: Studio, owner: UUID, count: int, title: str) -> list[UUID]:
    return [
        studio.create_project(
            owner, title=f"{title} {i}", format="9:16", brief="Fizz", autopilot=True, actor="u"
        ).id
        for i in range(count)
    ]


async def assert_made_good(
    system: System,
    done_before: list[UUID],
    in_flight: list[UUID],
    before: Counter[str],
    replays: list[Replay],
) -> None:
    """After a loss: the relay republished, every project in flight completes, and the topics
    hold what they promise."""
    relay = system.relay
    assert relay is not None
    await wait_for(lambda: relay.last_replay > 0, 30, "the relay to republish")
    await assert_in_flight_completes(system, in_flight, before)
    await assert_republished_only_what_is_promised(system, relay, done_before, in_flight, replays)


async def assert_republished_only_what_is_promised(
    system: System,
    relay: Relay,
    done_before: list[UUID],
    in_flight: list[UUID],
    replays: list[Replay],
) -> None:
    """The relay republished the projects in flight and the window, and the topics hold nothing
    else from before the loss. `replays`: every replay of the run (a publish that fails during
    one, as just after a broker restart, starts it again, with the projects in flight then)."""
    studio = system.studio
    assert relay.replay_until == 0 and relay.last_replay > 0
    # Done long before (over the retention): none of theirs went out again.
    assert all(max(positions(studio, p)) < relay.replay_start for p in done_before)
    assert not relay.replayed_projects & set(done_before)
    expected = relay.replayed_positions()
    assert relay.last_replay == len(expected)
    settings = system.settings
    topics = [settings.topic(PROJECT_EVENTS), settings.topic(ACCOUNT_EVENTS)]
    records = await read_topic(system.bootstrap_servers, topics, len(expected), linger_s=0.5)
    held = {json.loads(r.value)["position"] for r in records}
    assert expected <= held
    # Every project a replay sent first was in flight, none finished long before. Which replay
    # woke which project cannot be told from the log (a stage's lane may finish, after the loss,
    # work it fetched from the lost broker, and a broker restart often brings two or three
    # replays): that every project in flight completes (`assert_in_flight_completes`) is the proof.
    assert relay.replayed_projects and relay.replayed_projects <= set(in_flight)
    sent_first = frozenset().union(*(r.projects for r in replays))
    assert sent_first <= set(in_flight)
    # Besides the replay, the topics hold only what the relay's own tail published (events stored
    # while the broker was away, sent as it came back): never a long-finished project's events.
    assert not held & {q for p in done_before for q in positions(studio, p)}


@pytest.mark.kafka
@pytest.mark.parametrize("loss", ["serve restarted", "bundled broker restarted"])
async def test_a_restart_mid_pipeline_republishes_the_window_and_the_projects_in_flight(
    tmp_path: Path, loss: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    replays: list[Replay] = []
    replay = Relay.replay

    def recorded(relay: Relay, until: int, now: datetime | None = None) -> Replay:
        replays.append(replay(relay, until, now))
        return replays[-1]

    monkeypatch.setattr(Relay, "replay", recorded)
    settings = retention_settings(tmp_path)
    slow = slow_providers(settings.assets_dir, clip_delay_s=0.2)
    system = bootstrap(settings, providers=slow)  # its own bundled broker, as `serve`
    studio = system.studio
    owner = studio.open_account("alice", credits=10_000)[0].id
    try:
        async with system.running():
            done_before = autopilot(studio, owner, 2, "Done")
            await wait_for(
                lambda: statuses(studio, done_before)["completed"] == 2, 60, "the first two"
            )
            in_flight = autopilot(studio, owner, 12, "Ad")
            await wait_for(
                lambda: statuses(studio, in_flight)["generating_video"] >= 3,
                what="renders to be running",
            )
            await wait_for(
                lambda: aged(studio, done_before, settings.topic_retention_s),
                what="the first two projects' events to pass the retention",
            )
            if loss == "bundled broker restarted":
                assert system.broker is not None
                before = statuses(studio, in_flight)
                replays.clear()  # the new relay's own, at the start, is not the loss's
                await asyncio.to_thread(system.broker.restart)
                await assert_made_good(system, done_before, in_flight, before, replays)
            else:
                before = statuses(studio, in_flight)
        if loss == "serve restarted":
            replays.clear()
            system = bootstrap(settings, providers=slow)
            async with system.running():
                # Created with the retention, as an Apache Kafka cluster would enforce it.
                assert await retention_ms(system, PROJECT_EVENTS) == "1000"
                assert await retention_ms(system, ACCOUNT_EVENTS) == "1000"
                await wait_for(lambda: system.relay is not None, what="the relay")
                await assert_made_good(system, done_before, in_flight, before, replays)
        assert sum(before[s] for s in ("completed", "failed")) < len(in_flight)
        assert_each_step_charged_once(system.studio, owner, done_before + in_flight)
    finally:
        system.close()


async def retention_ms(system: System, topic: str) -> str:
    async with admin_client(system.bootstrap_servers) as admin:
        resource = ConfigResource(ConfigResourceType.TOPIC, system.settings.topic(topic))
        (response,) = await admin.describe_configs([resource])
    (entries,) = [r[-1] for r in response.resources]
    return str(dict((e[0], e[1]) for e in entries)["retention.ms"])


async def assert_in_flight_completes(system: System, ids: list[UUID], before: Counter[str]) -> None:
    await wait_for(
        lambda: statuses(system.studio, ids)["completed"] == len(ids),
        timeout_s=120,
        what=f"every project to complete after the loss (before it: {before})",
    )


class _Relay:
    leading = True
    replay_until = 0
    position = 10
    published_since_loss = 100
    last_replay = 10


@pytest.mark.kafka
async def test_the_bundled_broker_is_rolled_once_too_big_and_only_at_a_quiet_moment(
    tmp_path: Path,
) -> None:
    relay, quiet = _Relay(), [False]
    with BundledBroker(log_file=tmp_path / "broker.log") as broker:
        roll = BrokerRoll(
            broker,
            limit_mb=1,  # an idle Tansu holds about 16 MB
            quiet=lambda: quiet[0],
            relay=lambda: relay,
            last_position=lambda: 10,
            check_s=0.05,
            min_interval_s=0,
        )
        pid = broker._process.pid if broker._process else None
        rss = broker.rss_bytes()
        assert rss > roll.limit_bytes
        assert not roll.due(rss, 10)  # a stage is working
        quiet[0] = True
        assert not roll.due(rss, 11)  # the relay is behind
        relay.replay_until = 5
        assert not roll.due(rss, 10)  # republishing
        relay.replay_until, relay.published_since_loss = 0, 20
        assert not roll.due(rss, 10)  # a roll would free too little
        relay.published_since_loss = 100
        assert roll.due(rss, 10)
        stop = asyncio.Event()
        task = asyncio.create_task(roll.run(stop))
        await wait_for(lambda: roll.rolls >= 1, 10, "the broker to roll")
        stop.set()
        await task
        assert broker.running and broker._process is not None and broker._process.pid != pid


@pytest.mark.kafka
async def test_a_store_never_published_here_older_than_the_retention_sends_its_active_projects(
    tmp_path: Path,
) -> None:
    # As after a restore: the relay's position is not recorded, every event is old.
    settings = retention_settings(tmp_path)
    with BundledBroker(log_file=tmp_path / "broker.log") as broker:
        system = bootstrap(settings, roles=("relay",), bootstrap_servers=broker.bootstrap)
        try:
            studio = system.studio
            owner = studio.open_account("alice", credits=1000)[0].id
            idle, waiting = autopilot(studio, owner, 2, "Old")
            studio.cancel(owner, idle, actor="user:alice")
            while system.read_models.catch_up():
                pass
            ids = [idle, waiting]
            await wait_for(lambda: aged(studio, ids, 1.0), what="the events to pass the retention")
            async with system.running():
                await wait_for(lambda: system.relay is not None, what="the relay")
                relay = system.relay
                assert relay is not None
                await wait_for(lambda: relay.last_replay > 0, 30, "the relay to publish")
                assert relay.replayed_projects == {waiting}
                assert relay.replayed_positions() == set(positions(studio, waiting))
                topic = settings.topic(PROJECT_EVENTS)
                records = await read_topic(broker.bootstrap, topic, relay.last_replay, linger_s=0.3)
                assert sorted(json.loads(r.value)["position"] for r in records) == positions(
                    studio, waiting
                )
                last = studio.recorder.max_notification_id()
                await wait_for(lambda: relay.tracked_position() == last, what="it to be recorded")
        finally:
            system.close()
