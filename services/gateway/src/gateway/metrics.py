"""Prometheus metrics of one gateway app, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_http_request_duration_seconds",
            "Seconds from the request to the end of the response, by route template and status.",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_requests", "Requests refused by the per-key rate limit.", registry=self.registry
        )
        self.ws_connections = Gauge("gateway_ws_connections", "Open WebSocket connections.", registry=self.registry)
        self.ws_subscriptions = Gauge(
            "gateway_ws_subscriptions", "Sessions watched over WebSocket connections.", registry=self.registry
        )
        self.ws_upstreams = Gauge(
            "gateway_ws_upstreams",
            "WatchSession streams read for WebSocket subscribers (one per watched session, shared by its subscribers).",
            registry=self.registry,
        )
        self.ws_dropped = Counter(
            "gateway_ws_slow_consumers_dropped",
            "WebSocket connections closed because the client did not read its messages in time (1013).",
            registry=self.registry,
        )
        self.ws_sent = Counter(
            "gateway_ws_messages_sent",
            "WebSocket messages handed to connections: written straight to the socket (direct) or queued behind "
            "earlier ones (queued).",
            ["path"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = {"method": method, "route": route, "status": str(status)}
        self.requests.labels(**labels).inc()
        self.latency.labels(**labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
