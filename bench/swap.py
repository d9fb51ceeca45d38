"""Whole BASE -> NEAR swaps through the session service on the local stack as `make run` starts it
(anvil mining a block every 0.5 s, 2 confirmations, 0.2 s polls).

Each swap is timed at the client: CreateSession, the maker's EIP-712 signature, ExecuteSession, then
WatchSession until the session is terminal; every state is stamped when its update arrives.

Chain-service calls per swap are counted by a second session process, identical but for its Redis prefix,
that reaches chain-base and chain-near through counting gRPC proxies. Swaps alternate between the stack's
own session service (the timings reported) and the counted one, which also shows what the proxy hop costs.
Transactions per swap come from the chain services' JSON logs ("tx sent" / "tx executed").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from eth_account import Account
from eth_account.messages import encode_typed_data
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.procs import ServiceProcess
from swap_devnet.stack import LocalStack, StackOptions

from bench.procs import start_service
from bench.proxies import GrpcCounter
from bench.stats import comparison, summary, typical_counts

log = logging.getLogger("bench.swap")

AMOUNT = 10_000_000  # 10 TUSD
SWAP_TIMEOUT_S = 120.0
St = session_pb2.SessionState
TERMINAL = {
    St.SESSION_STATE_COMPLETED,
    St.SESSION_STATE_REFUNDED,
    St.SESSION_STATE_CANCELLED,
    St.SESSION_STATE_FAILED,
    St.SESSION_STATE_TIMEOUT,
}
_START_ATTEMPTS = 2


@dataclass(frozen=True)
class Options:
    swaps: int
    warmup: int
    work_dir: Path


def _state(value: session_pb2.SessionState.ValueType) -> str:
    return str(St.Name(value)).removeprefix("SESSION_STATE_").lower()


class LogLines:
    """Lines of a service's JSON log with a given message, counted since the last take."""

    def __init__(self, path: Path, message: str) -> None:
        self._path = path
        self._needle = f'"message": "{message}"'.encode()
        self._offset = path.stat().st_size if path.exists() else 0

    def take(self) -> int:
        with self._path.open("rb") as log_file:
            log_file.seek(self._offset)
            chunk = log_file.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        return sum(1 for line in chunk[:end].splitlines() if self._needle in line)


async def one_swap(sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack) -> dict[str, Any]:
    """Create, sign, execute and follow one swap; the times are ms from just before CreateSession."""
    assert stack.evm is not None and stack.near is not None
    evm, near = stack.evm, stack.near
    start = time.perf_counter()

    def since() -> float:
        return round((time.perf_counter() - start) * 1000, 1)

    created = await sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=evm.token),
            dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=near.token.account_id),
            src_amount=str(AMOUNT),
            maker=evm.maker.address,
            receiver=near.receiver.account_id,
        )
    )
    session = created.session
    create_ms = since()
    seen: list[tuple[str, float]] = [(_state(session.state), create_ms)]
    final: list[session_pb2.Session] = []

    async def follow() -> None:
        async for update in sessions.WatchSession(session_pb2.WatchSessionRequest(session_id=session.session_id)):
            name = _state(update.session.state)
            if name != seen[-1][0]:
                seen.append((name, since()))
            if update.session.state in TERMINAL:
                final.append(update.session)
                return

    watcher = asyncio.ensure_future(follow())
    typed = json.loads(session.maker_action.sign_order.typed_data_json)
    signature = bytes(Account.sign_message(encode_typed_data(full_message=typed), evm.maker.private_key).signature)
    execute_start = since()
    await sessions.ExecuteSession(session_pb2.ExecuteSessionRequest(session_id=session.session_id, signature=signature))
    execute_ms = since() - execute_start
    await asyncio.wait_for(watcher, SWAP_TIMEOUT_S)
    done = final[0]
    if done.state != St.SESSION_STATE_COMPLETED:
        raise RuntimeError(f"swap {session.session_id} ended {_state(done.state)}: {done.error.message}")
    return {
        "session_id": session.session_id,
        "wall_ms": seen[-1][1],
        "create_rpc_ms": create_ms,
        "execute_rpc_ms": round(execute_ms, 1),
        "states_ms": seen,
    }


def _phases(swaps: list[dict[str, Any]]) -> dict[str, Any]:
    """Time between consecutive states, summarised over swaps (in the order the states occur)."""
    samples: dict[str, list[float]] = {}
    for swap in swaps:
        states = swap["states_ms"]
        for (before, at_before), (after, at_after) in itertools.pairwise(states):
            samples.setdefault(f"{before} -> {after}", []).append(at_after - at_before)
    return {phase: summary(values) for phase, values in samples.items()}


def _start_stack(work: Path) -> LocalStack:
    for attempt in range(1, _START_ATTEMPTS + 1):
        try:
            return LocalStack(StackOptions(work_dir=work)).start()
        except (RuntimeError, TimeoutError) as err:
            if attempt == _START_ATTEMPTS:
                raise
            log.warning("the local stack did not start (attempt %d), retrying: %s", attempt, err)
    raise AssertionError("unreachable")


async def _measure(options: Options, stack: LocalStack, work: Path) -> dict[str, Any]:
    proxies = {
        name: await GrpcCounter(
            stack.services[name].address, server_tls=stack.identity_dir(name), client_tls=stack.identity_dir("session")
        ).start()
        for name in ("chain-base", "chain-near")
    }
    o = stack.options
    env = {
        "SESSION_REDIS_URL": stack.redis_url,
        "SESSION_KEY_PREFIX": f"{o.key_prefix}counted:",
        "SESSION_DEV_MODE": "true",
        "SESSION_CHAIN_BASE_ADDR": proxies["chain-base"].address,
        "SESSION_CHAIN_NEAR_ADDR": proxies["chain-near"].address,
        "SESSION_QUOTE_ADDR": stack.services["quote"].address,
        "SESSION_QUOTE_PUBLIC_KEYS": stack.quote_public_key,
        "SESSION_RETRY_DELAY_S": str(o.poll_interval_s),
    }
    counted: ServiceProcess | None = None
    txs = {
        "base": LogLines(stack.services["chain-base"].log_path, "tx sent"),
        "near": LogLines(stack.services["chain-near"].log_path, "tx executed"),
    }
    rejected = {
        "chain-base": LogLines(stack.services["chain-base"].log_path, "rpc rejected"),
        "chain-near": LogLines(stack.services["chain-near"].log_path, "rpc rejected"),
    }
    swaps: dict[str, list[dict[str, Any]]] = {"stack_session": [], "counted_session": []}
    try:
        counted = await asyncio.to_thread(
            start_service, "session-counted", "session.main", env, work, "SESSION_PORT", stack.identity_dir("session")
        )
        async with (
            stack.channel("session") as plain_channel,
            counted.channel(stack.identity_dir("operator")) as counted_channel,
        ):
            stubs = {
                "stack_session": session_pb2_grpc.SessionServiceStub(plain_channel),
                "counted_session": session_pb2_grpc.SessionServiceStub(counted_channel),
            }
            for n in range(options.warmup):
                # First swaps pay one-off costs: token registration on NEAR, connections, allowance reads.
                await one_swap(stubs["stack_session"], stack)
                await one_swap(stubs["counted_session"], stack)
                log.info("swap warmup %d/%d done", n + 1, options.warmup)
            for counter in proxies.values():
                counter.take()
            for lines in (*txs.values(), *rejected.values()):
                lines.take()
            latency_before = event_to_action_buckets(stack.metrics_ports["session"])
            for n in range(options.swaps):
                order = ["stack_session", "counted_session"] if n % 2 == 0 else ["counted_session", "stack_session"]
                for variant in order:
                    result = await one_swap(stubs[variant], stack)
                    result["transactions"] = {chain: lines.take() for chain, lines in txs.items()}
                    result["rejected_chain_rpcs"] = {name: lines.take() for name, lines in rejected.items()}
                    if variant == "counted_session":
                        calls = {name: counter.take() for name, counter in proxies.items()}
                        result["chain_rpcs"] = {name: dict(sorted(c.items())) for name, c in calls.items()}
                        result["chain_rpcs_total"] = sum(sum(c.values()) for c in calls.values())
                    swaps[variant].append(result)
                    log.info("swap %s %d/%d: %.0f ms", variant, n + 1, options.swaps, result["wall_ms"])
            latency = bucket_quantiles(latency_before, event_to_action_buckets(stack.metrics_ports["session"]))
    finally:
        if counted is not None:
            await asyncio.to_thread(counted.stop)
        for counter in proxies.values():
            await counter.stop()
    return {**_report(swaps), "event_to_action": latency}


def event_to_action_buckets(metrics_port: int) -> dict[float, float]:
    """The session's `swap_session_event_to_action_seconds` histogram: cumulative count per upper bound."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("swap_session_event_to_action_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def bucket_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """p50 / p99 of the observations between two scrapes, as the upper bound of the bucket they fall in
    (a histogram cannot say more)."""
    counts = {bound: after.get(bound, 0) - before.get(bound, 0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0)
    if not total:
        return {"n": 0}

    def upper(q: float) -> float:
        return next(bound for bound, n in counts.items() if n >= q * total)

    buckets = {("+Inf" if bound == float("inf") else str(bound)): int(n) for bound, n in counts.items()}
    return {"n": int(total), "p50_le_s": upper(0.5), "p99_le_s": upper(0.99), "cumulative_buckets": buckets}


def _per_swap(histograms: list[dict[str, int]], label: str) -> dict[str, Any]:
    """Counts that should repeat from swap to swap: the usual histogram, and how often and how far swaps
    went beyond it."""
    totals = [sum(h.values()) for h in histograms]
    typical = typical_counts(histograms, label)
    return {
        "typical": typical,
        "swaps_above_typical": sum(1 for total in totals if total > typical["total"]),
        "max_total": max(totals, default=0),
        "swaps": len(histograms),
    }


def _report(swaps: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    plain, counted = swaps["stack_session"], swaps["counted_session"]
    rpc_totals = [s["chain_rpcs_total"] for s in counted]
    per_service: dict[str, Counter[str]] = {}
    for swap in counted:
        for name, calls in swap["chain_rpcs"].items():
            per_service.setdefault(name, Counter()).update(calls)
    return {
        "wall_ms": summary([s["wall_ms"] for s in plain]),
        "create_rpc_ms": summary([s["create_rpc_ms"] for s in plain]),
        "execute_rpc_ms": summary([s["execute_rpc_ms"] for s in plain]),
        "phases_ms": _phases(plain),
        "transactions_per_swap": _per_swap([s["transactions"] for s in [*plain, *counted]], "by_chain"),
        "rejected_chain_rpcs_per_swap": _per_swap([s["rejected_chain_rpcs"] for s in [*plain, *counted]], "by_service"),
        "chain_rpcs_per_swap": {
            "median_total": sorted(rpc_totals)[len(rpc_totals) // 2] if rpc_totals else None,
            "min_total": min(rpc_totals, default=None),
            "max_total": max(rpc_totals, default=None),
            "mean_by_method": {
                name: {method: round(n / len(counted), 1) for method, n in sorted(calls.items())}
                for name, calls in per_service.items()
            },
            "how": "counting gRPC proxies between a second session process and chain-base / chain-near",
        },
        "counting_proxy_cost": comparison(
            [s["wall_ms"] for s in counted], [s["wall_ms"] for s in plain], ("counted_session", "stack_session")
        ),
        "swaps": {
            variant: [{k: v for k, v in s.items() if k != "session_id"} for s in runs]
            for variant, runs in swaps.items()
        },
    }


def _delete_keys(url: str, prefix: str) -> None:
    """The run's sessions and quotes, all under the stack's key prefix: the local Redis is shared."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def run(options: Options) -> dict[str, Any]:
    work = options.work_dir / "stack"
    stack = _start_stack(work)
    try:
        report = asyncio.run(_measure(options, stack, work))
    finally:
        try:
            _delete_keys(stack.redis_url, stack.options.key_prefix)
        finally:
            stack.stop()
    o = stack.options
    return {
        "setup": {
            "stack": "swap_devnet.stack.LocalStack with its defaults",
            "anvil_block_time_s": o.anvil_block_time,
            "base_confirmations": o.base_confirmations,
            "poll_interval_s": o.poll_interval_s,
            "amount": "10 TUSD on BASE -> TUSD on NEAR",
            "swaps": {"warmup_per_variant": options.warmup, "measured_per_variant": options.swaps},
        },
        **report,
    }
