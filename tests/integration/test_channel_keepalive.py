"""Service-to-service channels (swap_runtime.tls.channel) replace a connection that went silent without a
word: keepalive pings go unanswered, the channel drops it and reconnects, and calls succeed again within
seconds rather than timing out on the dead connection for as long as the socket lives."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from swap_devnet.faults import TcpProxy
from swap_runtime.server import GrpcService
from swap_runtime.tls import channel

pytestmark = pytest.mark.integration


async def _check(stub: health_pb2_grpc.HealthStub) -> bool:
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.timeout(90)
async def test_a_silent_connection_is_replaced_within_seconds() -> None:
    service = GrpcService("keepalive-test", [], lambda server: None)
    port = await service.start()
    try:
        with TcpProxy(port) as proxy:
            async with channel(f"127.0.0.1:{proxy.port}", None) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                assert await _check(stub)
                proxy.freeze()
                started = time.monotonic()
                failed = 0
                while not await _check(stub):
                    failed += 1
                    assert time.monotonic() - started < 30, "the channel kept the silent connection"
                    await asyncio.sleep(0.2)
                recovered_s = time.monotonic() - started
    finally:
        await service.stop()
    # Calls failed while the frozen connection was in use (it was silent, not closed), then a new one carried them.
    assert failed >= 1
    assert recovered_s < 25, recovered_s
