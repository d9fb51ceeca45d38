"""The gateway's ASGI layers, outermost first: request context (request id, security headers, metrics,
access log, last-resort 500), then CORS (Starlette's), the body size limit, and the API key guard with the
per-key rate limit. They are plain ASGI so that they run before any body is parsed."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swap_runtime import context

from gateway.auth import Identity, current_identity
from gateway.backends import Backends
from gateway.errors import ApiError, from_http_status, internal_error
from gateway.metrics import Metrics
from gateway.ratelimit import LimiterUnavailable

log = logging.getLogger(__name__)

# The scope key of a WebSocket's ASGI send as the server handed it (gateway.fanout.Direct writes below it).
TRANSPORT_SEND = "gateway.transport_send"

REQUEST_ID = "X-Request-ID"
API_KEY = "X-API-Key"
# Only ids that are safe in a header, a log line and gRPC metadata are taken from the caller.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI comes from the gateway itself; its page starts it with one inline script.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
_PAGE_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:{chains}; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_TRACE_HEADERS = {"traceparent", "tracestate"}
_tracer = trace.get_tracer("gateway")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/") or path == "/ws"


def _csp(path: str, chain_origins: Sequence[str] = ()) -> str:
    if is_api_path(path) or path in {"/health", "/metrics", "/openapi.json"}:
        return _API_CSP
    if path.startswith("/docs"):
        return _DOCS_CSP
    # The page reads destination locks from the chains' RPCs itself (secret mode maker): those, and no others.
    return _PAGE_CSP.format(chains="".join(f" {origin}" for origin in chain_origins))


def origins(urls: Sequence[str]) -> list[str]:
    """scheme://host[:port] of each URL, for a CSP source list."""
    found = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            found.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(found))


async def send_error(scope: Scope, receive: Receive, send: Send, err: ApiError) -> None:
    """Answers an HTTP request, or refuses a WebSocket handshake with the same status and body."""
    if scope["type"] == "http":
        await err.response()(scope, receive, send)
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps(err.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
        await send({"type": "websocket.http.response.start", "status": err.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": err.reason})


class RequestContext:
    """Binds the request id to the log context and the response, adds the security headers, traces,
    measures and logs each request, and answers a fault nothing else caught with the error body."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        routes: Callable[[], Sequence[BaseRoute]],
        chain_origins: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.chain_origins = tuple(chain_origins)

    def _route(self, scope: Scope) -> str:
        for route in self.routes():
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return "static" if isinstance(route, Mount) else str(getattr(route, "path", "?"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID, "")
        rid = given if _REQUEST_ID.fullmatch(given) else context.new_request_id()
        context.request_id.set(rid)
        context.session_id.set(None)
        path: str = scope["path"]
        started_at = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID] = rid
                for name, value in _SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", _csp(path, self.chain_origins))
                if is_api_path(path):
                    headers.setdefault("Cache-Control", "no-store")
            elif kind == "websocket.accept":
                status = 101
                message["headers"] = [*message.get("headers", []), (REQUEST_ID.lower().encode(), rid.encode())]
            await send(message)

        if scope["type"] == "websocket":
            # The server's own send, for the fan-out's direct path (gateway.fanout.Direct).
            scope[TRANSPORT_SEND] = send
        method = scope.get("method", "WS")
        route = self._route(scope)
        # A trace per HTTP request, continuing the caller's (W3C traceparent); its gRPC calls join it.
        parent = propagate.extract({k: v for k, v in Headers(scope=scope).items() if k in _TRACE_HEADERS})
        span = (
            _tracer.start_as_current_span(f"{method} {route}", context=parent, kind=trace.SpanKind.SERVER)
            if scope["type"] == "http"
            else contextlib.nullcontext()
        )
        try:
            with span as current:
                await self.app(scope, receive, send_with_headers)
                if current is not None:
                    current.set_attribute("http.response.status_code", status)
        except Exception:
            log.exception("request failed", extra={"path": path})
            if status == 0 and scope["type"] == "http":
                await internal_error().response()(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started_at
            if scope["type"] == "http":
                self.metrics.observe(method, route, status or 500, seconds)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )


class BodyLimit:
    """413 for bodies over `max_bytes`: by Content-Length up front, else by counting what arrives. The
    body is read whole before the app sees it (it is small by definition)."""

    # Past this many times the limit the connection is closed after the 413 instead of drained: closing
    # while the client still sends can cost it the response (a reset), but draining gigabytes costs us.
    _DRAIN_FACTOR = 16

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, declared: int = 0) -> ApiError:
        headers = {"Connection": "close"} if declared > self.max_bytes * self._DRAIN_FACTOR else {}
        return from_http_status(413, f"the request body exceeds {self.max_bytes} bytes", headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(scope, receive, send, from_http_status(400, "invalid Content-Length"))
                return
            if int(declared) > self.max_bytes:
                await send_error(scope, receive, send, self._too_large(int(declared)))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(scope, receive, send, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def authenticate(backends: Backends, key: str | None, method: str, address: str) -> Identity | ApiError:
    """The one key check of every edge protocol (the gateway's own routes and Envoy's ext_authz): who `key`
    stands for, rate-limited per tenant, or the error to answer (401; 429 also for strangers, counted per
    client address; 503 when the limiter's store is down and the policy refuses)."""
    identity = backends.keys.identify(key)
    try:
        if identity is None:
            retry_after = await backends.limiter.retry_after_anonymous(address, method)
        else:
            retry_after = await backends.limiter.retry_after(identity.tenant, method)
    except LimiterUnavailable:
        return from_http_status(503, "the rate limiter is unavailable; retry later")
    if retry_after is not None:
        return from_http_status(
            429, f"rate limit exceeded; retry in {retry_after} s", {"Retry-After": str(retry_after)}
        )
    if identity is None:
        err = from_http_status(401, "a valid API key is required in X-API-Key")
        if not key:
            err.reason = "API_KEY_MISSING"
        return err
    return identity


def client_address(scope: Scope) -> str:
    """The client's address (uvicorn has already taken it from X-Forwarded-For when the peer is trusted)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ApiGuard:
    """/api/* and /ws: a known API key (X-API-Key; for /ws also ?api_key=), the tenant's rate limit, and
    for requests without a valid key the client address's."""

    def __init__(self, app: ASGIApp, backends: Callable[[], Backends | None], metrics: Metrics) -> None:
        self.app = app
        self.backends = backends
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        backends = self.backends()
        if backends is None:
            await send_error(scope, receive, send, from_http_status(503, "starting up"))
            return
        key = Headers(scope=scope).get(API_KEY)
        if key is None and scope["type"] == "websocket":
            key = QueryParams(scope.get("query_string", b"")).get("api_key")
        method = scope.get("method", "WS")
        found = await authenticate(backends, key, method, client_address(scope))
        if isinstance(found, ApiError):
            if found.status == 429:
                self.metrics.rate_limited.inc()
            await send_error(scope, receive, send, found)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["identity"] = found
        current_identity.set(found)
        await self.app(scope, receive, send)
