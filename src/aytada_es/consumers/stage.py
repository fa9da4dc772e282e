"""The stage extension point: what a stage declares, and what handling one message comes to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..domain.failures import FailureCode
from ..kafka.envelope import Envelope
from ..providers.base import PermanentProviderError, ProviderError, RateLimited

if TYPE_CHECKING:
    from .context import StageContext


@dataclass(frozen=True)
class Done:
    """The message is handled, or there was nothing to do: its offset may be committed."""


@dataclass(frozen=True)
class RetryLater:
    """Not now: the runner tries the message again after a back-off, at least `after_s`."""

    reason: str
    code: FailureCode = FailureCode.PROVIDER_UNAVAILABLE
    after_s: float | None = None


@dataclass(frozen=True)
class Failed:
    """It cannot succeed: a billed stage records the failure, any other is dead-lettered."""

    code: FailureCode
    reason: str


Outcome = Done | RetryLater | Failed


class Stage(ABC):
    """A stage consumer: reacts to some event types of `aytada.project-events`.

    Declare, as class attributes:
    - `name`: unique, lowercase (`[a-z0-9-]`); its consumer group is `aytada.stage.<name>`;
    - `version`: of your stage's code; every generation record carries it;
    - `reacts_to`: the event types (docs/api.md §5) it handles; the runner passes over the rest
      without decoding them;
    - `records`: the asset kinds it stores, each with the label a person sees.

    Implement `handle`, which returns an `Outcome`: `Done()` (or None); `RetryLater(reason, code,
    after_s)` for a failure worth another try (the runner alone retries, with exponential
    back-off and jitter, at least `after_s` later); `Failed(code, reason)` when trying again
    cannot help. A message whose attempts run out, or that failed, goes to `give_up`; when that
    returns False (the default) the runner dead-letters it. The runner commits the offset only
    once `handle` (or `give_up`) returned, so the same event can come twice: act once (the
    billed bases below do that for you).

    For a billed step, subclass `AddOnStage` (consumers/addons.py) instead.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    reacts_to: ClassVar[frozenset[str]]
    records: ClassVar[Mapping[str, str]] = {}

    @abstractmethod
    async def handle(self, envelope: Envelope, ctx: StageContext) -> Outcome | None:
        """React to one event; None is `Done()`."""

    async def give_up(self, envelope: Envelope, failed: Failed, ctx: StageContext) -> bool:
        """Settle a message that cannot succeed; False lets the runner dead-letter it."""
        return False


def outcome_of(error: BaseException) -> RetryLater | Failed:
    """What a provider's error (or any other) means for the message being handled."""
    reason = f"{type(error).__name__}: {error}"
    if isinstance(error, RateLimited):
        return RetryLater(reason, FailureCode.RATE_LIMITED, error.retry_after_s)
    if isinstance(error, PermanentProviderError):
        return Failed(error.failure_code, reason)
    if isinstance(error, ProviderError):
        return RetryLater(reason, error.failure_code)
    return RetryLater(reason, FailureCode.INTERNAL)
