"""WebSocket fan-out: one upstream WatchSession per watched session, however many subscribers follow it.

A `Feed` reads SessionService.WatchSession for one session on behalf of one identity (tenant and role: a
stream never serves another tenant), encodes each update once as the `update` event and hands the same text
to every subscriber's `Outbox`. A subscriber that joins a running feed first gets the latest update the feed
delivered (the session as it stands), then every later one. A dropped upstream stream is reopened from the
last cursor delivered, so subscribers see every version once; when the session ends (or the stream fails
for good) every subscriber is told and the feed closes. The feed also closes when its last subscriber leaves.

Each connection sends through an `Outbox`: a bounded queue drained by one writer task. Handing a message
over never waits, so one slow or stalled client never delays the others; a client that lets its queue fill
is closed with code 1013 and reason `SLOW_CONSUMER` (it may reconnect and resume from its last cursor).
When the connection's queue is empty and its socket takes data, a message skips the queue: its frame, built
once per update for every subscriber, goes straight to the connection's transport (`Direct`), which spares
1,000 subscribers a task switch and the ASGI send chain each.
A subscription with a cursor (a client resuming) reads its own stream from that cursor, as replaying older
versions is for that client alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import grpc
from starlette.types import Scope
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_runtime import context
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from gateway import views
from gateway.backends import call_metadata
from gateway.errors import from_rpc_error
from gateway.metrics import Metrics
from gateway.middleware import TRANSPORT_SEND

log = logging.getLogger(__name__)

CHANNEL = "session"
SLOW_CONSUMER_CODE = 1013
SLOW_CONSUMER = "SLOW_CONSUMER"
# Reopening a dropped upstream stream: doubling pauses up to the cap, given up after the budget.
_RETRY_FIRST_S = 0.2
_RETRY_CAP_S = 3.0
_RETRY_BUDGET_S = 30.0
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}
# Bytes a connection's transport may hold unsent and still take a frame directly; past it, messages queue.
_DIRECT_BUFFER_LIMIT = 64 * 1024


def event(kind: str, args: list[Any]) -> str:
    """One WebSocket message; `timestamp` is when the gateway encoded it (ms since the epoch)."""
    return json.dumps({"event": kind, "channel": CHANNEL, "args": args, "timestamp": int(time.time() * 1000)})


def problem(reason: str, message: str) -> list[dict[str, str]]:
    return [{"reason": reason, "message": message}]


class Encoded:
    """A message and, built on first use and then shared by every subscriber, its WebSocket text frame."""

    __slots__ = ("_frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            # A server's frame is not masked; no extension applies (Direct is only used without any).
            self._frame = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._frame


class Direct:
    """A connection's socket below the ASGI layer: whole text frames written to the transport of uvicorn's
    websockets (sans-I/O) protocol, which frames each ASGI send the same way. Used only while the connection
    is open, not closing, not paused by flow control and with little unsent; otherwise `write` refuses and the
    message takes the queue."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @staticmethod
    def of(scope: Scope) -> Direct | None:
        """The direct path of a WebSocket scope, when its server is uvicorn's websockets (sans-I/O) protocol
        and no extension (per-message deflate) was negotiated."""
        protocol = getattr(scope.get(TRANSPORT_SEND), "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
            return None
        return Direct(protocol)

    def write(self, frame: bytes) -> bool:
        protocol = self._protocol
        transport = protocol.transport
        if (
            not protocol.handshake_complete
            or protocol.close_sent
            or protocol.disconnected
            or not protocol.writable.is_set()
            or protocol.conn.state is not State.OPEN
            or transport.is_closing()
            or transport.get_write_buffer_size() > _DIRECT_BUFFER_LIMIT
        ):
            return False
        transport.write(frame)
        return True


class Outbox:
    """A connection's outgoing messages, in order: straight to the socket while nothing waits before them and
    the socket takes data (`direct`), else through a bounded queue drained by one writer task."""

    def __init__(self, ws: WebSocket, limit: int, metrics: Metrics, direct: Direct | None = None) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=limit)
        self._metrics = metrics
        self._direct = direct
        self._sent_direct = metrics.ws_sent.labels("direct")
        self._sent_queued = metrics.ws_sent.labels("queued")
        self._writing = False  # the writer task holds a message it has not finished sending
        self.dropped = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write())

    def put(self, message: str | Encoded) -> None:
        """Sends or queues `message` without waiting; a full queue drops the client."""
        if self.dropped.is_set():
            return
        idle = self._writer is not None and not (self._writing or self._closed) and self._queue.empty()
        if self._direct is not None and idle:
            frame = (message if isinstance(message, Encoded) else Encoded(message)).frame
            if self._direct.write(frame):
                self._sent_direct.inc()
                return
        text = message.text if isinstance(message, Encoded) else message
        try:
            self._queue.put_nowait(text)
            self._sent_queued.inc()
        except asyncio.QueueFull:
            log.warning("slow WebSocket client dropped", extra={"queued": self._queue.qsize()})
            self._metrics.ws_dropped.inc()
            self.dropped.set()
            # Closing ends the connection's receive loop too (the disconnect follows the close).
            self._closer = asyncio.create_task(self.close())

    async def _write(self) -> None:
        while True:
            text = await self._queue.get()
            if self._ws.application_state is not WebSocketState.CONNECTED:
                continue
            self._writing = True
            try:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await self._ws.send_text(text)
            finally:
                self._writing = False

    async def close(self) -> None:
        """Stops the writer; a dropped client is then closed with SLOW_CONSUMER (never waiting on it long)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self.dropped.is_set() and self._ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(code=SLOW_CONSUMER_CODE, reason=SLOW_CONSUMER), 1.0)


class Member(Protocol):
    """A subscriber of feeds: a connection."""

    outbox: Outbox

    def feed_ended(self, session_id: str, error: list[dict[str, str]] | None) -> None: ...


OnUpdate = Callable[[str], None]  # the encoded update event


async def follow(
    sessions: session_pb2_grpc.SessionServiceStub,
    session_id: str,
    cursor: str,
    deliver: OnUpdate,
) -> list[dict[str, str]] | None:
    """Reads every update of one session from `cursor` on and hands each, encoded once, to `deliver`, until
    the session ends (None) or the stream fails for good (the error event's args). A dropped stream is
    reopened from the last cursor delivered."""
    context.session_id.set(session_id)
    pause, gave_up_at = _RETRY_FIRST_S, time.monotonic() + _RETRY_BUDGET_S
    while True:
        call = sessions.WatchSession(
            session_pb2.WatchSessionRequest(session_id=session_id, cursor=cursor), metadata=call_metadata()
        )
        try:
            async for update in call:
                cursor = update.cursor
                pause, gave_up_at = _RETRY_FIRST_S, time.monotonic() + _RETRY_BUDGET_S
                session = views.session(update.session)
                deliver(event("update", [{"cursor": cursor, "session": session}]))
            return None
        except grpc.aio.AioRpcError as err:
            if err.code() in _RETRYABLE and time.monotonic() + pause < gave_up_at:
                log.info("watch dropped; reopening", extra={"code": err.code().name, "cursor": cursor})
                await asyncio.sleep(pause)
                pause = min(pause * 2, _RETRY_CAP_S)
                continue
            mapped = from_rpc_error(err, "session")
            return problem(mapped.reason, f"session {session_id}: {mapped.message}")
        finally:
            call.cancel()


class Feed:
    """One session's upstream stream and its subscribers."""

    def __init__(self, hub: Hub, key: tuple[Any, ...], session_id: str) -> None:
        self.hub = hub
        self.key = key
        self.session_id = session_id
        self.members: dict[Member, None] = {}  # insertion-ordered set
        self.latest: Encoded | None = None
        self.task: asyncio.Task[None] | None = None

    def deliver(self, text: str) -> None:
        self.latest = update = Encoded(text)
        for member in self.members:
            member.outbox.put(update)

    async def run(self) -> None:
        self.hub.metrics.ws_upstreams.inc()
        error: list[dict[str, str]] | None
        try:
            error = await follow(self.hub.sessions, self.session_id, "", self.deliver)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watch failed")
            error = problem("INTERNAL", f"session {self.session_id}: internal error")
        finally:
            self.hub.metrics.ws_upstreams.dec()
            self.hub.forget(self)
        for member in list(self.members):
            member.feed_ended(self.session_id, error)
        self.members.clear()


class Hub:
    """The gateway's feeds, by (identity, session id)."""

    def __init__(self, sessions: session_pb2_grpc.SessionServiceStub, metrics: Metrics) -> None:
        self.sessions = sessions
        self.metrics = metrics
        self._feeds: dict[tuple[Any, ...], Feed] = {}

    def join(self, identity: tuple[tuple[str, str], ...], session_id: str, member: Member) -> None:
        """Subscribes `member` to the session's feed, starting one when none runs (in the caller's context,
        whose identity the upstream call carries)."""
        key = (identity, session_id)
        feed = self._feeds.get(key)
        if feed is None:
            feed = Feed(self, key, session_id)
            self._feeds[key] = feed
            feed.task = asyncio.create_task(feed.run())
        elif feed.latest is not None:
            member.outbox.put(feed.latest)
        feed.members[member] = None

    def leave(self, identity: tuple[tuple[str, str], ...], session_id: str, member: Member) -> None:
        feed = self._feeds.get((identity, session_id))
        if feed is None:
            return
        feed.members.pop(member, None)
        if not feed.members and feed.task is not None:
            self.forget(feed)
            feed.task.cancel()

    def forget(self, feed: Feed) -> None:
        if self._feeds.get(feed.key) is feed:
            del self._feeds[feed.key]

    async def close(self) -> None:
        tasks = [feed.task for feed in self._feeds.values() if feed.task is not None]
        self._feeds.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def feeds(self) -> int:
        return len(self._feeds)


def resumed(
    sessions: session_pb2_grpc.SessionServiceStub, session_id: str, cursor: str, member: Member
) -> Coroutine[Any, Any, None]:
    """A subscription resuming from `cursor`: its own stream, delivered to `member` alone."""

    async def run() -> None:
        error: list[dict[str, str]] | None
        try:
            error = await follow(sessions, session_id, cursor, member.outbox.put)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watch failed")
            error = problem("INTERNAL", f"session {session_id}: internal error")
        member.feed_ended(session_id, error)

    return run()
