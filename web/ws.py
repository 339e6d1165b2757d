"""WebSocket /ws?token=<JWT>: `lottery_drawn` to every client, a user's own
notifications to that user only, heartbeats, `resync` after the relay
reconnected (events may have been missed while it was away).

Two framings on one endpoint. A client that never subscribes gets this
project's frames, {"event": ..., "data": ...}. A client that sends the
platform's {"action": "subscribe", "channel": C} gets the platform's from then
on: {"channel": "gamification", "data": {"type": "lottery_drawn", ...}} while
subscribed to gamification, its own notifications always as {"channel":
"notifications", "data": {"type": "notification", "payload": {...}}} (the
platform delivers personal messages whatever the subscriptions), and control
frames {"type": "subscribed" | "unsubscribed" | "pong" | "error" | "ping" | "resync"}.

One dedicated autocommit connection per process LISTENs on lottery_events
(psycopg's notifies() holds that connection, so it is never a pool's) and
fans out through a bounded asyncio queue per client. A client whose queue is
full gets `stall_seconds` to make room: a burst (thousands of notifications in
one transaction arrive at once) goes out at the pace of the clients that read,
and a client that does not read is dropped, so memory stays bounded and the
relay is held back at most `stall_seconds` by it.

The same window bounds every send: a client that does not read fills its
socket, and the server's send then waits for room that never comes. A send (a
frame, a ping or the close) that has not completed within `stall_seconds` drops
the client and aborts its connection (web.server's protocol gives the app that
abort, as the scope extension ABORT_KEY): its buffers are freed at once rather
than when the client leaves.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import defaultdict
from typing import Iterable, NamedTuple

import psycopg
from starlette.websockets import WebSocket

from web.config import Settings
from web.errors import ApiError, error_response
from web.server import ABORT_KEY, DROPPED_KEY

log = logging.getLogger("web.ws")

# Frames serialised as every HTTP answer is (Starlette's JSONResponse): compact, UTF-8.
_dumps = functools.partial(json.dumps, ensure_ascii=False, allow_nan=False, separators=(",", ":"))

CHANNEL = "lottery_events"
DRAWS, NOTIFICATIONS = "gamification", "notifications"   # the platform's channel names
CHANNELS = frozenset({DRAWS, NOTIFICATIONS})


class Frames(NamedTuple):
    """One message rendered once in each framing. `channel` is the platform channel a
    subscribed client must have chosen; None: every platform-framing client gets it."""
    ours: str
    platform: str
    channel: str | None = None


def _control(kind: str) -> Frames:
    return Frames(_dumps({"event": kind}), _dumps({"type": kind}))


PING, RESYNC = _control("ping"), _control("resync")


class Close:
    """Queue item telling a client's sender to close the socket."""

    def __init__(self, code: int, reason: str):
        self.code, self.reason = code, reason


OVERFLOW = Close(1013, "too slow: message queue overflowed")
SHUTDOWN = Close(1001, "server shutting down")


class Client:
    __slots__ = ("user_id", "queue", "closed", "dropped", "channels")

    def __init__(self, user_id: str, queue_size: int):
        self.user_id = user_id
        self.queue: asyncio.Queue[str | Close] = asyncio.Queue(maxsize=queue_size)
        self.closed = False
        self.dropped = False
        self.channels: frozenset[str] | None = None  # None until it speaks the platform's protocol

    def frame(self, frames: Frames) -> str | None:
        """What this client gets of `frames`: None when it is not subscribed to that channel."""
        if self.channels is None:
            return frames.ours
        return frames.platform if frames.channel is None or frames.channel in self.channels else None

    def answer(self, text: str | None) -> str | None:
        """The reply to a message of the platform's protocol, None to anything else
        (ignored, as this project's framing always has)."""
        try:
            message = json.loads(text) if text else None
        except (ValueError, RecursionError):
            return None
        if not isinstance(message, dict) or "action" not in message:
            return None
        action, channel = message["action"], message.get("channel")
        if action in ("subscribe", "unsubscribe"):
            if not (isinstance(channel, str) and channel in CHANNELS):
                return _dumps({"type": "error", "message": f"Invalid channel: {str(channel)[:64]}"})
            chosen = self.channels or frozenset()
            self.channels = (chosen | {channel}) if action == "subscribe" else (chosen - {channel})
            return _dumps({"type": action + "d", "channel": channel})
        if action == "ping":
            return _dumps({"type": "pong"})
        return _dumps({"type": "error", "message": f"Unknown action: {str(action)[:64]}"})


class Hub:
    """Connected clients by user. Used from the event loop only: no locks."""

    def __init__(self, queue_size: int, stall_seconds: float = 2.0):
        self.queue_size, self.stall_seconds = queue_size, stall_seconds
        self.by_user: dict[str, set[Client]] = defaultdict(set)
        self.dropped = 0

    def register(self, user_id: str) -> Client:
        client = Client(user_id, self.queue_size)
        self.by_user[user_id].add(client)
        return client

    def unregister(self, client: Client) -> None:
        client.closed = True
        _empty(client.queue)  # wakes a delivery waiting for room in it
        clients = self.by_user.get(client.user_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.by_user[client.user_id]

    def clients(self) -> list[Client]:
        return [c for group in self.by_user.values() for c in group]

    async def broadcast(self, frames: Frames) -> None:
        await self._deliver(self.clients(), frames)

    async def send_to(self, user_id: str, frames: Frames) -> None:
        await self._deliver(list(self.by_user.get(user_id, ())), frames)

    async def reply(self, client: Client, text: str) -> None:
        await self._deliver([client], Frames(text, text))

    def close_all(self, close: Close = SHUTDOWN) -> None:
        for client in self.clients():
            self._close(client, close)

    async def _deliver(self, clients: Iterable[Client], frames: Frames) -> None:
        """Queue the frame of each client; those whose queue is full all get the same
        stall_seconds to take one message out of it, and the ones that did not are dropped."""
        waiting: dict[asyncio.Task, Client] = {}
        for client in clients:
            frame = None if client.closed else client.frame(frames)
            if frame is None:
                continue
            try:
                client.queue.put_nowait(frame)
            except asyncio.QueueFull:
                waiting[asyncio.create_task(client.queue.put(frame))] = client
        if not waiting:
            return
        _, stalled = await asyncio.wait(waiting, timeout=self.stall_seconds)
        for task in stalled:
            task.cancel()
        await asyncio.gather(*stalled, return_exceptions=True)
        for task in stalled:
            self.drop(waiting[task], "queue full")
            self._close(waiting[task], OVERFLOW)

    def drop(self, client: Client, why: str) -> None:
        """Count and log a client dropped as too slow, once whichever way it was found out."""
        if client.dropped:
            return
        client.dropped = True
        self.dropped += 1
        log.warning("dropping WebSocket client of user %r: %s for %.1fs", client.user_id, why, self.stall_seconds)

    def _close(self, client: Client, close: Close) -> None:
        self.unregister(client)  # empties the queue: room for the close order
        client.queue.put_nowait(close)


def _empty(queue: asyncio.Queue) -> None:
    while not queue.empty():
        queue.get_nowait()


def _frames(event: str, data, channel: str | None) -> Frames:
    ours = _dumps({"event": event, "data": data})
    if channel is None:  # personal: the platform's direct message shape
        return Frames(ours, _dumps({"channel": NOTIFICATIONS, "data": {"type": event, "payload": data}}))
    return Frames(ours, _dumps({"channel": channel, "data": {"type": event, **data}}), channel)


class Relay:
    """LISTEN lottery_events on its own connection; reconnects with backoff forever."""

    def __init__(self, url: str, hub: Hub, settings: Settings):
        self.url, self.hub, self.settings = url, hub, settings
        self.state = "starting"
        self.reconnects = 0

    async def run(self) -> None:
        delay, connected_before = 0.2, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=self.settings.connect_timeout,
                        application_name="lottery-web-listen") as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.state, delay = "listening", 0.2
                    if connected_before:
                        self.reconnects += 1
                        await self.hub.broadcast(RESYNC)
                    connected_before = True
                    log.info("relay listening on %s", CHANNEL)
                    while True:
                        async for note in conn.notifies(timeout=self.settings.relay_probe_seconds):
                            await self.dispatch(note.payload)
                            # A burst arrives already read: let requests in between its messages.
                            await asyncio.sleep(0)
                        # Quiet for a while: a dead peer only shows when we talk to it.
                        await asyncio.wait_for(conn.execute("SELECT 1"), timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the relay must outlive any database trouble
                log.warning("relay lost its connection (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, delay)
            self.state = "reconnecting"
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.relay_max_backoff)

    async def dispatch(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            event, data = message["event"], message.get("data")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed %s payload", CHANNEL)
            return
        if event == "lottery_drawn" and isinstance(data, dict):
            await self.hub.broadcast(_frames(event, data, DRAWS))
        elif event == "notification" and isinstance(message.get("userId"), str):
            await self.hub.send_to(message["userId"], _frames(event, data, None))
        # Anything else may be private to someone: never broadcast it.


async def _sent(websocket: WebSocket, client: Client, hub: Hub, send) -> bool:
    """Await one send for at most the drop window. False when it did not complete: the
    client's socket is full (it does not read), so the client is dropped and its
    connection aborted, buffers and all (under a server without web.server's protocol
    the handler ends and the connection closes once the client reads or leaves)."""
    try:
        await asyncio.wait_for(send, hub.stall_seconds)
        return True
    except TimeoutError:
        hub.drop(client, "a send blocked")
        extensions = websocket.scope.setdefault("extensions", {})
        extensions[DROPPED_KEY] = f"too slow: a send blocked for {hub.stall_seconds:g}s"
        abort = extensions.get(ABORT_KEY)
        if abort is not None:
            abort()
        return False


async def _send_loop(websocket: WebSocket, client: Client, hub: Hub, heartbeat: float, expires_at: float) -> None:
    while True:
        left = expires_at - time.time()
        if left <= 0:
            await _sent(websocket, client, hub, websocket.close(code=1008, reason="token expired"))
            return
        try:
            item = await asyncio.wait_for(client.queue.get(), timeout=min(heartbeat, left))
        except TimeoutError:
            item = client.frame(PING)
        if isinstance(item, Close):
            await _sent(websocket, client, hub, websocket.close(code=item.code, reason=item.reason))
            return
        if not await _sent(websocket, client, hub, websocket.send_text(item)):
            return


async def _receive_loop(websocket: WebSocket, client: Client, hub: Hub) -> None:
    # Keep reading: it is how a client that left is noticed, and how uvicorn's
    # shutdown reaches this handler. Only the platform's actions get an answer.
    while (message := await websocket.receive())["type"] != "websocket.disconnect":
        reply = client.answer(message.get("text"))
        if reply is not None:
            await hub.reply(client, reply)


async def websocket_endpoint(websocket: WebSocket) -> None:
    state = websocket.state
    try:
        user = state.verifier.verify(websocket.query_params.get("token"))
    except ApiError as exc:
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(error_response(exc.status, exc.code, exc.message, exc.hint))
        else:
            await websocket.close(code=1008, reason=exc.message[:120])  # a close reason is <= 123 bytes
        return
    await websocket.accept()
    client = state.hub.register(user.id)
    tasks = {asyncio.create_task(_send_loop(websocket, client, state.hub, state.settings.ws_heartbeat_seconds,
                                            user.expires_at)),
             asyncio.create_task(_receive_loop(websocket, client, state.hub))}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        state.hub.unregister(client)
        for task in tasks:
            task.cancel()
        # A send to a client that is gone fails: that is just the end of it.
        await asyncio.gather(*tasks, return_exceptions=True)
