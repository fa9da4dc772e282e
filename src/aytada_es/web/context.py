"""What every request handler reaches: the system's service, the live hub, the sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from starlette.requests import HTTPConnection

from ..adapters.assets import AssetStore
from ..adapters.sessions import Sessions
from ..application import Studio
from ..projections import ReadModels
from ..service import Service
from .body import MAX_BODY
from .quota import SocketQuota
from .throttle import RateLimit
from .video_lists import VideoLists

if TYPE_CHECKING:
    from .hub import Hub


@dataclass(frozen=True)
class WebOptions:
    """How the web edge behaves; the defaults are the service's."""

    max_body: int = MAX_BODY
    # Messages a WebSocket may have waiting; a client further behind is closed (4008).
    queue_limit: int = 256
    # More missed changes than this on `?after=` answer a snapshot instead.
    backlog_limit: int = 1000
    # "projections": pushed from this process's projection runner; "feed": read from the
    # change-feed table every `feed_poll_s` (web processes without projections); None: choose.
    live: Literal["projections", "feed"] | None = None
    feed_poll_s: float = 0.02
    # Sessions' lifetime and idle limit; None: the settings' (AYTADA_SESSION_TTL_S, _IDLE_S).
    session_ttl_s: int | None = None
    session_idle_s: int | None = None
    # How often the hub looks for rotated tokens, disabled accounts and logouts.
    revocation_check_s: float = 1.0
    # Seconds a slow client has to take its close frame before the connection is dropped.
    close_timeout_s: float = 10.0
    # WebSockets this process holds at once; None: what its file-descriptor limit allows
    # (quota.descriptor_budget).
    max_sockets: int | None = None
    # How long a read with `?min_position=` waits for the read models before answering 503.
    position_wait_s: float = 5.0
    # How often such a read looks at the read models' positions besides being woken by this
    # process's projection runner; None: 1 s where this process runs the projections (a
    # safety net), 0.05 s where another process applies them (the only way to learn of it).
    position_poll_s: float | None = None


@dataclass
class Web:
    """The web edge's share of the system, kept in `app.state.web`."""

    service: Service
    hub: Hub
    sessions: Sessions
    options: WebOptions
    expected_parts: set[str] = field(default_factory=set)
    video_lists: VideoLists = field(init=False)
    sockets: SocketQuota = field(init=False)
    logins: RateLimit = field(init=False)  # per client address
    writes: RateLimit = field(init=False)  # per account

    @property
    def studio(self) -> Studio:
        return self.service.studio

    @property
    def read_models(self) -> ReadModels:
        return self.service.read_models

    @property
    def assets(self) -> AssetStore:
        return self.service.assets


def web_of(conn: HTTPConnection) -> Web:
    """The web edge of the app serving this request."""
    web = conn.app.state.web
    assert isinstance(web, Web)
    return web
