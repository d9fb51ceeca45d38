"""Prometheus metrics every service shares; each service adds its own next to its domain code.

Names follow Prometheus conventions (base units: seconds, `_total` counters). Served over HTTP on the
service's metrics port by `serve_metrics`.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

RPC_LATENCY = Histogram(
    "swap_grpc_server_handling_seconds",
    "Time to handle one gRPC call (streams: until the stream ends).",
    ["service", "method", "code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CHAIN_RPC_LATENCY = Histogram(
    "swap_chain_rpc_seconds",
    "Latency of one chain JSON-RPC call, retries included.",
    ["chain", "call"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CHAIN_RPC_ERRORS = Counter(
    "swap_chain_rpc_errors_total", "Chain JSON-RPC calls that failed after their retries.", ["chain", "call"]
)
REORGS = Counter("swap_chain_reorgs_total", "Reorgs seen by event watchers (replaced blocks).", ["chain"])
RESOLVER_BALANCE = Gauge(
    "swap_resolver_balance", "The resolver's balance in base units of a token.", ["chain", "token"]
)
RESOLVER_LIQUIDITY_FLOOR = Gauge(
    "swap_resolver_liquidity_floor",
    "Configured balance in base units of a token below which the resolver cannot cover the next swap.",
    ["chain", "token"],
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serves /metrics from a daemon thread (0 = do not serve)."""
    if port:
        start_http_server(port, addr=host)
        log.info("metrics served", extra={"port": port})
