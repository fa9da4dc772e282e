"""Builds the running system from settings; tests pass their own parts."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer, TopicPartition

from ._waiting import Doorbell
from .adapters.acts import StageActs
from .adapters.addresses import AddressGuard
from .adapters.anchors import AnchorLog
from .adapters.assets import AssetStore
from .adapters.calls import CallLedger
from .adapters.keys import session_key
from .adapters.limits import ProviderLimits
from .adapters.links import AssetLinks
from .adapters.permissions import private_dir
from .adapters.sql import SQLStore
from .adapters.webhooks import Webhooks
from .anchoring import Anchorer
from .application import Studio
from .config import Settings
from .consumers.addons import AddOnStage
from .consumers.context import StageContext
from .consumers.deadlines import DeadlineWatcher
from .consumers.registry import Registered, asset_kinds, installed, registered
from .consumers.runner import RetryPolicy, StageRunner, Topics
from .consumers.stage import Stage
from .deliverer import Deliverer
from .domain.account import account_id
from .domain.errors import ConfigError
from .domain.steps import SPECS
from .domain.webhooks import RetrySchedule
from .group_commit import GroupCommit
from .kafka import clients
from .kafka.broker import BundledBroker
from .kafka.relay import ActiveProjects, Relay
from .kafka.roll import BrokerRoll
from .kafka.topics import TopicNames, ensure_topics
from .metrics import Metrics
from .projections.runner import ReadModels, read_models
from .providers.base import Providers
from .providers.instant import instant_providers
from .providers.limited import limited_providers
from .providers.local import local_providers
from .roles import ROLES
from .service import Service

log = logging.getLogger(__name__)
RESTART_DELAY_S = 1.0
# Where every role runs in one process, each save there rings the relay and the projections;
# what they poll for is another process's save (the CLI's), which may wait this long when idle.
IDLE_POLL_S = 1.0
BROKER_TIMEOUT_S = 2.0


def stage_runner(
    stage: Stage,
    ctx: StageContext,
    settings: Settings,
    bootstrap: str,
    *,
    dead_letters: AIOKafkaProducer,
    bell: Doorbell | None = None,
) -> StageRunner:
    """A consumer group member for the stage, with the topics, group and retries of `settings`."""
    topics = TopicNames(settings.kafka_namespace)
    return StageRunner(
        stage,
        ctx,
        bootstrap=bootstrap,
        topics=Topics(topics.project_events, topics.dead_letters),
        group_id=settings.stage_group(stage.name),
        dead_letters=dead_letters,
        policy=RetryPolicy(
            attempts=settings.stage_attempts,
            wait_initial_s=settings.stage_backoff_s,
            wait_jitter_s=settings.stage_backoff_s,
        ),
        bell=bell,
        session_timeout_ms=settings.stage_session_ms,
    )


def provider_limits(
    studio: Studio, settings: Settings, metrics: Metrics | None = None
) -> ProviderLimits:
    """The gate of the limited providers, in the studio's database (creates its tables)."""
    return ProviderLimits(
        SQLStore.of(studio),
        settings.limits(),
        weights={str(account_id(name)): w for name, w in settings.fair_weights.items()},
        observe_wait=metrics.observe_wait if metrics is not None else None,
    )


def make_relay(
    studio: Studio,
    settings: Settings,
    producer: AIOKafkaProducer,
    *,
    bootstrap: str = "",
    batch: int = 1000,
    active: Callable[[], ActiveProjects] | None = None,
) -> Relay:
    """A relay of the studio's events, with the topics and checks of `settings` (not prepared).

    `active`: the projects with a request in flight, republished in full after a broker loss
    (without it, the whole log is).
    """
    return Relay(
        studio,
        producer,
        topics=TopicNames(settings.kafka_namespace),
        partitions=settings.topic_partitions,
        check_s=settings.relay_check_s,
        bootstrap=bootstrap or settings.kafka_bootstrap or "",
        batch=batch,
        retention_s=settings.topic_retention_s,
        active=active,
        bundled_broker=settings.kafka_bootstrap is None,
    )


def make_providers(
    settings: Settings, assets: AssetStore, http: httpx.AsyncClient | None = None
) -> Providers:
    """The provider set that AYTADA_PROVIDERS names."""
    if settings.providers == "instant":
        return instant_providers(assets)
    local = local_providers(assets)
    if settings.providers == "local":
        return local
    # Loaded only here: the cloud SDKs take 0.2 s to import, at every start that never uses them.
    from .providers.cloud import cloud_providers

    links = AssetLinks(session_key(settings.data_dir, settings.secret_key), settings.public_url)
    cloud = cloud_providers(
        assets,
        llm_base_url=settings.llm_base_url,
        llm_api_key=settings.llm_api_key,
        elevenlabs_api_key=settings.elevenlabs_api_key,
        shotstack_api_key=settings.shotstack_api_key,
        public_asset_url=links.url,
        http=http,
        llm_model=settings.llm_model,
    )
    # Scene stills and library images are drawn locally; Shotstack animates them.
    return dataclasses.replace(cloud, images=local.images)


@dataclass
class System:
    """Every part of aytada-es, built but not started."""

    settings: Settings
    studio: Studio
    assets: AssetStore
    providers: Providers
    registered: list[Registered]
    read_models: ReadModels
    roles: tuple[str, ...] = ROLES
    broker: BundledBroker | None = None
    bootstrap_servers: str = ""
    relay: Relay | None = None
    broker_roll: BrokerRoll | None = None
    runners: dict[str, StageRunner] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _parts: dict[str, Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=dict)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _restarting: set[str] = field(default_factory=set)
    _relay_bell: Doorbell | None = None
    _commits: GroupCommit | None = None
    http: httpx.AsyncClient | None = None
    metrics: Metrics = field(default_factory=Metrics)
    # Tests give the deliverer their own HTTP transport or resolver.
    webhook_transport: httpx.AsyncBaseTransport | None = None
    webhook_guard: AddressGuard | None = None
    limits: ProviderLimits | None = None

    def __post_init__(self) -> None:
        self.metrics.watch(self)

    async def start(self) -> None:
        """Start the broker (if none is configured), create topics, start every role's task."""
        settings = self.settings
        if settings.kafka_bootstrap:
            self.bootstrap_servers = settings.kafka_bootstrap
        elif not self.bootstrap_servers:
            private_dir(settings.data_dir)
            self.broker = BundledBroker(log_file=settings.data_dir / "broker.log")
            self.bootstrap_servers = await asyncio.to_thread(self.broker.start)
        topics = TopicNames(settings.kafka_namespace)
        await ensure_topics(
            self.bootstrap_servers,
            topics.created,
            settings.topic_partitions,
            topics.retained(settings.topic_retention_s),
        )
        self._producer = clients.producer(self.bootstrap_servers)
        await clients.start(self._producer)
        self._stop = asyncio.Event()
        if "relay" in self.roles:
            self._parts["relay"] = self._relay
            self._parts["anchors"] = self._anchors
            if self.broker is not None and settings.broker_roll_mb:
                self._parts["broker-roll"] = self._broker_roll
        if "projections" in self.roles:
            projections_bell = self._doorbell()
            self._parts["projections"] = lambda: self.read_models.run(
                self._stop,
                settings.poll_interval_s,
                doorbell=projections_bell,
                idle_poll_s=self._idle_poll_s,
            )
        if "stages" in self.roles:
            self._commits = GroupCommit(self.studio)
            self.limits = provider_limits(self.studio, settings, self.metrics)
            self.metrics.follow_limits(self.limits.counts)
            ctx = StageContext(
                self.studio,
                self.assets,
                limited_providers(self.providers, self.limits),
                commits=self._commits,
                calls=CallLedger.of(self.studio),
                acts=StageActs.of(self.studio),
                open_steps=self.read_models.open_steps,
            )
            for stage in self.stages:
                self._parts[f"stage:{stage.name}"] = self._stage_part(stage, ctx)
            self._parts["deadlines"] = self._deadlines
            self._parts["webhook-deliverer"] = self._deliverer
        for name in self._parts:
            self.revive(name)

    @property
    def _idle_poll_s(self) -> float | None:
        if set(self.roles) != set(ROLES):
            return None
        return max(IDLE_POLL_S, self.settings.poll_interval_s)

    def _doorbell(self) -> Doorbell:
        """A doorbell rung by every save this process makes."""
        doorbell = Doorbell()
        self.studio.on_saved(doorbell.ring)
        return doorbell

    async def _relay(self) -> None:
        if self._relay_bell is None:
            self._relay_bell = self._doorbell()
        relay = make_relay(
            self.studio,
            self.settings,
            self._producer,
            bootstrap=self.bootstrap_servers,
            active=self._active_projects,
        )
        await asyncio.to_thread(relay.prepare)
        self.relay = relay
        self.metrics.relay.follow(relay)
        relay.listeners.append(self._published)
        await relay.run(
            self._stop, self.settings.poll_interval_s, self._relay_bell, self._idle_poll_s
        )

    def _window_starts(self) -> dict[TopicPartition, int] | None:
        return self.relay.window_starts() if self.relay is not None else None

    def _active_projects(self) -> ActiveProjects:
        position, project_ids = self.read_models.open_steps.active()
        return ActiveProjects(position, project_ids)

    async def _broker_roll(self) -> None:
        assert self.broker is not None
        roll = BrokerRoll(
            self.broker,
            limit_mb=self.settings.broker_roll_mb,
            quiet=self._quiet,
            relay=lambda: self.relay,
            last_position=lambda: self.studio.recorder.max_notification_id() or 0,
        )
        self.broker_roll = roll
        await roll.run(self._stop)

    def _quiet(self) -> bool:
        """No stage of this process is working on or holding a message."""
        return all(r.in_progress == 0 and r.waiting == 0 for r in self.runners.values())

    async def _anchors(self) -> None:
        settings = self.settings
        anchorer = Anchorer(
            self.studio,
            AnchorLog(settings.anchors_dir),
            interval_s=settings.anchor_interval_s,
            every=settings.anchor_every,
            producer=self._producer,
            topic=TopicNames(settings.kafka_namespace).chain_anchors,
        )
        await anchorer.run(self._stop)

    async def _deadlines(self) -> None:
        add_ons = frozenset(s.name for s in self.stages if isinstance(s, AddOnStage))
        counter = self.metrics.timed_out
        watcher = DeadlineWatcher(
            self.studio,
            self.read_models.open_steps,
            self.settings.deadlines(),
            add_ons=add_ons,
            timed_out=lambda step: counter.labels(step).inc(),
        )
        for step in watcher.steps:
            counter.labels(step)  # shown as 0 until one times out
        await watcher.run(self._stop)

    async def _deliverer(self) -> None:
        settings = self.settings
        webhooks = await asyncio.to_thread(Webhooks, SQLStore.of(self.studio))
        async with httpx.AsyncClient(
            transport=self.webhook_transport,
            trust_env=False,  # a proxy would connect to the name, not the checked address
            limits=httpx.Limits(max_connections=settings.webhook_concurrency),
        ) as http:
            deliverer = Deliverer(
                webhooks,
                self.webhook_guard or AddressGuard(settings.webhook_allowed_networks),
                http,
                RetrySchedule(settings.webhook_retry_s, settings.webhook_give_up_s),
                timeout_s=settings.webhook_timeout_s,
                concurrency=settings.webhook_concurrency,
            )
            self.metrics.webhooks.follow(deliverer)
            self.metrics.webhook_backlog = deliverer.backlog
            await deliverer.run(self._stop)

    def _published(self, types: frozenset[str]) -> None:
        for runner in self.runners.values():
            runner.notice(types)

    def _stage_part(
        self, stage: Stage, ctx: StageContext
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        def part() -> Coroutine[Any, Any, None]:
            # Beside this process's relay a stage's consumer pauses while idle (it rings).
            bell = Doorbell() if "relay" in self.roles else None
            runner = stage_runner(
                stage,
                ctx,
                self.settings,
                self.bootstrap_servers,
                dead_letters=self._producer,
                bell=bell,
            )
            if "relay" in self.roles:  # the relay's window first: see Relay.window_starts
                runner.hold = self._window_starts
            runner.measure = self.metrics.measure(stage.name)
            self.metrics.stage(stage.name).follow(runner)
            self.runners[stage.name] = runner
            return runner.run(self._stop)

        return part

    def revive(self, name: str) -> None:
        """Start a part afresh (a new relay or stage runner), restarting it if it crashes."""

        async def supervised() -> None:
            while not self._stop.is_set():
                try:
                    await self._parts[name]()
                    return
                except Exception:
                    log.exception("%s crashed; restarting it in %.1f s", name, RESTART_DELAY_S)
                    self._restarting.add(name)
                    try:
                        await asyncio.sleep(RESTART_DELAY_S)
                    finally:
                        self._restarting.discard(name)

        self._tasks[name] = asyncio.create_task(supervised(), name=name)

    async def kill(self, name: str) -> None:
        """Cancel a part mid-work, as a crash would: nothing it had not committed is kept."""
        task = self._tasks.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop(self) -> None:
        """Ask every task to finish its current batch, then close clients, broker and store."""
        self._stop.set()
        tasks = list(self._tasks.values())
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("%s ended with %r", task.get_name(), result)
        self._tasks.clear()
        self._parts.clear()
        self.runners.clear()
        if self._commits is not None:
            await self._commits.close()
        if self.limits is not None:
            await self.limits.aclose()
        with contextlib.suppress(Exception):
            await clients.to_the_end(self._producer.stop())
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
            self.broker = None
        if self.http is not None:
            await self.http.aclose()

    def close(self) -> None:
        self.studio.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[System]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    def service(self) -> Service:
        """What the web edge gets of this system."""
        return Service(
            settings=self.settings,
            studio=self.studio,
            read_models=self.read_models,
            assets=self.assets,
            metrics=self.metrics,
            parts=self,
            roles=self.roles,
        )

    @property
    def stages(self) -> list[Stage]:
        """The stages this system runs (in its `stages` role)."""
        return [r.stage for r in self.registered]

    def health(self) -> dict[str, bool]:
        """Which parts are up: their task runs and is not waiting to restart after a crash."""
        parts = {
            name: name in self._tasks
            and not self._tasks[name].done()
            and name not in self._restarting
            for name in self._parts
        }
        parts["broker"] = self.broker.running if self.broker else bool(self.bootstrap_servers)
        return parts

    async def broker_answers(self, timeout_s: float = BROKER_TIMEOUT_S) -> bool:
        """Whether the Kafka broker answers a metadata request in time (False before start)."""
        producer = getattr(self, "_producer", None)
        if producer is None or (self.broker is not None and not self.broker.running):
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await producer.client.fetch_all_metadata()
        except Exception as e:
            log.warning("the broker at %s does not answer: %r", self.bootstrap_servers, e)
            return False
        return True


# A young-generation collection every 50,000 allocations instead of every 700: the pipeline
# allocates far faster than it leaves cycles behind (bench/pipeline.py: about 10 % less CPU).
GC_THRESHOLD = (50_000, 10, 10)


def tune_collector() -> None:
    """Tune the garbage collector of a long-running process once it has started.

    What start-up made lives as long as the process: it is kept out of every collection, so
    that full collections stay short while thousands of sockets are served.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _check_deadlines(settings: Settings, stages: list[Stage]) -> None:
    """A deadline set for a step nothing runs is a mistake (a typo): say so at start-up."""
    steps = {s.value for s in SPECS} | {s.name for s in stages if isinstance(s, AddOnStage)}
    unknown = sorted(set(settings.deadlines_s) - steps)
    if unknown:
        names = ", ".join(settings.deadline_variable(step) for step in unknown)
        known = ", ".join(sorted(steps))
        raise ConfigError(f"bad configuration: {names} names no billed step (steps: {known})")


def bootstrap(
    settings: Settings,
    *,
    providers: Providers | None = None,
    extra_stages: Iterable[type[Stage]] = (),
    plugins: bool = False,
    roles: tuple[str, ...] = ROLES,
    bootstrap_servers: str = "",
) -> System:
    """Wire the system: event store, asset store, providers, stages and read models.

    `plugins`: also run the stages installed distributions register, those AYTADA_PLUGINS
    allows (the `aytada-es` command does; a test asks for the stages it wants with
    `extra_stages`).
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ConfigError(f"unknown roles {sorted(unknown)}; known: {', '.join(ROLES)}")
    stages = registered(
        tuple(extra_stages), plugins=installed(settings.runs_plugin) if plugins else ()
    )
    _check_deadlines(settings, [r.stage for r in stages])
    private_dir(settings.data_dir)
    studio = Studio(settings.database().eventsourcing_env(), sole_writer=set(roles) == set(ROLES))
    http = httpx.AsyncClient(timeout=60.0) if settings.providers == "cloud" else None
    assets = AssetStore(settings.assets_dir, asset_kinds(r.stage for r in stages))
    return System(
        settings=settings,
        studio=studio,
        assets=assets,
        providers=providers or make_providers(settings, assets, http),
        registered=stages,
        read_models=read_models(studio),
        roles=roles,
        bootstrap_servers=bootstrap_servers,
        http=http,
    )
