"""gateway.fanout on its own: the outbox drops a client that lets its queue fill (1013 SLOW_CONSUMER) and
the others of the same feed keep receiving; a feed reads one upstream stream for all its subscribers, gives a
late subscriber the latest update first, and stops reading when its last subscriber leaves. The session
service is a stand-in here; tests/integration/gateway/test_ws_fanout.py runs the real one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway.auth import Identity, current_identity
from gateway.fanout import SLOW_CONSUMER, SLOW_CONSUMER_CODE, Hub, Outbox
from gateway.metrics import Metrics
from starlette.websockets import WebSocketState
from swap.session.v1 import session_pb2

from tests.unit.gateway.test_views import session as session_message

SESSION_ID = "ab" * 16


class FakeSocket:
    """Records what is sent; `stalled` never finishes a send (a client that does not read)."""

    def __init__(self, stalled: bool = False) -> None:
        self.application_state = WebSocketState.CONNECTED
        self.sent: list[dict[str, Any]] = []
        self.stalled = stalled
        self.closed: tuple[int, str] | None = None

    async def send_text(self, text: str) -> None:
        if self.stalled:
            await asyncio.Event().wait()
        self.sent.append(json.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.application_state = WebSocketState.DISCONNECTED


class Subscriber:
    def __init__(self, socket: FakeSocket, limit: int, metrics: Metrics) -> None:
        self.outbox = Outbox(socket, limit, metrics)  # type: ignore[arg-type]
        self.outbox.start()
        self.ended: list[tuple[str, Any]] = []

    def feed_ended(self, session_id: str, error: list[dict[str, str]] | None) -> None:
        self.ended.append((session_id, error))


class Upstream:
    """WatchSession as a stand-in: every call reads the same queue of updates; calls are counted."""

    def __init__(self) -> None:
        self.updates: asyncio.Queue[session_pb2.WatchSessionResponse | None] = asyncio.Queue()
        self.calls = 0
        self.cancelled = 0

    def WatchSession(self, request: Any, metadata: Any = None) -> Any:
        self.calls += 1
        upstream = self

        class Call:
            def __aiter__(self) -> AsyncIterator[session_pb2.WatchSessionResponse]:
                return self._read()

            async def _read(self) -> AsyncIterator[session_pb2.WatchSessionResponse]:
                while (update := await upstream.updates.get()) is not None:
                    yield update

            def cancel(self) -> None:
                upstream.cancelled += 1

        return Call()

    def push(
        self, version: int, state: session_pb2.SessionState.ValueType = session_pb2.SESSION_STATE_SOURCE_LOCKED
    ) -> None:
        message = session_message()
        message.version, message.state = version, state
        self.updates.put_nowait(session_pb2.WatchSessionResponse(cursor=f"{version}-0", session=message))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def tenant() -> None:
    current_identity.set(Identity(tenant="t1"))


async def test_a_client_that_lets_its_queue_fill_is_dropped_and_closed() -> None:
    metrics = Metrics()
    socket = FakeSocket(stalled=True)
    outbox = Outbox(socket, 3, metrics)  # type: ignore[arg-type]
    outbox.start()
    for n in range(4):  # the first is taken by the writer (stuck sending); 3 more fill the queue
        outbox.put(json.dumps({"n": n}))
        await settle()
    assert not outbox.dropped.is_set()
    outbox.put(json.dumps({"n": 4}))
    assert outbox.dropped.is_set()
    assert metrics.ws_dropped._value.get() == 1
    await outbox.close()
    assert socket.closed == (SLOW_CONSUMER_CODE, SLOW_CONSUMER)


async def test_one_upstream_for_all_subscribers_and_a_slow_one_holds_nobody_up() -> None:
    metrics = Metrics()
    upstream = Upstream()
    hub = Hub(upstream, metrics)  # type: ignore[arg-type]
    identity = (("x-tenant", "t1"),)
    fast_socket, slow_socket = FakeSocket(), FakeSocket(stalled=True)
    fast, slow = Subscriber(fast_socket, 32, metrics), Subscriber(slow_socket, 2, metrics)
    hub.join(identity, SESSION_ID, fast)
    hub.join(identity, SESSION_ID, slow)
    for version in range(1, 21):
        upstream.push(version)
    await settle()
    assert upstream.calls == 1 and hub.feeds == 1
    assert metrics.ws_upstreams._value.get() == 1
    assert [m["args"][0]["session"]["version"] for m in fast_socket.sent] == list(range(1, 21))
    assert slow.outbox.dropped.is_set() and not fast.outbox.dropped.is_set()

    # A late subscriber gets the session as it stands (the latest update) first, then what follows.
    late_socket = FakeSocket()
    late = Subscriber(late_socket, 8, metrics)
    hub.join(identity, SESSION_ID, late)
    upstream.push(21, session_pb2.SESSION_STATE_COMPLETED)
    await settle()
    assert [m["args"][0]["session"]["version"] for m in late_socket.sent] == [20, 21]
    assert late_socket.sent[0] == fast_socket.sent[19]  # encoded once, the same message for everyone
    upstream.updates.put_nowait(None)  # the session ended: the stream closes
    await settle()
    assert fast.ended == [(SESSION_ID, None)] and late.ended == [(SESSION_ID, None)]
    assert hub.feeds == 0 and metrics.ws_upstreams._value.get() == 0
    for subscriber in (fast, slow, late):
        await subscriber.outbox.close()


async def test_the_stream_closes_when_the_last_subscriber_leaves_and_tenants_never_share() -> None:
    metrics = Metrics()
    upstream = Upstream()
    hub = Hub(upstream, metrics)  # type: ignore[arg-type]
    first, second = Subscriber(FakeSocket(), 8, metrics), Subscriber(FakeSocket(), 8, metrics)
    hub.join((("x-tenant", "t1"),), SESSION_ID, first)
    hub.join((("x-tenant", "t2"),), SESSION_ID, second)
    await settle()
    assert upstream.calls == 2 and hub.feeds == 2  # one stream per tenant: a stream never serves another
    hub.leave((("x-tenant", "t1"),), SESSION_ID, first)
    hub.leave((("x-tenant", "t2"),), SESSION_ID, second)
    await settle()
    assert hub.feeds == 0 and upstream.cancelled == 2
    assert metrics.ws_upstreams._value.get() == 0
    assert first.ended == [] and second.ended == []  # leaving is not an end of the session
    await hub.close()
