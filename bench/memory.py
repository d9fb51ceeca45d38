"""Resident memory per open session: VmRSS of the session service (and of the gateway) while creating sessions
that stay `initialized` (CreateSession only, through gRPC; the gateway's figure comes from the same number of
sessions created through its REST route). The sessions are cancelled afterwards.

RSS moves in pages and allocator arenas, by tens of KiB at a time whatever one session holds, so the figure
is the slope of RSS over the number of sessions (least squares over STEPS reads, one after each equal batch),
not one difference of two reads."""

from __future__ import annotations

import asyncio
import gc
import statistics
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
_SETTLE_S = 0.5
_CONCURRENCY = 10
STEPS = 5
_WARMUP = 100  # sessions created through each route before the first read


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
        await asyncio.sleep(_SETTLE_S)

        async def grpc_create() -> str:
            reply = await stub.CreateSession(request)
            return str(reply.session.session_id)

        async def rest_create() -> str:
            created = await client.post("/api/v1/sessions", json=body)
            if created.status_code != 201:
                raise RuntimeError(f"create: HTTP {created.status_code}: {created.text[:200]}")
            return str(created.json()["session_id"])

        # A few first: connections, caches and lazily built objects are not per-session memory.
        ids.extend(await _bounded([grpc_create() for _ in range(_WARMUP)] + [rest_create() for _ in range(_WARMUP)]))
        out["session"] = _slope((await _grow(grpc_create, sessions, [session_pid], ids))[session_pid], sessions)
        reads = await _grow(rest_create, sessions, [gateway_pid, session_pid], ids)
        out["gateway"] = _slope(reads[gateway_pid], sessions)
        out["session_again_via_gateway"] = _slope(reads[session_pid], sessions)

        async def cancel(session_id: str) -> None:
            # A coroutine, so the call starts under _bounded's limit (a gRPC call starts when it is made).
            await stub.CancelSession(session_pb2.CancelSessionRequest(session_id=session_id))

        await _bounded([cancel(i) for i in ids])
    return out


async def _grow(create: Any, sessions: int, pids: list[int], ids: list[str]) -> dict[int, list[tuple[int, int]]]:
    """Creates `sessions` sessions in STEPS equal batches; after each (and before the first) reads every pid's
    RSS: {pid: [(sessions so far, KiB)]}."""
    reads: dict[int, list[tuple[int, int]]] = {pid: [(0, rss_kib(pid))] for pid in pids}
    made = 0
    for step in range(1, STEPS + 1):
        batch = sessions * step // STEPS - made
        ids.extend(await _bounded([create() for _ in range(batch)]))
        made += batch
        await asyncio.sleep(_SETTLE_S)
        for pid in pids:
            reads[pid].append((made, rss_kib(pid)))
    return reads


def _slope(reads: list[tuple[int, int]], sessions: int) -> dict[str, Any]:
    """KiB per session: the least-squares slope of RSS over the sessions created."""
    counts, kib = [c for c, _ in reads], [k for _, k in reads]
    slope, _ = statistics.linear_regression(counts, kib)
    return {
        "rss_kib_by_sessions": {str(c): k for c, k in reads},
        "difference_per_session_kib": round((kib[-1] - kib[0]) / sessions, 2),
        "per_session_kib": round(slope, 2),
    }


def run(stack: LocalStack, options: Options) -> dict[str, Any]:
    gc.collect()
    start = time.monotonic()
    result = asyncio.run(_measure(stack, options.sessions))
    return {
        "setup": {
            "sessions": options.sessions,
            "how": (
                f"VmRSS from /proc/<pid>/status before and after each of {STEPS} equal batches of creates "
                f"({_SETTLE_S} s after each); per_session_kib is the least-squares slope; 10 creates in flight"
            ),
            "warmup_sessions": 2 * _WARMUP,
        },
        **result,
        "create_s": round(time.monotonic() - start, 1),
    }
