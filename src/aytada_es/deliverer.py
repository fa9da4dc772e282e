"""Sends the webhook outbox: due deliveries are claimed with a lease (safe with several
processes), signed (Standard Webhooks), POSTed to the address checked just before, and
retried on the schedule with the same webhook-id until delivered or given up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from ._waiting import in_thread
from .adapters.addresses import AddressGuard, Target
from .adapters.webhooks import CANCELLED, DELIVERED, FAILED, Webhooks
from .domain.errors import BadInput
from .domain.webhooks import RetrySchedule

log = logging.getLogger(__name__)
USER_AGENT = "aytada-es-webhooks"
MAX_ERROR = 200
_QUERY = re.compile(r"\?[^\s'\"]*")


@dataclass
class Deliverer:
    """Delivers due webhooks; one slow or dead endpoint holds at most `per_endpoint` of the
    `concurrency` attempts in flight, so the others go on."""

    webhooks: Webhooks
    guard: AddressGuard
    http: httpx.AsyncClient
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    timeout_s: float = 10.0
    concurrency: int = 16
    per_endpoint: int = 2
    poll_s: float = 0.5
    # Attempts made, and what they came to (read by the metrics).
    attempts: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    _flying: dict[str, int] = field(default_factory=dict)
    _tasks: dict[asyncio.Task[None], str] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery is ours: past it, another process may take it."""
        return self.timeout_s * 3 + 30

    async def run(self, stop: asyncio.Event) -> None:
        """Send what is due every `poll_s` (and whenever an attempt ends) until `stop`."""
        try:
            while not stop.is_set():
                await self.send_due()
                self._wake.clear()
                stopping = asyncio.ensure_future(stop.wait())
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait(
                        {stopping, woken}, timeout=self.poll_s, return_when="FIRST_COMPLETED"
                    )
                finally:
                    stopping.cancel()
                    woken.cancel()
        finally:
            await self.close()

    async def close(self) -> None:
        """Abandon the attempts in flight and release them: they are tried again (a process
        that dies instead holds them until their leases run out)."""
        abandoned = dict(self._tasks)
        for task in abandoned:
            task.cancel()
        for task in abandoned:
            with contextlib.suppress(BaseException):
                await task
        if abandoned:
            await in_thread(self.webhooks.release, list(abandoned.values()))

    async def send_due(self) -> int:
        """Claim and start the due deliveries there is room for; how many were started."""
        room = self.concurrency - len(self._tasks)
        if room <= 0:
            return 0
        now = time.time()
        busy = [e for e, n in self._flying.items() if n >= self.per_endpoint]
        due = await in_thread(self.webhooks.due, now, room * 4, busy)
        started = 0
        for delivery in due:
            endpoint = str(delivery["endpoint_id"])
            if len(self._tasks) >= self.concurrency:
                break
            if self._flying.get(endpoint, 0) >= self.per_endpoint:
                continue
            claimed = await in_thread(
                self.webhooks.claim, delivery["webhook_id"], now, now + self.lease_s
            )
            if not claimed:
                continue
            self._flying[endpoint] = self._flying.get(endpoint, 0) + 1
            task = asyncio.create_task(
                self._attempt(delivery), name=f"webhook {delivery['webhook_id']}"
            )
            self._tasks[task] = str(delivery["webhook_id"])
            task.add_done_callback(functools.partial(self._landed, endpoint=endpoint))
            started += 1
        return started

    def _landed(self, task: asyncio.Task[None], endpoint: str) -> None:
        self._tasks.pop(task, None)
        left = self._flying.get(endpoint, 1) - 1
        if left > 0:
            self._flying[endpoint] = left
        else:
            self._flying.pop(endpoint, None)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("a webhook attempt crashed", exc_info=task.exception())

    async def _attempt(self, delivery: dict[str, object]) -> None:
        webhook_id = str(delivery["webhook_id"])
        endpoint = await in_thread(self.webhooks.endpoint, str(delivery["endpoint_id"]))
        now = time.time()
        if endpoint is None or endpoint["deleted_at"] is not None:
            await in_thread(
                self.webhooks.settle,
                webhook_id,
                status=CANCELLED,
                next_attempt_at=None,
                updated_at=now,
            )
            self.cancelled += 1
            return
        code, error = await self._post(
            endpoint["url"], endpoint["secret"], webhook_id, str(delivery["body"])
        )
        self.attempts += 1
        now = time.time()
        attempts = int(str(delivery["attempts"])) + 1
        first = float(str(delivery["first_attempt_at"] or now))
        changes: dict[str, object] = {
            "attempts": attempts,
            "first_attempt_at": first,
            "last_status_code": code,
            "last_error": error,
            "updated_at": now,
        }
        if error is None:
            changes |= {"status": DELIVERED, "delivered_at": now, "next_attempt_at": None}
            self.delivered += 1
        else:
            due = self.schedule.next_attempt(attempts, _utc(first), _utc(now))
            if due is None:
                changes |= {"status": FAILED, "next_attempt_at": None}
                self.failed += 1
            else:
                changes["next_attempt_at"] = due.timestamp()
                self.retried += 1
        await in_thread(self.webhooks.settle, webhook_id, **changes)

    async def _post(
        self, url: str, secret: str, webhook_id: str, body: str
    ) -> tuple[int | None, str | None]:
        """One attempt: (status code, None) when delivered, else (code or None, what went wrong)."""
        try:
            target = await in_thread(self.guard.target, url)
        except BadInput as e:
            return None, _short(f"refused: {e.fields.get('url', e.message)}")
        moment = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, moment, body),
        }
        try:
            answer = await self._send(target, headers, body)
        except httpx.HTTPError as e:
            return None, _short(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        if 200 <= answer.status_code < 300:
            return answer.status_code, None
        return answer.status_code, f"answered {answer.status_code}"

    async def _send(self, target: Target, headers: dict[str, str], body: str) -> httpx.Response:
        """POST to the checked address itself (no second lookup a DNS rebinding could change),
        with the name in the Host header and, over TLS, in SNI and the certificate check."""
        parts = target.url
        address = target.addresses[0]
        host = f"[{address}]" if address.version == 6 else str(address)
        pinned = parts._replace(netloc=f"{host}:{target.port}").geturl()
        default = 443 if parts.scheme == "https" else 80
        name = f"[{target.host}]" if ":" in target.host else target.host
        headers["host"] = name if target.port == default else f"{name}:{target.port}"
        extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
        return await self.http.post(
            pinned,
            content=body.encode(),
            headers=headers,
            timeout=self.timeout_s,
            follow_redirects=False,
            extensions=extensions,
        )

    def backlog(self) -> tuple[int, float]:
        """Deliveries pending, and the age in seconds of the oldest (0 when none). Blocking."""
        count, oldest = self.webhooks.backlog()
        return count, 0.0 if oldest is None else max(time.time() - float(oldest), 0.0)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _short(error: str) -> str:
    """An error for the delivery history: one line, no query strings, short."""
    return _QUERY.sub("?…", " ".join(error.split()))[:MAX_ERROR]
