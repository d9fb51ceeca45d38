"""The WebSocket of docs/api.md: subscribe to sessions and receive every update, resumable by cursor.

Subscriptions share one upstream SessionService.WatchSession per session (gateway.fanout); one that resumes
from a cursor reads its own. A dropped upstream stream is reopened from the last cursor it delivered, so
the client sees every version once; the client resumes the same way after its own reconnect. Problems are
`error` events; the connection stays open, unless the client reads too slowly (closed with 1013)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect
from swap.session.v1 import session_pb2
from swap_runtime import context

from gateway import schemas, views
from gateway.auth import current_identity, identity_metadata
from gateway.backends import Backends
from gateway.errors import ApiError, dotted
from gateway.fanout import CHANNEL, Direct, Hub, Outbox, event, problem, resumed
from gateway.metrics import Metrics
from gateway.ratelimit import LimiterUnavailable

log = logging.getLogger(__name__)


class Resume(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    session_id: Annotated[str, Field(pattern=schemas.SESSION_ID_PATTERN)]
    cursor: Annotated[str, Field(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$")] = ""


class Release(BaseModel):
    """op "reveal": the maker's secret for a session in awaiting_secret (secret_mode maker)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    session_id: Annotated[str, Field(pattern=schemas.SESSION_ID_PATTERN)]
    secret: schemas.Hex32


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    op: str
    channel: str = CHANNEL
    args: Annotated[
        list[Annotated[str, Field(pattern=schemas.SESSION_ID_PATTERN)] | Resume | Release], Field(max_length=100)
    ] = []


class Connection:
    def __init__(self, ws: WebSocket, backends: Backends, hub: Hub, metrics: Metrics) -> None:
        self.ws = ws
        self.backends = backends
        self.hub = hub
        self.metrics = metrics
        self.max_subscriptions = backends.settings.ws_max_subscriptions
        self.outbox = Outbox(ws, backends.settings.ws_queue_messages, metrics, Direct.of(ws.scope))
        # session id -> the task reading a resumed subscription's own stream, or None for a member of the
        # session's shared feed.
        self.subscriptions: dict[str, asyncio.Task[None] | None] = {}

    def send(self, kind: str, args: list[Any]) -> None:
        self.outbox.put(event(kind, args))

    async def run(self) -> None:
        await self.ws.accept()
        self.metrics.ws_connections.inc()
        self.outbox.start()
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect" or self.outbox.dropped.is_set():
                    return
                text = message.get("text")
                if text is None:
                    raw: bytes = message.get("bytes") or b""
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        self.send("error", problem("INVALID_REQUEST", "messages must be UTF-8 JSON"))
                        continue
                if await self.over_limit():
                    continue
                await self.handle(text)
        except WebSocketDisconnect:
            return
        finally:
            for session_id in list(self.subscriptions):
                self._stop(session_id)
            self.metrics.ws_connections.dec()
            await self.outbox.close()

    async def over_limit(self) -> bool:
        """Every message counts against the tenant's rate limit, like a request: a client cannot do over one
        connection what the limit refuses it over HTTP. Past it the message is dropped with an error event."""
        identity = current_identity.get()
        if identity is None or not self.backends.limiter.enabled:
            return False
        try:
            retry_after = await self.backends.limiter.retry_after(identity.tenant, "GET")
        except LimiterUnavailable:
            return False  # a message is a read: the read policy lets it through when the limiter cannot count
        if retry_after is None:
            return False
        self.send("error", problem("RATE_LIMITED", f"rate limit exceeded; retry in {retry_after} s"))
        return True

    async def handle(self, text: str) -> None:
        try:
            raw = json.loads(text)
        except ValueError as err:
            self.send("error", problem("INVALID_REQUEST", f"malformed JSON: {err}"))
            return
        if isinstance(raw, dict) and raw.get("op") not in (None, "subscribe", "unsubscribe", "ping", "reveal"):
            self.send("error", problem("UNKNOWN_OP", f"unknown op {str(raw.get('op'))[:64]!r}"))
            return
        try:
            command = Command.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            field = dotted(first["loc"])
            self.send("error", problem("INVALID_REQUEST", f"{field}: {first['msg']}" if field else first["msg"]))
            return
        if command.channel != CHANNEL:
            self.send("error", problem("UNKNOWN_CHANNEL", f"unknown channel {command.channel[:64]!r}"))
            return
        releases = [a for a in command.args if isinstance(a, Release)]
        wrong = len(releases) != len(command.args) if command.op == "reveal" else bool(releases)
        if wrong:
            message = 'args: "reveal" takes {session_id, secret} objects, and only it'
            self.send("error", problem("INVALID_REQUEST", message))
            return
        if command.op == "ping":
            # (never a Release: those come only with "reveal", so no secret is echoed)
            self.send("pong", [a if isinstance(a, str) else a.model_dump() for a in command.args])
        elif command.op == "reveal":
            await self.reveal(releases)
        elif command.op == "subscribe":
            wanted = [a for a in command.args if not isinstance(a, Release)]
            await self.subscribe([a if isinstance(a, Resume) else Resume(session_id=a) for a in wanted])
        else:
            self.unsubscribe([a if isinstance(a, str) else a.session_id for a in command.args])

    async def reveal(self, releases: list[Release]) -> None:
        """Each secret to its session (docs/api.md, "Secret modes"); the reply is the session, or an error
        that never repeats the secret."""
        for release in releases:
            context.session_id.set(release.session_id)
            request = session_pb2.RevealSecretRequest(session_id=release.session_id, secret=release.secret)
            try:
                reply = await self.backends.call("session", self.backends.sessions.RevealSecret, request)
            except ApiError as err:
                self.send("error", problem(err.reason, f"session {release.session_id}: {err.message}"))
                continue
            self.send("revealed", [views.session(reply.session)])

    async def subscribe(self, wanted: list[Resume]) -> None:
        fresh = [w for w in wanted if w.session_id not in self.subscriptions or w.cursor]
        room = self.max_subscriptions - len(self.subscriptions)
        if len({w.session_id for w in fresh} - self.subscriptions.keys()) > room:
            limit = f"at most {self.max_subscriptions} sessions per connection"
            self.send("error", problem("TOO_MANY_SUBSCRIPTIONS", limit))
            return
        found = await asyncio.gather(*(self._exists(w.session_id) for w in fresh))
        started: list[str] = [w.session_id for w in wanted if w.session_id in self.subscriptions and not w.cursor]
        joins: list[str] = []
        for want, ok in zip(fresh, found, strict=True):
            if not ok:
                continue
            if want.session_id in self.subscriptions:
                self._stop(want.session_id)
            if want.cursor:
                context.session_id.set(want.session_id)
                task = asyncio.create_task(resumed(self.backends.sessions, want.session_id, want.cursor, self))
                self.subscriptions[want.session_id] = task
            else:
                self.subscriptions[want.session_id] = None
                joins.append(want.session_id)
            self.metrics.ws_subscriptions.inc()
            started.append(want.session_id)
        if started or not wanted:
            self.send("subscribed", started)
        for session_id in joins:  # after the acknowledgement: a running feed hands its latest update at once
            self.hub.join(identity_metadata(), session_id, self)

    async def _exists(self, session_id: str) -> bool:
        try:
            context.session_id.set(session_id)
            await self.backends.get_session(session_id)
        except ApiError as err:
            self.send("error", problem(err.reason, f"session {session_id}: {err.message}"))
            return False
        return True

    def _stop(self, session_id: str) -> None:
        """Ends a subscription without a word to the client."""
        if session_id not in self.subscriptions:
            return
        task = self.subscriptions.pop(session_id)
        if task is None:
            self.hub.leave(identity_metadata(), session_id, self)
        else:
            task.cancel()
        self.metrics.ws_subscriptions.dec()

    def unsubscribe(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            self._stop(session_id)
        self.send("unsubscribed", session_ids)

    def feed_ended(self, session_id: str, error: list[dict[str, str]] | None) -> None:
        """The session ended (or its stream failed for good): the client gets the error if any, then
        `unsubscribed`. A resumed subscription's task that was replaced meanwhile is no longer this one's."""
        if session_id not in self.subscriptions:
            return
        own = self.subscriptions[session_id]
        if own is not None and own is not asyncio.current_task():
            return
        del self.subscriptions[session_id]
        self.metrics.ws_subscriptions.dec()
        if error is not None:
            self.send("error", error)
        self.send("unsubscribed", [session_id])
