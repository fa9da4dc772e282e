"""The provider limits' gate on SQLite and PostgreSQL: fair order by owner, calls in flight and
per minute, pauses after a 429, and the slots of a crashed process coming back."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from polling import wait_for

from aytada_es.adapters.limits import ProviderLimits
from aytada_es.adapters.sql import SQLStore
from aytada_es.application import Studio
from aytada_es.config import ProviderLimit, Settings
from aytada_es.providers.base import Brief, Call, RateLimited
from aytada_es.providers.limited import Limited, calls_for, current_owner, limit_key

ONE_AT_A_TIME = {"renders": ProviderLimit(concurrency=1)}
MakeGate = Callable[..., ProviderLimits]


@pytest.fixture
def stores(settings: Settings) -> Iterator[Callable[[], SQLStore]]:
    """Stores over the test's database, each with a connection pool of its own (as a process)."""
    studios: list[Studio] = []

    def store() -> SQLStore:
        studios.append(Studio(settings.database().eventsourcing_env()))
        return SQLStore.of(studios[-1])

    yield store
    for studio in studios:
        studio.close()


@pytest_asyncio.fixture
async def gates(stores: Callable[[], SQLStore]) -> AsyncIterator[MakeGate]:
    """Gates as separate processes would have them: a store each, the same tables."""
    made: list[ProviderLimits] = []

    def gate(limits: dict[str, ProviderLimit] = ONE_AT_A_TIME, **options: object) -> ProviderLimits:
        made.append(ProviderLimits(stores(), limits, **options))  # type: ignore[arg-type]
        return made[-1]

    yield gate
    for limits in made:
        await limits.aclose()


def calls_in_table(gate: ProviderLimits) -> int:
    return int(gate.store.query("SELECT COUNT(*) AS n FROM {aytada_limit_calls}")[0]["n"])


class Queue:
    """Calls of one provider limited to one at a time; the test says when each one ends."""

    def __init__(self, gate: ProviderLimits, provider: str = "renders") -> None:
        self.gate = gate
        self.provider = provider
        self.served: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._ends: dict[str, asyncio.Event] = {}

    async def arrive(self, name: str) -> None:
        """A call for the owner `name` without its digits (`alice2`: alice) joins the queue."""
        before = await asyncio.to_thread(calls_in_table, self.gate)
        self._ends[name] = asyncio.Event()
        self.tasks.append(asyncio.create_task(self._call(name)))
        await wait_for(lambda: calls_in_table(self.gate) > before, what=f"{name} to queue")

    async def _call(self, name: str) -> None:
        async with self.gate.slot(self.provider, name.rstrip("0123456789")):
            self.served.append(name)
            await self._ends[name].wait()

    async def next(self) -> str:
        """End the call in flight; the one that got the slot next."""
        count = len(self.served)
        self._ends[self.served[-1]].set()
        await wait_for(lambda: len(self.served) > count, what="the next call to start")
        return self.served[-1]

    async def drain(self) -> list[str]:
        """End every call, one after another; who was served, in order."""
        order = []
        while len(self.served) < len(self.tasks):
            order.append(await self.next())
        self._ends[self.served[-1]].set()
        await asyncio.gather(*self.tasks)
        return order


async def test_waiters_are_served_round_robin_by_owner_weighted(gates: MakeGate) -> None:
    queue = Queue(gates(weights={"alice": 3}))
    for name in ["first", *(f"alice{i}" for i in range(6)), "bob0", "bob1"]:
        await queue.arrive(name)
    # Alice weighs 3: three of her calls for each of Bob's; a tie goes to who came first.
    assert await queue.drain() == [
        "alice0", "bob0", "alice1", "alice2", "alice3", "bob1", "alice4", "alice5",
    ]  # fmt: skip


async def test_equal_owners_alternate_and_each_owners_calls_keep_their_order(
    gates: MakeGate,
) -> None:
    queue = Queue(gates())
    for name in ["first", *(f"alice{i}" for i in range(4)), *(f"bob{i}" for i in range(4))]:
        await queue.arrive(name)
    assert await queue.drain() == [
        "alice0", "bob0", "alice1", "bob1", "alice2", "bob2", "alice3", "bob3",
    ]  # fmt: skip


async def test_an_owner_who_was_idle_earns_no_credit(gates: MakeGate) -> None:
    queue = Queue(gates())
    for name in ["first", *(f"alice{i}" for i in range(8))]:
        await queue.arrive(name)
    assert [await queue.next() for _ in range(5)] == [f"alice{i}" for i in range(5)]
    # Bob comes now: he shares from here on, and is not paid back for the five calls he missed.
    for name in ["bob0", "bob1", "bob2"]:
        await queue.arrive(name)
    assert await queue.drain() == ["bob0", "alice5", "bob1", "alice6", "bob2", "alice7"]


async def test_gates_of_two_processes_never_exceed_the_calls_in_flight_together(
    gates: MakeGate,
) -> None:
    limits = {"renders": ProviderLimit(concurrency=2)}
    first, second = gates(limits), gates(limits)
    in_flight, most = 0, 0

    async def call(gate: ProviderLimits, owner: str) -> None:
        nonlocal in_flight, most
        async with gate.slot("renders", owner):
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1

    await asyncio.gather(
        *(call(gate, owner) for gate in (first, second) for owner in ("a", "b") for _ in range(6))
    )
    assert most == 2


async def test_calls_per_minute_are_counted_across_processes(gates: MakeGate) -> None:
    limits = {"renders": ProviderLimit(per_minute=3)}
    first, second = gates(limits, window_s=1.0), gates(limits, window_s=1.0)
    started: list[float] = []

    async def call(gate: ProviderLimits) -> None:
        async with gate.slot("renders", "alice"):
            started.append(time.monotonic())

    await asyncio.gather(*(call(gate) for gate in (first, second, first, second, first)))
    started.sort()
    # Three at once; each next one once a grant is out of the window (less the few ms between
    # a grant and its call noticing it).
    assert started[2] - started[0] < 0.5
    assert started[3] - started[0] >= 0.95
    assert started[4] - started[1] >= 0.95


async def test_a_slow_down_pauses_every_caller_of_the_provider_in_every_process(
    gates: MakeGate,
) -> None:
    limits = {"renders": ProviderLimit(concurrency=5)}  # "voices" has no limit
    told, other = gates(limits), gates(limits)
    began = time.monotonic()
    await told.slow_down("renders", 0.6)
    async with other.slot("voices", "alice"):
        assert time.monotonic() - began < 0.5  # another provider goes on
    async with other.slot("renders", "alice"):
        assert time.monotonic() - began >= 0.6
    began = time.monotonic()
    await told.slow_down("voices", 0.4)  # a provider without limits is paused too
    async with other.slot("voices", "alice"):
        assert time.monotonic() - began >= 0.4
    assert told.counts.slow_downs == {"renders": 1, "voices": 1}


class Refusing:
    """A provider that answers 429 with a Retry-After, and says who its calls were for."""

    limit_key = "renders"

    def __init__(self, gate: ProviderLimits) -> None:
        self.gate = gate
        self.owners: list[list[str]] = []

    async def clip(self, brief: Brief, scene: dict[str, object], call: Call) -> dict[str, object]:
        rows = await asyncio.to_thread(
            self.gate.store.query,
            "SELECT owner FROM {aytada_limit_calls} WHERE granted_at IS NOT NULL",
        )
        self.owners.append([row["owner"] for row in rows])
        raise RateLimited("429: too many concurrent requests", retry_after_s=0.6)


async def test_a_limited_provider_takes_its_owners_slot_and_a_429_slows_every_caller(
    gates: MakeGate,
) -> None:
    first, second = gates(), gates()
    refusing = Refusing(first)
    limited = Limited(refusing, first, "renders")
    brief = Brief(uuid.uuid4(), "T", "9:16", "b")
    with calls_for("alice"):
        assert current_owner.get() == "alice"
        with pytest.raises(RateLimited):
            await limited.clip(brief, {}, Call("k"))
    assert current_owner.get() == ""
    assert refusing.owners == [["alice"]]
    began = time.monotonic()
    async with second.slot("renders", "bob"):
        assert time.monotonic() - began >= 0.5  # the pause began at the 429


HOLDER = """
import asyncio, sys
from aytada_es.adapters.limits import ProviderLimits
from aytada_es.adapters.sql import SQLStore
from aytada_es.application import Studio
from aytada_es.config import ProviderLimit, Settings

async def main():
    settings = Settings.from_env({"AYTADA_DATABASE_URL": sys.argv[1]})
    studio = Studio(settings.database().eventsourcing_env())
    gate = ProviderLimits(
        SQLStore.of(studio), {"renders": ProviderLimit(concurrency=1)}, lease_s=float(sys.argv[2])
    )
    async with gate.slot("renders", "crashing"):
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_the_slot_of_a_crashed_process_comes_back_when_its_lease_runs_out(
    gates: MakeGate, settings: Settings
) -> None:
    lease_s = 1.0
    holder = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", HOLDER, settings.database_url, str(lease_s)),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"held\n"
        gate = gates(lease_s=lease_s)
        slot = gate.slot("renders", "alice")
        waiting = asyncio.create_task(slot.__aenter__())
        # While the holder lives it renews its lease: nobody else gets the slot.
        done, _ = await asyncio.wait({waiting}, timeout=3 * lease_s)
        assert not done
        holder.kill()
        began = time.monotonic()
        await asyncio.wait_for(waiting, timeout=10)
        assert time.monotonic() - began <= lease_s + 2.0  # its last renewal, then a poll
        await slot.__aexit__(None, None, None)
        assert await asyncio.to_thread(calls_in_table, gate) == 0
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()


async def test_a_call_cancelled_waiting_or_running_frees_its_place_at_once(gates: MakeGate) -> None:
    gate = gates()

    async def call() -> None:
        async with gate.slot("renders", "alice"):
            await asyncio.Event().wait()  # a render that is abandoned, never finished

    running = asyncio.create_task(call())
    await wait_for(lambda: gate.counts.in_flight.get("renders") == 1)
    waiting = asyncio.create_task(call())
    await wait_for(lambda: calls_in_table(gate) == 2)
    for task in (waiting, running):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await asyncio.to_thread(calls_in_table, gate) == 0
    assert gate.counts.in_flight["renders"] == 0 and gate.counts.waiting["renders"] == 0
    began = time.monotonic()
    async with gate.slot("renders", "bob"):
        assert time.monotonic() - began < 0.5


class LocalRenderer:
    limit_key = "renders"
    limit_per_machine = True


async def test_a_limit_per_machine_holds_on_each_host_with_the_keys_settings(
    gates: MakeGate,
) -> None:
    assert limit_key(LocalRenderer(), "host-a") == "renders@host-a"
    assert limit_key(Refusing, "host-a") == "renders"  # a remote API's limit is everyone's
    first, second = gates(), gates()  # "renders": one at a time
    async with first.slot("renders@host-a", "alice"):
        async with asyncio.timeout(2), second.slot("renders@host-b", "bob"):
            pass  # another machine's CPUs
        same_host = second.slot("renders@host-a", "bob")
        waiting = asyncio.create_task(same_host.__aenter__())
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done  # this machine's one render is running
    await asyncio.wait_for(waiting, 5)
    await same_host.__aexit__(None, None, None)
