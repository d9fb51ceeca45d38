"""What /health reports: the session and quote services, Redis, both chain services (whose gRPC health
follows their chain RPC) and this process's memory, probed in parallel and cached briefly so that a
balancer polling many replicas does not multiply the load on the services behind them."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.exceptions import RedisError
from swap.chain.v1 import chain_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2
from swap_runtime.tls import Tls
from swap_runtime.tls import channel as tls_channel

from gateway.config import GatewaySettings

State = Literal["ok", "degraded", "down"]

SESSION_SERVICE = session_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name
QUOTE_SERVICE = quote_pb2.DESCRIPTOR.services_by_name["QuoteService"].full_name
CHAIN_SERVICE = chain_pb2.DESCRIPTOR.services_by_name["ChainService"].full_name
# Without these nothing can be created or followed: the instance is out of the balancer.
CRITICAL = frozenset({"session", "redis"})
# Past this share of the memory limit the instance still serves but is close to being killed.
MEMORY_DEGRADED_RATIO = 0.9
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000)]


@dataclass(frozen=True)
class Check:
    state: State
    latency_ms: float
    detail: str | None = None


@dataclass(frozen=True)
class Report:
    status: State
    checks: dict[str, Check]


def rss_bytes() -> int:
    """The resident set of this process now; where /proc is missing, its peak (an upper bound)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def overall(checks: dict[str, Check]) -> State:
    if any(checks[name].state == "down" for name in CRITICAL if name in checks):
        return "down"
    return "ok" if all(check.state == "ok" for check in checks.values()) else "degraded"


class HealthMonitor:
    def __init__(
        self,
        settings: GatewaySettings,
        tls: Tls | None,
        session_channel: grpc.aio.Channel,
        quote_channel: grpc.aio.Channel,
        redis: aioredis.Redis,
    ) -> None:
        self._timeout_s = settings.health_timeout_s
        self._cache_s = settings.health_cache_s
        self._memory_limit = settings.memory_limit_mb * 1024 * 1024
        self._redis = redis
        self._own: list[grpc.aio.Channel] = []
        self._services: dict[str, tuple[grpc.aio.Channel, str]] = {
            "session": (session_channel, SESSION_SERVICE),
            "quote": (quote_channel, QUOTE_SERVICE),
        }
        for name, addr in (("chain_base", settings.chain_base_addr), ("chain_near", settings.chain_near_addr)):
            if addr:
                channel = tls_channel(addr, tls, options=_CHANNEL_OPTIONS)
                self._own.append(channel)
                self._services[name] = (channel, CHAIN_SERVICE)
        self._cached: tuple[float, Report] | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> Report:
        # Concurrent requests within the cache window share one round of probes.
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self._cache_s:
                return self._cached[1]
            report = await self._probe()
            self._cached = (time.monotonic(), report)
            return report

    async def _probe(self) -> Report:
        probes: dict[str, Awaitable[Check]] = {
            name: self._serving(channel, service) for name, (channel, service) in self._services.items()
        }
        probes["redis"] = self._redis_ok()
        names = [*probes]
        results = await asyncio.gather(*probes.values())
        checks = dict(zip(names, results, strict=True))
        checks["memory"] = self._memory()
        ordered = {name: checks[name] for name in sorted(checks)}
        return Report(status=overall(ordered), checks=ordered)

    async def _serving(self, channel: grpc.aio.Channel, service: str) -> Check:
        start = time.perf_counter()
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as err:
            return Check("down", _ms(start), f"{err.code().name}: {err.details() or ''}".rstrip(": "))
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            return Check("down", _ms(start), health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
        return Check("ok", _ms(start))

    async def _redis_ok(self) -> Check:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(self._redis.ping(), self._timeout_s)
        except TimeoutError:
            return Check("down", _ms(start), "no answer in time")
        except (RedisError, OSError) as err:
            return Check("down", _ms(start), type(err).__name__)
        return Check("ok", _ms(start))

    def _memory(self) -> Check:
        start = time.perf_counter()
        rss = rss_bytes()
        state: State = "degraded" if rss > MEMORY_DEGRADED_RATIO * self._memory_limit else "ok"
        detail = f"rss {rss / 2**20:.0f} MiB of {self._memory_limit / 2**20:.0f} MiB"
        return Check(state, _ms(start), detail)

    async def close(self) -> None:
        for channel in self._own:
            await channel.close()


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
