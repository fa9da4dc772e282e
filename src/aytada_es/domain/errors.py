"""The one exception hierarchy of aytada-es; the web edge translates it to HTTP.

AytadaError
 ├── ConfigError                 bad or missing configuration (fails loudly at start-up)
 ├── BackupRefused               a backup or restore that would not be whole: nothing changed
 ├── BadInput                    a request or message that does not validate (422)
 ├── NotFound                    (404)
 │    ├── ProjectNotFound        missing, or someone else's: the same answer
 │    ├── AccountNotFound
 │    ├── AssetNotFound
 │    └── WebhookNotFound        missing, deleted, or someone else's: the same answer
 ├── Forbidden                   authenticated, but the role may not do this (403)
 ├── Unauthenticated             no or bad credentials (401)
 │    └── TokenExpired           a token past its expiry
 ├── Conflict                    (409)
 │    ├── IllegalTransition      the command is not allowed from the project's status
 │    ├── AccountExists
 │    └── TooManyWebhooks        the user has as many webhook endpoints as allowed
 ├── InsufficientCredits         the balance does not cover the reservation (402)
 ├── TooManyRequests             over a rate limit or a quota (429), with when to try again
 └── ServiceUnavailable          a part of the system is down, or the process is full (503)
      └── NotYetApplied          the read models have not applied a position in time
"""

from __future__ import annotations


class AytadaError(Exception):
    """Base of every error aytada-es raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AytadaError):
    code = "bad_config"


class BackupRefused(AytadaError):
    code = "backup_refused"


class BadInput(AytadaError):
    code = "invalid_input"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        self.fields = fields or {}
        details = "; ".join(f"{name}: {problem}" for name, problem in self.fields.items())
        super().__init__(f"{message} ({details})" if details else message)


class NotFound(AytadaError):
    code = "not_found"


class ProjectNotFound(NotFound):
    def __init__(self, project_id: object) -> None:
        super().__init__(f"project {project_id} not found")
        self.project_id = project_id


class AccountNotFound(NotFound):
    def __init__(self, account: object) -> None:
        super().__init__(f"account {account} not found")


class AssetNotFound(NotFound):
    def __init__(self, asset_id: object) -> None:
        super().__init__(f"asset {asset_id} not found")


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: object) -> None:
        super().__init__(f"webhook {webhook_id} not found")


class Forbidden(AytadaError):
    code = "forbidden"


class Unauthenticated(AytadaError):
    code = "unauthenticated"


class TokenExpired(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("the token has expired")


class Conflict(AytadaError):
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, command: str, status: str) -> None:
        super().__init__(f"cannot {command} a project that is {status}")
        self.command = command
        self.status = status


class AccountExists(Conflict):
    code = "account_exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"an account named {name!r} already exists")


class TooManyWebhooks(Conflict):
    code = "too_many_webhooks"

    def __init__(self, limit: int) -> None:
        super().__init__(f"a user may have at most {limit} webhook endpoints; delete one first")


class InsufficientCredits(AytadaError):
    code = "insufficient_credits"

    def __init__(self, needed: int, balance: int) -> None:
        super().__init__(f"this step needs {needed} credits; the balance is {balance}")
        self.needed = needed
        self.balance = balance


class TooManyRequests(AytadaError):
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(AytadaError):
    code = "unavailable"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotYetApplied(ServiceUnavailable):
    code = "not_yet_applied"

    def __init__(self, position: int, waited_s: float, retry_after_s: int = 1) -> None:
        super().__init__(
            f"the read models have not applied position {position} after {waited_s:g} s;"
            " try again shortly",
            retry_after_s,
        )
        self.position = position
