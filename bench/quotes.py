"""GetQuote by three routes, two comparisons, on the edge stack's quote service.

- gateway_vs_transcoder: one JSON request at a time with one aiohttp client, alternating between the gateway's
  REST route (POST /api/v1/quotes, X-API-Key) and Envoy's grpc_json_transcoder (POST
  /swap.quote.v1.QuoteService/GetQuote, the request as proto3 JSON); both end at the same quote service.
  Then the same two routes under load: 16 requests in flight (16 keep-alive connections), in alternating
  time slices, for requests per second and the latency under load.
- quote_vs_noop: one grpc.aio channel, a fixed number of calls in flight, alternating time slices between
  the real quote service and a constant-reply servicer (bench.noop_quote) on the same server setup.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_devnet.procs import ServiceProcess
from swap_devnet.stack import LocalStack

from bench.cpu import snapshot, spent
from bench.edge import API_KEY, service_pid
from bench.procs import start_service
from bench.stats import comparison, percentile, ratio, summary

log = logging.getLogger("bench.quotes")

AMOUNT = "10000000"  # 10 TUSD


@dataclass(frozen=True)
class Options:
    rounds: int
    slices: int
    slice_s: float
    noop_slices: int
    noop_slice_s: float
    concurrency: int
    work_dir: Path


def _with_p99(samples: list[float]) -> dict[str, Any]:
    return {**summary(samples), "p99_ms": round(percentile(samples, 0.99), 2) if samples else None}


LOADED_IN_FLIGHT = 16


async def _loaded(call: Any, names: list[str], slices: int, slice_s: float) -> dict[str, Any]:
    """LOADED_IN_FLIGHT callers per route, each calling again as soon as its reply arrives, in alternating
    time slices: requests per second over the time spent on each route, and the latency under that load."""
    samples: dict[str, list[float]] = {name: [] for name in names}
    busy_s: dict[str, float] = dict.fromkeys(names, 0.0)

    async def one_slice(name: str, seconds: float) -> list[float]:
        deadline = time.perf_counter() + seconds
        got: list[float] = []

        async def caller() -> None:
            while time.perf_counter() < deadline:
                got.append(await call(name))

        await asyncio.gather(*(caller() for _ in range(LOADED_IN_FLIGHT)))
        return got

    for name in names:  # warm: every connection opened
        await one_slice(name, 0.5)
    for n in range(slices):
        for name in names if n % 2 == 0 else list(reversed(names)):
            start = time.perf_counter()
            got = await one_slice(name, slice_s)
            busy_s[name] += time.perf_counter() - start
            samples[name].extend(got)
    rps = {name: round(len(samples[name]) / busy_s[name], 1) for name in names}
    return {
        "in_flight": LOADED_IN_FLIGHT,
        "requests_per_s": rps,
        "latency_ms": {name: _with_p99(values) for name, values in samples.items()},
        "p99_ms": {name: round(percentile(values, 0.99), 2) for name, values in samples.items() if values},
    }


async def _gateway_vs_transcoder(stack: LocalStack, rounds: int, slices: int, slice_s: float) -> dict[str, Any]:
    assert stack.gateway is not None and stack.envoy is not None and stack.evm is not None and stack.near is not None
    base_token, near_token = stack.evm.token, stack.near.token.account_id
    rest_body = {
        "src": {"chain": "base", "token": base_token},
        "dst": {"chain": "near", "token": near_token},
        "src_amount": AMOUNT,
    }
    transcoded_body = {
        "src": {"chain": "CHAIN_BASE", "token": base_token},
        "dst": {"chain": "CHAIN_NEAR", "token": near_token},
        "srcAmount": AMOUNT,
    }
    routes = {
        "gateway_rest": (f"{stack.gateway.url}/api/v1/quotes", rest_body, {"X-API-Key": API_KEY}, "quote_id"),
        "envoy_transcoder": (
            f"{stack.envoy.url}/swap.quote.v1.QuoteService/GetQuote",
            transcoded_body,
            # Envoy asks the gateway (ext_authz) about the key on every call: part of what is measured.
            {"X-API-Key": API_KEY},
            "quote",
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in routes}
    # The bodies are encoded once and the client is aiohttp, lighter per request than httpx: the client shares
    # the machine's cores with what it measures.
    encoded = {name: (url, orjson.dumps(body), key) for name, (url, body, _, key) in routes.items()}
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=2 * LOADED_IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10.0)) as client:

        async def call(name: str) -> float:
            url, body, key = encoded[name]
            start = time.perf_counter()
            async with client.post(url, data=body, headers=headers) as reply:
                raw = await reply.read()
            took = (time.perf_counter() - start) * 1000
            if reply.status != 200 or key not in orjson.loads(raw):
                raise RuntimeError(f"{name}: HTTP {reply.status}: {raw[:300]!r}")
            return took

        for _ in range(3):  # connections, first quotes
            for name in routes:
                await call(name)
        for n in range(rounds):
            order = list(routes) if n % 2 == 0 else list(reversed(routes))
            for name in order:
                samples[name].append(await call(name))
        loaded = await _loaded(call, list(routes), slices, slice_s)
    rest, transcoded = samples["gateway_rest"], samples["envoy_transcoder"]
    compared = comparison(rest, transcoded, ("gateway_rest", "envoy_transcoder"))
    compared["gateway_rest"] = _with_p99(rest)
    compared["envoy_transcoder"] = _with_p99(transcoded)
    compared["ratio_p99"] = ratio(percentile(rest, 0.99), percentile(transcoded, 0.99))
    compared["under_load"] = loaded
    compared["ratio_rps_16"] = ratio(
        loaded["requests_per_s"]["gateway_rest"], loaded["requests_per_s"]["envoy_transcoder"]
    )
    return compared


def run_gateway_vs_transcoder(stack: LocalStack, options: Options) -> dict[str, Any]:
    result = asyncio.run(_gateway_vs_transcoder(stack, options.rounds, options.slices, options.slice_s))
    return {
        "setup": {
            "client": "one aiohttp.ClientSession (HTTP/1.1 keep-alive), one request at a time, routes alternating",
            "under_load": f"{LOADED_IN_FLIGHT} in flight, {options.slices} slices of {options.slice_s} s per route, "
            "alternating; ratio_rps_16 = gateway_rest over envoy_transcoder requests/s",
            "request": "GetQuote 10 TUSD BASE -> NEAR",
            "rounds": options.rounds,
            "ratios": "gateway_rest over envoy_transcoder",
        },
        **result,
    }


async def _slice(stub: quote_pb2_grpc.QuoteServiceStub, request: Any, concurrency: int, seconds: float) -> list[float]:
    """`concurrency` callers, each calling again as soon as its reply arrives, for `seconds`."""
    deadline = time.perf_counter() + seconds
    samples: list[float] = []

    async def caller() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            reply = await stub.GetQuote(request, timeout=10)
            samples.append((time.perf_counter() - start) * 1000)
            if not reply.quote.quote_id:
                raise RuntimeError("a GetQuote reply without a quote")

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return samples


async def _quote_vs_noop(stack: LocalStack, noops: dict[str, ServiceProcess], options: Options) -> dict[str, Any]:
    assert stack.evm is not None and stack.near is not None
    request = quote_pb2.GetQuoteRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        src_amount=AMOUNT,
    )
    # All over mutual TLS as the operator, as every internal call is.
    operator = stack.identity_dir("operator")
    channels = {"quote": stack.channel("quote"), **{name: noop.channel(operator) for name, noop in noops.items()}}
    targets = list(channels)
    samples: dict[str, list[float]] = {name: [] for name in targets}
    busy_s: dict[str, float] = dict.fromkeys(targets, 0.0)
    per_slice: dict[str, list[float]] = {name: [] for name in targets}
    # CPU seconds per process while each target was under load: the servers, the Redis the quote service's
    # writes go to, the client (this process).
    pids = {"quote": service_pid(stack, "quote"), **redis_pid()}
    for name, noop in noops.items():
        assert noop.pid is not None
        pids[name] = noop.pid
    cpu: dict[str, dict[str, float]] = {name: {} for name in targets}
    try:
        stubs = {name: quote_pb2_grpc.QuoteServiceStub(channel) for name, channel in channels.items()}
        for name in targets:
            await _slice(stubs[name], request, options.concurrency, 0.5)
        for n in range(options.noop_slices):
            order = list(targets) if n % 2 == 0 else list(reversed(targets))
            for name in order:
                start, before = time.perf_counter(), snapshot(pids)
                got = await _slice(stubs[name], request, options.concurrency, options.noop_slice_s)
                took = time.perf_counter() - start
                used = spent(before, snapshot(pids))
                for process, seconds in [*used["cpu_s"].items(), ("client", used["bench_client_cpu_s"])]:
                    cpu[name][process] = cpu[name].get(process, 0.0) + seconds
                busy_s[name] += took
                samples[name].extend(got)
                per_slice[name].append(len(got) / took)
    finally:
        for channel in channels.values():
            await channel.close()
    rps = {name: round(len(samples[name]) / busy_s[name], 1) for name in targets}

    def paired(a: str, b: str) -> float | None:
        """The median of a's requests/s over b's in the same round (adjacent slices)."""
        rounds = [x / y for x, y in zip(per_slice[a], per_slice[b], strict=True) if y > 0]
        return round(statistics.median(rounds), 2) if rounds else None

    return {
        "requests_per_s": rps,
        "ratio_rps": ratio(rps["quote"], rps["noop"]),
        "ratio_rps_paired_median": paired("quote", "noop"),
        "ratio_rps_signed_noop": ratio(rps["signed_noop"], rps["noop"]),
        "ratio_rps_signed_noop_paired_median": paired("signed_noop", "noop"),
        "ratio_rps_quote_over_signed_noop": ratio(rps["quote"], rps["signed_noop"]),
        "latency_ms": {name: _with_p99(values) for name, values in samples.items()},
        "cpu_us_per_request": {
            name: {
                process: round(seconds / len(samples[name]) * 1e6)
                for process, seconds in cpu[name].items()
                if process in ("client", name, "redis")
            }
            for name in targets
        },
    }


def redis_pid() -> dict[str, int]:
    """The local Redis server's pid, when this machine runs one this process can see."""
    for status in Path("/proc").glob("[0-9]*/comm"):
        try:
            if status.read_text().strip() == "redis-server":
                return {"redis": int(status.parent.name)}
        except OSError:
            continue
    return {}


def run_quote_vs_noop(stack: LocalStack, options: Options) -> dict[str, Any]:
    noops: dict[str, ServiceProcess] = {}
    try:
        for name, signed in (("noop", "0"), ("signed_noop", "1")):
            noops[name] = start_service(
                f"quote-{name.replace('_', '-')}",
                "bench.noop_quote",
                {"BENCH_NOOP_QUOTE_SIGNED": signed},
                options.work_dir,
                "BENCH_NOOP_QUOTE_PORT",
                stack.identity_dir("quote"),
            )
        result = asyncio.run(_quote_vs_noop(stack, noops, options))
    finally:
        for noop in noops.values():
            noop.stop()
    return {
        "setup": {
            "client": f"one grpc.aio channel per target, {options.concurrency} calls in flight",
            "slices": f"{options.noop_slices} slices of {options.noop_slice_s} s per target, alternating",
            "noop": "bench.noop_quote: a constant GetQuoteResponse on swap_runtime.server.GrpcService",
            "signed_noop": "bench.noop_quote with BENCH_NOOP_QUOTE_SIGNED=1: the constant quote, signed on every call",
            "ratios": "over noop, unless named otherwise",
        },
        **result,
    }
