"""The WebSocket of docs/api.md: subscribe to sessions and receive every update, resumable by cursor.

Each subscription is one task reading SessionService.WatchSession. A dropped upstream stream is reopened
from the last cursor it delivered, so the client sees every version once; the client resumes the same
way after its own reconnect. Problems are `error` events; the connection stays open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Annotated, Any

import grpc
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from swap.session.v1 import session_pb2
from swap_runtime import context

from gateway import schemas, views
from gateway.auth import current_identity
from gateway.backends import Backends, call_metadata
from gateway.errors import ApiError, dotted, from_rpc_error
from gateway.metrics import Metrics
from gateway.ratelimit import LimiterUnavailable

log = logging.getLogger(__name__)

CHANNEL = "session"
# Reopening a dropped upstream stream: doubling pauses up to the cap, given up after the budget.
_RETRY_FIRST_S = 0.2
_RETRY_CAP_S = 3.0
_RETRY_BUDGET_S = 30.0
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}


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


def event(kind: str, args: list[Any]) -> str:
    return json.dumps({"event": kind, "channel": CHANNEL, "args": args, "timestamp": int(time.time() * 1000)})


def problem(reason: str, message: str) -> list[dict[str, str]]:
    return [{"reason": reason, "message": message}]


class Connection:
    def __init__(self, ws: WebSocket, backends: Backends, metrics: Metrics) -> None:
        self.ws = ws
        self.backends = backends
        self.metrics = metrics
        self.max_subscriptions = backends.settings.ws_max_subscriptions
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, kind: str, args: list[Any]) -> None:
        async with self._send_lock:
            if self.ws.application_state is not WebSocketState.CONNECTED:
                return
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(event(kind, args))

    async def run(self) -> None:
        await self.ws.accept()
        self.metrics.ws_connections.inc()
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    raw: bytes = message.get("bytes") or b""
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        await self.send("error", problem("INVALID_REQUEST", "messages must be UTF-8 JSON"))
                        continue
                if await self.over_limit():
                    continue
                await self.handle(text)
        except WebSocketDisconnect:
            return
        finally:
            for task in self.subscriptions.values():
                task.cancel()
            await asyncio.gather(*self.subscriptions.values(), return_exceptions=True)
            self.metrics.ws_subscriptions.dec(len(self.subscriptions))
            self.subscriptions.clear()
            self.metrics.ws_connections.dec()

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
        await self.send("error", problem("RATE_LIMITED", f"rate limit exceeded; retry in {retry_after} s"))
        return True

    async def handle(self, text: str) -> None:
        try:
            raw = json.loads(text)
        except ValueError as err:
            await self.send("error", problem("INVALID_REQUEST", f"malformed JSON: {err}"))
            return
        if isinstance(raw, dict) and raw.get("op") not in (None, "subscribe", "unsubscribe", "ping", "reveal"):
            await self.send("error", problem("UNKNOWN_OP", f"unknown op {str(raw.get('op'))[:64]!r}"))
            return
        try:
            command = Command.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            field = dotted(first["loc"])
            await self.send("error", problem("INVALID_REQUEST", f"{field}: {first['msg']}" if field else first["msg"]))
            return
        if command.channel != CHANNEL:
            await self.send("error", problem("UNKNOWN_CHANNEL", f"unknown channel {command.channel[:64]!r}"))
            return
        releases = [a for a in command.args if isinstance(a, Release)]
        wrong = len(releases) != len(command.args) if command.op == "reveal" else bool(releases)
        if wrong:
            await self.send(
                "error", problem("INVALID_REQUEST", 'args: "reveal" takes {session_id, secret} objects, and only it')
            )
            return
        if command.op == "ping":
            # (never a Release: those come only with "reveal", so no secret is echoed)
            await self.send("pong", [a if isinstance(a, str) else a.model_dump() for a in command.args])
        elif command.op == "reveal":
            await self.reveal(releases)
        elif command.op == "subscribe":
            wanted = [a for a in command.args if not isinstance(a, Release)]
            await self.subscribe([a if isinstance(a, Resume) else Resume(session_id=a) for a in wanted])
        else:
            await self.unsubscribe([a if isinstance(a, str) else a.session_id for a in command.args])

    async def reveal(self, releases: list[Release]) -> None:
        """Each secret to its session (docs/api.md, "Secret modes"); the reply is the session, or an error
        that never repeats the secret."""
        for release in releases:
            context.session_id.set(release.session_id)
            request = session_pb2.RevealSecretRequest(session_id=release.session_id, secret=release.secret)
            try:
                reply = await self.backends.call("session", self.backends.sessions.RevealSecret, request)
            except ApiError as err:
                await self.send("error", problem(err.reason, f"session {release.session_id}: {err.message}"))
                continue
            await self.send("revealed", [views.session(reply.session).model_dump(mode="json")])

    async def subscribe(self, wanted: list[Resume]) -> None:
        fresh = [w for w in wanted if w.session_id not in self.subscriptions or w.cursor]
        room = self.max_subscriptions - len(self.subscriptions)
        if len({w.session_id for w in fresh} - self.subscriptions.keys()) > room:
            await self.send(
                "error", problem("TOO_MANY_SUBSCRIPTIONS", f"at most {self.max_subscriptions} sessions per connection")
            )
            return
        found = await asyncio.gather(*(self._exists(w.session_id) for w in fresh))
        started: list[str] = [w.session_id for w in wanted if w.session_id in self.subscriptions and not w.cursor]
        for want, ok in zip(fresh, found, strict=True):
            if not ok:
                continue
            previous = self.subscriptions.pop(want.session_id, None)
            if previous is not None:
                previous.cancel()
                self.metrics.ws_subscriptions.dec()
            self.subscriptions[want.session_id] = asyncio.create_task(self.follow(want.session_id, want.cursor))
            self.metrics.ws_subscriptions.inc()
            started.append(want.session_id)
        if started or not wanted:
            await self.send("subscribed", started)

    async def _exists(self, session_id: str) -> bool:
        try:
            context.session_id.set(session_id)
            await self.backends.get_session(session_id)
        except ApiError as err:
            await self.send("error", problem(err.reason, f"session {session_id}: {err.message}"))
            return False
        return True

    async def unsubscribe(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            task = self.subscriptions.pop(session_id, None)
            if task is not None:
                task.cancel()
                self.metrics.ws_subscriptions.dec()
        await self.send("unsubscribed", session_ids)

    async def follow(self, session_id: str, cursor: str) -> None:
        """Every update of one session from `cursor` on, until its terminal state (then `unsubscribed`)."""
        context.session_id.set(session_id)
        pause, gave_up_at = _RETRY_FIRST_S, time.monotonic() + _RETRY_BUDGET_S
        ended = False
        try:
            while True:
                call = self.backends.sessions.WatchSession(
                    session_pb2.WatchSessionRequest(session_id=session_id, cursor=cursor),
                    metadata=call_metadata(),
                )
                try:
                    async for update in call:
                        cursor = update.cursor
                        pause, gave_up_at = _RETRY_FIRST_S, time.monotonic() + _RETRY_BUDGET_S
                        session = views.session(update.session).model_dump(mode="json")
                        await self.send("update", [{"cursor": update.cursor, "session": session}])
                    ended = True
                    return
                except grpc.aio.AioRpcError as err:
                    if err.code() in _RETRYABLE and time.monotonic() + pause < gave_up_at:
                        log.info("watch dropped; reopening", extra={"code": err.code().name, "cursor": cursor})
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, _RETRY_CAP_S)
                        continue
                    mapped = from_rpc_error(err, "session")
                    await self.send("error", problem(mapped.reason, f"session {session_id}: {mapped.message}"))
                    ended = True
                    return
                finally:
                    call.cancel()
        except Exception:
            log.exception("watch failed")
            await self.send("error", problem("INTERNAL", f"session {session_id}: internal error"))
            ended = True
        finally:
            if ended and self.subscriptions.get(session_id) is asyncio.current_task():
                del self.subscriptions[session_id]
                self.metrics.ws_subscriptions.dec()
                await self.send("unsubscribed", [session_id])
