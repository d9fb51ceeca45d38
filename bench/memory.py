"""Resident memory per open session: VmRSS of the session service (and of the gateway) before and after
creating sessions that stay `initialized` (CreateSession only, through gRPC; the gateway's figure comes
from the same number of sessions created through its REST route). The sessions are cancelled afterwards."""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Any

import httpx
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.stack import LocalStack

from bench.edge import API_KEY, rss_kib, service_pid

AMOUNT = "10000000"
_SETTLE_S = 1.0
_CONCURRENCY = 10


@dataclass(frozen=True)
class Options:
    sessions: int


async def _bounded(calls: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


async def _measure(stack: LocalStack, sessions: int) -> dict[str, Any]:
    assert stack.evm is not None and stack.near is not None and stack.gateway is not None
    evm, near = stack.evm, stack.near
    session_pid, gateway_pid = service_pid(stack, "session"), service_pid(stack, "gateway")
    request = session_pb2.CreateSessionRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=near.token.account_id),
        src_amount=AMOUNT,
        maker=evm.maker.address,
        receiver=near.receiver.account_id,
    )
    body = {
        "src": {"chain": "base", "token": evm.token},
        "dst": {"chain": "near", "token": near.token.account_id},
        "src_amount": AMOUNT,
        "maker": evm.maker.address,
        "receiver": near.receiver.account_id,
    }
    ids: list[str] = []
    out: dict[str, Any] = {}
    async with (
        stack.channel("session") as channel,
        httpx.AsyncClient(base_url=stack.gateway.url, headers={"X-API-Key": API_KEY}, timeout=30) as client,
    ):
        stub = session_pb2_grpc.SessionServiceStub(channel)
        # A few first: connections, caches and lazily built objects are not per-session memory.
        for reply in await _bounded([stub.CreateSession(request) for _ in range(5)]):
            ids.append(reply.session.session_id)
        for _ in range(5):
            created = await client.post("/api/v1/sessions", json=body)
            ids.append(created.json()["session_id"])
        await asyncio.sleep(_SETTLE_S)
        before = rss_kib(session_pid)
        replies = await _bounded([stub.CreateSession(request) for _ in range(sessions)])
        ids.extend(r.session.session_id for r in replies)
        await asyncio.sleep(_SETTLE_S)
        after = rss_kib(session_pid)
        out["session"] = {
            "rss_before_kib": before,
            "rss_after_kib": after,
            "per_session_kib": round((after - before) / sessions, 2),
        }
        gw_before = rss_kib(gateway_pid)
        session_before_rest = rss_kib(session_pid)

        async def rest_create() -> str:
            created = await client.post("/api/v1/sessions", json=body)
            if created.status_code != 201:
                raise RuntimeError(f"create: HTTP {created.status_code}: {created.text[:200]}")
            return str(created.json()["session_id"])

        ids.extend(await _bounded([rest_create() for _ in range(sessions)]))
        await asyncio.sleep(_SETTLE_S)
        gw_after = rss_kib(gateway_pid)
        session_after_rest = rss_kib(session_pid)
        out["gateway"] = {
            "rss_before_kib": gw_before,
            "rss_after_kib": gw_after,
            "per_session_kib": round((gw_after - gw_before) / sessions, 2),
        }
        out["session_again_via_gateway"] = {
            "rss_before_kib": session_before_rest,
            "rss_after_kib": session_after_rest,
            "per_session_kib": round((session_after_rest - session_before_rest) / sessions, 2),
        }
        await _bounded([stub.CancelSession(session_pb2.CancelSessionRequest(session_id=i)) for i in ids])
    return out


def run(stack: LocalStack, options: Options) -> dict[str, Any]:
    gc.collect()
    start = time.monotonic()
    result = asyncio.run(_measure(stack, options.sessions))
    return {
        "setup": {
            "sessions": options.sessions,
            "how": "VmRSS from /proc/<pid>/status, 1 s after the last create; 10 creates in flight",
            "warmup_sessions": 10,
        },
        **result,
        "create_s": round(time.monotonic() - start, 1),
    }
