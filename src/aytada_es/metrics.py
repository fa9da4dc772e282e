"""The Prometheus metrics of one running system, in a registry of its own, read at scrape time."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from .adapters.limits import LimitCounts
from .application import Studio
from .projections import ReadModels

# Instant providers answer in milliseconds, a local render takes seconds, a cloud one minutes.
HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


WEBHOOK_OUTCOMES = ("delivered", "retried", "failed", "cancelled")


class LivePush(Protocol):
    """A web app's live push, as the metrics read it."""

    @property
    def connections(self) -> int: ...

    @property
    def too_slow(self) -> int: ...


class Positioned(Protocol):
    """A relay, as the metrics read it: how far it published."""

    @property
    def position(self) -> int: ...


class Watched(Protocol):
    """A running system (`bootstrap.System`), as the metrics read it at each scrape."""

    @property
    def studio(self) -> Studio: ...

    @property
    def read_models(self) -> ReadModels: ...

    @property
    def relay(self) -> Positioned | None: ...

    @property
    def roles(self) -> tuple[str, ...]: ...

    def health(self) -> dict[str, bool]: ...


class PartCounts:
    """Counts read off a part's live object, carried over when the part restarts as a new one."""

    def __init__(self, *names: str) -> None:
        self._before = dict.fromkeys(names, 0)
        self._current: object | None = None
        self._lock = threading.Lock()

    def follow(self, part: object) -> None:
        """Read `part` from now on; the object it replaces has stopped: its counts are final."""
        with self._lock:
            if self._current is not None:
                for name in self._before:
                    self._before[name] += int(getattr(self._current, name))
            self._current = part

    def now(self, name: str) -> int:
        """A gauge: the live object's value alone."""
        with self._lock:
            return int(getattr(self._current, name)) if self._current is not None else 0

    def total(self, name: str) -> int:
        with self._lock:
            now = int(getattr(self._current, name)) if self._current is not None else 0
            return self._before[name] + now


class Metrics:
    """Every metric of one system; tests build many systems in one process, so no global state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handling = Histogram(
            "aytada_stage_handling_seconds",
            "Time of each call of a stage's handler.",
            ["stage"],
            buckets=HANDLING_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "aytada_stage_failures",
            "Calls of a stage's handler that raised (the message is retried, then dead-lettered).",
            ["stage"],
            registry=self.registry,
        )
        self.timed_out = Counter(
            "aytada_steps_timed_out",
            "Steps (and add-ons) this process failed for passing their deadline.",
            ["step"],
            registry=self.registry,
        )
        self.provider_wait = Histogram(
            "aytada_provider_wait_seconds",
            "Time a call of a limited provider waited for its slot.",
            ["provider"],
            buckets=HANDLING_BUCKETS,
            registry=self.registry,
        )
        self.relay = PartCounts("published", "republished", "republished_active")
        self.stages: dict[str, PartCounts] = {}
        self.pushes: set[LivePush] = set()
        # The webhook deliverer's counts, and what its outbox holds (pending, oldest age in s).
        self.webhooks = PartCounts(*WEBHOOK_OUTCOMES, "attempts")
        self.webhook_backlog: Callable[[], tuple[int, float]] | None = None
        ProcessCollector(registry=self.registry)

    def watch(self, system: Watched) -> None:
        """Read the system's parts at every scrape."""
        self.registry.register(SystemCollector(system, self))

    def follow_limits(self, counts: LimitCounts) -> None:
        """Report the provider limits' calls in flight, waiting, and slowed down by 429s."""
        self.registry.register(LimitCollector(counts))

    def observe_wait(self, provider: str, seconds: float) -> None:
        self.provider_wait.labels(provider).observe(seconds)

    def stage(self, name: str) -> PartCounts:
        """The counts of a stage's runners."""
        return self.stages.setdefault(name, PartCounts("consumed", "dead_lettered"))

    def measure(self, stage: str) -> Callable[[], AbstractContextManager[None]]:
        """What a stage's runner wraps each call of the handler in."""
        handling = self.handling.labels(stage)
        failures = self.failures.labels(stage)

        @contextlib.contextmanager
        def measured() -> Iterator[None]:
            began = time.perf_counter()
            try:
                yield
            except Exception:
                failures.inc()
                raise
            finally:
                handling.observe(time.perf_counter() - began)

        return measured

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format the `Accept` header asks for, and its content type.

        Blocking (it reads positions from the database): run it in a thread.
        """
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


class SystemCollector:
    """Reads the counts and lags of the parts this process runs, at scrape time."""

    def __init__(self, system: Watched, metrics: Metrics) -> None:
        self.system = system
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        system, metrics = self.system, self.metrics
        yield _counter(
            "aytada_events_stored", "Events this process stored.", system.studio.saved_events
        )
        # Positions first, then the last id: a lag is never reported smaller than it was.
        relay_position = system.relay.position if system.relay is not None else None
        read_models = system.read_models.statuses() if "projections" in system.roles else []
        last = system.studio.recorder.max_notification_id() or 0
        yield _gauge("aytada_store_position", "The last notification id of the event store.", last)
        if "relay" in system.roles:
            yield _counter(
                "aytada_relay_published",
                "Events the relay of this process published (a batch may be published again).",
                metrics.relay.total("published"),
            )
            yield _counter(
                "aytada_relay_republished",
                "Events published again after the broker lost them: the retention window and"
                " the active projects' events (counted in aytada_relay_published too).",
                metrics.relay.total("republished"),
            )
            yield _counter(
                "aytada_relay_republished_active",
                "Of those, events of projects with a request in flight, published first.",
                metrics.relay.total("republished_active"),
            )
            if relay_position is not None:
                yield _gauge(
                    "aytada_relay_lag_events",
                    "Events in the store not yet published.",
                    max(last - relay_position, 0),
                )
        if "stages" in system.roles:
            consumed = CounterMetricFamily(
                "aytada_stage_consumed",
                "Messages a stage consumed (handled or passed over).",
                labels=["stage"],
            )
            dead = CounterMetricFamily(
                "aytada_stage_dead_lettered",
                "Messages a stage sent to the dead-letter topic.",
                labels=["stage"],
            )
            lanes = GaugeMetricFamily(
                "aytada_stage_projects_in_progress",
                "Projects a stage's runner is working on, side by side (a lane each).",
                labels=["stage"],
            )
            waiting = GaugeMetricFamily(
                "aytada_stage_messages_waiting",
                "Messages a stage's runner fetched and has not handled yet (at most 1,000).",
                labels=["stage"],
            )
            for name, counts in sorted(metrics.stages.items()):
                consumed.add_metric([name], counts.total("consumed"))
                dead.add_metric([name], counts.total("dead_lettered"))
                lanes.add_metric([name], counts.now("in_progress"))
                waiting.add_metric([name], counts.now("waiting"))
            yield from (consumed, dead, lanes, waiting)
        if read_models:
            lag = GaugeMetricFamily(
                "aytada_projection_lag_events",
                "Events in the store not yet applied to a read model.",
                labels=["projection"],
            )
            lag_s = GaugeMetricFamily(
                "aytada_projection_lag_seconds",
                "Age of the oldest stored event not yet applied to a read model (0 when current).",
                labels=["projection"],
            )
            stopped = GaugeMetricFamily(
                "aytada_projection_stopped",
                "1 while a read model is stopped at an event it cannot apply.",
                labels=["projection"],
            )
            for status in sorted(read_models, key=lambda s: s.name):
                lag.add_metric([status.name], max(last - status.position, 0))
                if status.lag_s is not None:
                    lag_s.add_metric([status.name], status.lag_s)
                stopped.add_metric([status.name], float(status.stopped is not None))
            yield lag
            yield lag_s
            yield stopped
        if system.roles:
            up = GaugeMetricFamily(
                "aytada_part_up", "Whether a part of this process is running.", labels=["part"]
            )
            for part, running in sorted(system.health().items()):
                up.add_metric([part], float(running))
            yield up
        if metrics.webhook_backlog is not None:
            yield from _webhooks(metrics)
        pushes = list(metrics.pushes)
        if pushes:
            yield _gauge(
                "aytada_websocket_clients",
                "WebSocket clients connected to /ws/videos.",
                sum(p.connections for p in pushes),
            )
            yield _counter(
                "aytada_websocket_too_slow",
                "WebSocket clients closed for falling too far behind (4008).",
                sum(p.too_slow for p in pushes),
            )


def _webhooks(metrics: Metrics) -> Iterator[Metric]:
    assert metrics.webhook_backlog is not None
    outcomes = CounterMetricFamily(
        "aytada_webhook_deliveries",
        "Webhook delivery attempts by outcome (retried: failed, tried again later).",
        labels=["outcome"],
    )
    for outcome in WEBHOOK_OUTCOMES:
        outcomes.add_metric([outcome], metrics.webhooks.total(outcome))
    yield outcomes
    yield _counter(
        "aytada_webhook_attempts", "Webhook POSTs made.", metrics.webhooks.total("attempts")
    )
    pending, oldest_s = metrics.webhook_backlog()
    yield _gauge("aytada_webhook_pending", "Webhook deliveries not yet settled.", pending)
    yield _gauge(
        "aytada_webhook_oldest_pending_seconds",
        "Age of the oldest webhook delivery not yet settled (0 when none).",
        oldest_s,
    )


class LimitCollector:
    """Reads this process's calls of limited providers at scrape time."""

    def __init__(self, counts: LimitCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        return _limit_metrics(self.counts)


def _limit_metrics(counts: LimitCounts) -> Iterator[Metric]:
    in_flight = GaugeMetricFamily(
        "aytada_provider_calls_in_flight",
        "Calls of a provider this process is making (holding a slot of its limits).",
        labels=["provider"],
    )
    waiting = GaugeMetricFamily(
        "aytada_provider_calls_waiting",
        "Calls of a provider this process holds back until its limits allow them.",
        labels=["provider"],
    )
    slowed = CounterMetricFamily(
        "aytada_provider_slow_downs",
        "429 answers with a Retry-After that paused every caller of a provider.",
        labels=["provider"],
    )
    for provider, n in sorted(dict(counts.in_flight).items()):
        in_flight.add_metric([provider], n)
    for provider, n in sorted(dict(counts.waiting).items()):
        waiting.add_metric([provider], n)
    for provider, n in sorted(dict(counts.slow_downs).items()):
        slowed.add_metric([provider], n)
    yield in_flight
    yield waiting
    yield slowed


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
