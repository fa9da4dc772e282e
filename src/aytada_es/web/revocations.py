"""Ending live connections whose credential stopped working, reading only what changed.

Each subscription remembers the credential its WebSocket was opened with. One task per hub
looks every `interval_s` at the accounts whose read-model row moved since its last look (a
rotated token, a disabled account) and at the sessions logged out lately, and ends the
subscriptions they make void with 4001. Expiries need no look: the hub sets a timer per
subscription. Open sockets cost nothing between changes, however many there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .._waiting import in_thread, wait_or_timeout
from ..adapters.sessions import Sessions
from ..projections import Accounts, AccountView

log = logging.getLogger(__name__)
REVOKED = 4001
# Logouts are looked for this far back: one committed late, or by a process whose clock is
# behind, is still seen; a logout seen again ends nothing more.
LOGOUT_LOOKBACK_S = 30.0
# Changes are remembered this long for connections whose handshake they raced.
RECENT_S = 60.0
PURGE_EVERY_S = 3600.0
STOP_TIMEOUT_S = 10.0
TOKEN_EXPIRED = "the token has expired"  # noqa: S105 (a message, not a secret)


@dataclass(frozen=True)
class Credential:
    """What a connection was authenticated with, and its account's read-model row then."""

    account_id: str
    token_hash: str
    position: int  # of the account's row when it was checked
    session: str | None = None  # the session id's hash, when a cookie vouched
    expires_at: float | None = None  # when the session or the token ends, whichever comes first

    @property
    def expiry_reason(self) -> str:
        return "the session has expired" if self.session else TOKEN_EXPIRED


def void_reason(account: AccountView, credential: Credential, now: float) -> str | None:
    """Why the account's row, as it is now, no longer lets the credential in (None: it does)."""
    if account["disabled"]:
        return "the account is disabled"
    if account["token_hash"] != credential.token_hash:
        return "the token was rotated"
    expires_at = account["token_expires_at"]
    if expires_at is not None and now >= expires_at:
        return TOKEN_EXPIRED
    return None


class Revocable(Protocol):
    """What the watch needs of a live connection (the hub's `Subscription`)."""

    @property
    def credential(self) -> Credential | None: ...

    @property
    def ended(self) -> asyncio.Event: ...

    def end(self, code: int, reason: str) -> None: ...


class Subscriptions(Protocol):
    """What the watch needs of the hub: the live subscriptions of an account or a session."""

    def of_account(self, account_id: str) -> Iterable[Revocable]: ...

    def of_session(self, session: str) -> Iterable[Revocable]: ...


class RevocationWatch:
    """The hub's task that ends subscriptions whose token or session stopped working."""

    def __init__(
        self,
        subscriptions: Subscriptions,
        accounts: Accounts,
        sessions: Sessions,
        interval_s: float = 1.0,
    ) -> None:
        self.subscriptions = subscriptions
        self.accounts = accounts
        self.sessions = sessions
        self.interval_s = interval_s
        self.revoked = 0  # subscriptions ended, for the logs and tests
        self._position = 0
        self._recent: OrderedDict[str, tuple[AccountView, float]] = OrderedDict()
        self._logged_out: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def position(self) -> int:
        """The accounts read model's position up to which changes were looked at."""
        return self._position

    async def start(self) -> None:
        self._position = await in_thread(self.accounts.position)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="web:revocation-watch")

    async def stop(self) -> None:
        """Stop after the current look: a query cancelled mid-way would go on in its thread
        while the store closes under it."""
        if self._task is not None:
            self._stop.set()
            await asyncio.wait({self._task}, timeout=STOP_TIMEOUT_S)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def verify(self, subscription: Revocable) -> None:
        """Check a new subscription against what the watch saw while its handshake ran."""
        credential = subscription.credential
        if credential is None:
            return
        if credential.session in self._logged_out:
            self._end(subscription, "logged out")
            return
        recent = self._recent.get(credential.account_id)
        if recent is not None and recent[0]["position"] > credential.position:
            self._check(subscription, recent[0], time.time())

    async def _run(self) -> None:
        purged = time.monotonic() - PURGE_EVERY_S  # the first look purges
        while True:
            await wait_or_timeout(self._stop, self.interval_s)
            if self._stop.is_set():
                return
            try:
                accounts, logged_out = await in_thread(self._look)
            except Exception:
                log.exception("could not look for revoked credentials; trying again")
                continue
            self.apply(accounts, logged_out)
            if time.monotonic() - purged >= PURGE_EVERY_S:
                purged = time.monotonic()
                try:
                    await in_thread(self.sessions.purge)
                except Exception:
                    log.exception("could not purge ended sessions")

    def _look(self) -> tuple[list[AccountView], list[str]]:
        """The accounts changed since the last look, the sessions logged out lately (blocking)."""
        accounts = self.accounts.changed_after(self._position)
        logged_out = self.sessions.revoked_since(time.time() - LOGOUT_LOOKBACK_S)
        return accounts, logged_out

    def apply(self, accounts: list[AccountView], logged_out: list[str]) -> None:
        """End the subscriptions these changes make void (in the event loop's thread)."""
        now = time.time()
        for account in accounts:
            self._position = max(self._position, account["position"])
            self._recent[account["id"]] = (account, now)
            self._recent.move_to_end(account["id"])
            for subscription in list(self.subscriptions.of_account(account["id"])):
                self._check(subscription, account, now)
        while self._recent and next(iter(self._recent.values()))[1] < now - RECENT_S:
            self._recent.popitem(last=False)
        self._logged_out = set(logged_out)
        for session in logged_out:
            for subscription in list(self.subscriptions.of_session(session)):
                self._end(subscription, "logged out")

    def _check(self, subscription: Revocable, account: AccountView, now: float) -> None:
        credential = subscription.credential
        if credential is not None and (reason := void_reason(account, credential, now)):
            self._end(subscription, reason)

    def _end(self, subscription: Revocable, reason: str) -> None:
        if not subscription.ended.is_set():
            self.revoked += 1
            subscription.end(REVOKED, reason)
