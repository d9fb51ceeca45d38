"""Counting proxies: they forward every call unchanged and tally it by method.

`GrpcCounter` sits between a gRPC client and one server (unary calls, the only kind the session service
makes to the chain services); `JsonRpcCounter` sits between a client and a JSON-RPC node. Both run in the
benchmark's own event loop, so they add a hop to what they watch: the report uses them to count calls,
and times the same work without them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from aiohttp import web
from swap_devnet.procs import free_port
from swap_runtime.tls import Tls, channel

# Headers gRPC sets itself on the outgoing call; forwarding them would duplicate or contradict them.
_HOP_HEADERS = {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout"}


class GrpcCounter:
    """Serves with the certificate in `server_tls` and calls upstream as `client_tls` (both None: plaintext)."""

    def __init__(self, upstream: str, server_tls: Path | None = None, client_tls: Path | None = None) -> None:
        self.upstream = upstream
        self.server_tls = server_tls
        self.client_tls = client_tls
        self.port = free_port()
        self.counts: Counter[str] = Counter()
        self._channel: Any = None
        self._server: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> GrpcCounter:
        self._channel = channel(self.upstream, Tls.load(self.client_tls) if self.client_tls else None)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers([_Forwarder(self)])
        if self.server_tls is None:
            self._server.add_insecure_port(self.address)
        else:
            tls = Tls.load(self.server_tls)
            self._server.add_secure_port(self.address, tls.server_credentials())
        await self._server.start()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(1.0)
        if self._channel is not None:
            await self._channel.close()

    def take(self) -> Counter[str]:
        """The counts since the last take, by short method name; resets them."""
        taken = Counter({method.rsplit("/", 1)[-1]: n for method, n in self.counts.items()})
        self.counts.clear()
        return taken

    @staticmethod
    def _metadata(context: Any) -> tuple[tuple[str, str], ...]:
        return tuple(
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if not key.startswith(":") and key not in _HOP_HEADERS
        )

    async def forward_stream(self, method: str, request: bytes, context: Any) -> AsyncIterator[bytes]:
        """A server stream (WatchEvents), counted once when it opens: it serves every swap of the replica."""
        self.counts[method] += 1
        call = self._channel.unary_stream(method)(request, metadata=self._metadata(context))
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as err:
            await context.abort(err.code(), err.details() or "", tuple(err.trailing_metadata() or ()))

    async def forward(self, method: str, request: bytes, context: Any) -> bytes:
        self.counts[method] += 1
        metadata = self._metadata(context)
        remaining = context.time_remaining()
        call = self._channel.unary_unary(method)
        try:
            reply: bytes = await call(request, metadata=metadata, timeout=remaining)
        except grpc.aio.AioRpcError as err:
            trailing = tuple(err.trailing_metadata() or ())
            await context.abort(err.code(), err.details() or "", trailing)
            raise
        return reply


class _Forwarder(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, counter: GrpcCounter) -> None:
        self._counter = counter

    def service(self, handler_call_details: Any) -> Any:
        method: str = handler_call_details.method

        async def behaviour(request: bytes, context: Any) -> bytes:
            return await self._counter.forward(method, request, context)

        if method.endswith("/WatchEvents"):

            async def streaming(request: bytes, context: Any) -> AsyncIterator[bytes]:
                # An async generator function itself: grpc.aio tells streaming handlers apart by that.
                async for item in self._counter.forward_stream(method, request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(streaming)
        # No (de)serializers: the bytes pass through untouched.
        return grpc.unary_unary_rpc_method_handler(behaviour)


def _label(body: Any) -> str:
    """`method`, or for NEAR's `query` the request type and, for view calls, the contract method."""
    if not isinstance(body, dict):
        return "batch"
    method = str(body.get("method", "?"))
    params = body.get("params")
    if method == "query" and isinstance(params, dict):
        kind = str(params.get("request_type", "?"))
        if kind == "call_function":
            return f"query/call_function/{params.get('method_name', '?')}"
        return f"query/{kind}"
    return method


class JsonRpcCounter:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.counts: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> JsonRpcCounter:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def take(self) -> Counter[str]:
        taken = Counter(self.counts)
        self.counts.clear()
        return taken

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        raw = await request.read()
        try:
            self.counts[_label(json.loads(raw))] += 1
        except ValueError:
            self.counts["unparsed"] += 1
        async with self._session.post(
            self.upstream, data=raw, headers={"Content-Type": "application/json"}
        ) as upstream:
            body = await upstream.read()
            return web.Response(body=body, status=upstream.status, content_type="application/json")
