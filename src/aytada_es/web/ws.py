"""`WS /ws/videos`: a snapshot (or the changes after `?after=P`), then each change as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..domain.errors import AytadaError, BadInput, Unauthenticated
from ..parsing import whole_number
from .auth import Principal, authenticate, require_same_origin
from .context import Web, web_of
from .errors import error_response
from .hub import RESYNC, Ended, Subscription

log = logging.getLogger(__name__)
SERVER_ERROR = 1011


def _after(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("after")
    if raw is None or raw == "":
        return None
    after = whole_number(raw)
    if after is None:
        raise BadInput("bad resume position", {"after": "a position: a whole number, 0 or more"})
    return after


def opening(
    web: Web, owner_id: str, after: int | None, epoch: str | None = None
) -> tuple[list[str], int]:
    """The first messages of a connection and the position they bring the client to.

    `?after=P` gets the owner's changes after P, when the feed still holds all of them, there
    are not too many, and `?epoch=`, if given, is the current one; otherwise a snapshot.
    """
    videos = web.read_models.videos
    if epoch is not None and epoch != web.read_models.epoch():
        after = None  # positions of an older generation's feed: start afresh
    if after is not None:
        position = videos.position()
        oldest = videos.oldest_change_position()
        held_from = position if oldest is None else oldest - 1
        if held_from <= after <= position:
            limit = web.options.backlog_limit
            changes = web.hub.feed.of_owner_after(owner_id, after, limit + 1)
            if len(changes) <= limit:
                messages = [json.dumps(c.message(), separators=(",", ":")) for c in changes]
                return messages, max([after, *(c.position for c in changes)])
    epoch_read, position, cards = videos.listing(owner_id)
    snapshot = {"type": "snapshot", "position": position, "videos": cards, "epoch": epoch_read}
    return [json.dumps(snapshot, separators=(",", ":"))], position


async def videos_socket(websocket: WebSocket) -> None:
    web = web_of(websocket)
    with contextlib.ExitStack() as places:
        try:
            # Taken before anything is awaited: a full process refuses at once (503).
            places.enter_context(web.sockets.place())
            principal = await run_in_threadpool(authenticate, websocket)
            if principal.by_cookie:
                require_same_origin(websocket)  # no cross-site WebSocket hijacking
            after = _after(websocket)
            epoch = websocket.query_params.get("epoch")
            places.enter_context(web.sockets.account_place(str(principal.account_id)))
        except AytadaError as e:
            await websocket.send_denial_response(error_response(e))
            return
        await _push(websocket, web, principal, after, epoch)


async def _push(
    websocket: WebSocket, web: Web, principal: Principal, after: int | None, epoch: str | None
) -> None:
    """Accept, send the opening messages, then every change until the client or server leaves."""
    # Subscribed before the snapshot is read: nothing committed meanwhile can be missed, and what
    # the snapshot already holds is dropped by position.
    with web.hub.subscription(str(principal.account_id), principal.credential) as live:
        if live.ended.is_set():  # revoked while the handshake ran
            await websocket.send_denial_response(error_response(Unauthenticated(live.close_reason)))
            return
        await websocket.accept()
        try:
            owner = str(principal.account_id)
            messages, last = await run_in_threadpool(opening, web, owner, after, epoch)
            for text in messages:
                await websocket.send_text(text)

            async def snapshot() -> tuple[list[str], int]:
                return await run_in_threadpool(opening, web, owner, None)

            await _follow(websocket, live, last, web.options.close_timeout_s, snapshot)
        except WebSocketDisconnect:
            return
        except Exception:
            log.exception("live push to %s failed", principal.actor)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await websocket.close(SERVER_ERROR)


async def _follow(
    websocket: WebSocket,
    live: Subscription,
    last: int,
    close_timeout: float,
    snapshot: Callable[[], Awaitable[tuple[list[str], int]]],
) -> None:
    """Send live changes after `last` until the client leaves or the subscription ends; on a
    resync, a new snapshot and the changes after it."""

    async def send() -> None:
        nonlocal last
        while True:
            position, text = await live.next()
            if position == RESYNC:
                await websocket.send_text(text)
                messages, last = await snapshot()
                for message in messages:
                    await websocket.send_text(message)
            elif position > last:
                await websocket.send_text(text)
                last = position

    sending = asyncio.create_task(send(), name="ws:send")
    receiving = asyncio.create_task(_until_gone(websocket), name="ws:receive")
    # Ending the subscription stops the sender even while a send waits on a full socket.
    live.on_end = sending.cancel
    tasks = (sending, receiving)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        live.on_end = None
    if receiving.done() and not receiving.cancelled() and receiving.exception() is None:
        return  # the client left
    failure = next(
        (
            r
            for r in results
            if isinstance(r, BaseException)
            and not isinstance(r, asyncio.CancelledError | Ended | WebSocketDisconnect)
        ),
        None,
    )
    if failure is not None:
        raise failure
    if live.ended.is_set():
        await _close(websocket, live.close_code, live.close_reason, close_timeout)


async def _until_gone(websocket: WebSocket) -> None:
    # Clients have nothing to say; reading notices that they left (or that the server stops).
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, code: int, reason: str, timeout_s: float) -> None:
    """Send a close frame; a client that reads nothing may never take it: wait only so long."""
    closing = asyncio.create_task(websocket.close(code, reason), name="ws:close")
    gone = asyncio.create_task(_until_gone(websocket), name="ws:gone")
    try:
        await asyncio.wait((closing, gone), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closing.cancel()
        gone.cancel()
        await asyncio.gather(closing, gone, return_exceptions=True)
