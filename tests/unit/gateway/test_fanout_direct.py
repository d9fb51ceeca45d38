"""The fan-out's direct path on a real uvicorn server and real sockets: a connection's messages go straight to
its socket, in order, framed as uvicorn frames them; a client that stops reading fills its socket, then its
queue, and is closed with 1013 SLOW_CONSUMER; a connection that negotiated per-message deflate takes the
queue for every message."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from gateway.fanout import SLOW_CONSUMER, SLOW_CONSUMER_CODE, Direct, Encoded, Outbox
from gateway.metrics import Metrics
from gateway.middleware import TRANSPORT_SEND
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

QUEUE_LIMIT = 4


class App:
    """Keeps the server's send in the scope (as gateway.middleware.RequestContext does), accepts, and hands
    each connection's Outbox to the test; the connection stays open until the client leaves."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.outboxes: asyncio.Queue[tuple[Outbox, Direct | None]] = asyncio.Queue()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        scope[TRANSPORT_SEND] = send
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        direct = Direct.of(ws.scope)
        outbox = Outbox(ws, QUEUE_LIMIT, self.metrics, direct)
        outbox.start()
        await self.outboxes.put((outbox, direct))
        try:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            await outbox.close()

    def sent(self, path: str) -> float:
        value: float = self.metrics.ws_sent.labels(path)._value.get()
        return value


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[App, str]]:
    app = App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",
        log_config=None,
        lifespan="off",
        ws_per_message_deflate=getattr(request, "param", False),
    )
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await server.listening.wait()
    try:
        yield app, f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_messages_go_straight_to_the_socket_in_order(server: tuple[App, str]) -> None:
    app, url = server
    async with connect(url, compression=None) as client:
        outbox, direct = await app.outboxes.get()
        assert direct is not None
        shared = Encoded(json.dumps({"n": 0}))
        outbox.put(shared)
        for n in range(1, 50):
            outbox.put(json.dumps({"n": n}) if n % 2 else Encoded(json.dumps({"n": n})))
        got = [json.loads(await client.recv()) for _ in range(50)]
    assert [m["n"] for m in got] == list(range(50))
    assert app.sent("direct") == 50 and app.sent("queued") == 0


async def test_a_client_that_stops_reading_fills_its_socket_then_its_queue_and_is_dropped(
    server: tuple[App, str],
) -> None:
    app, url = server
    payload = "x" * 32_768
    async with connect(url, compression=None, max_queue=1, max_size=2**20) as client:
        outbox, direct = await app.outboxes.get()
        assert direct is not None
        # The client's transport stops reading once its tiny queue is full: the server's socket buffers fill,
        # then the transport's, then messages queue behind them, then the queue overflows.
        client.transport.pause_reading()
        sent = 0
        while not outbox.dropped.is_set() and sent < 10_000:
            outbox.put(Encoded(json.dumps({"n": sent, "pad": payload})))
            sent += 1
            await asyncio.sleep(0)
        assert outbox.dropped.is_set(), f"still not dropped after {sent} messages"
        assert app.sent("direct") >= 1 and app.sent("queued") >= QUEUE_LIMIT
        assert app.metrics.ws_dropped._value.get() == 1
        client.transport.resume_reading()
        received: list[int] = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                received.append(json.loads(await asyncio.wait_for(client.recv(), 10))["n"])
        assert client.close_code == SLOW_CONSUMER_CODE and client.close_reason == SLOW_CONSUMER
    # What arrived arrived in order and without a gap; what had not, the client resumes by cursor.
    assert received == list(range(len(received)))


@pytest.mark.parametrize("server", [True], indirect=True)
async def test_with_per_message_deflate_every_message_takes_the_queue(server: tuple[App, str]) -> None:
    app, url = server
    async with connect(url, compression="deflate") as client:
        outbox, direct = await app.outboxes.get()
        assert direct is None
        for n in range(5):
            outbox.put(Encoded(json.dumps({"n": n})))
            await asyncio.sleep(0.01)
        got: list[Any] = [json.loads(await client.recv())["n"] for _ in range(5)]
    assert got == list(range(5))
    assert app.sent("direct") == 0 and app.sent("queued") == 5
