"""gRPC server bootstrap shared by every service: health, reflection, error mapping, request ids,
and one graceful shutdown path (health NOT_SERVING -> stop accepting -> drain -> close clients)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from swap_runtime import context, heap
from swap_runtime.errors import DomainError, Unavailable
from swap_runtime.logs import redact
from swap_runtime.metrics import RPC_LATENCY, serve_metrics
from swap_runtime.tls import SERVER_OPTIONS, Tls, check_caller
from swap_runtime.tracing import server_interceptors

log = logging.getLogger(__name__)
T = TypeVar("T")

Register = Callable[[grpc.aio.Server], None]
Closer = Callable[[], Awaitable[None]]
# A dependency probe: fails by raising or by returning False.
Check = Callable[[], Awaitable[bool | None]]


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str | None:
    for item in details.invocation_metadata or ():
        if item[0] == key:
            value = item[1]
            return value.decode() if isinstance(value, bytes) else value
    return None


class ContextInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Checks the caller's identity, binds its request / session ids to the context, maps DomainError to a
    rich status and times every call."""

    def __init__(self, service: str, allowed: frozenset[str] = frozenset()) -> None:
        self._service = service
        self._allowed = allowed

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        rid = _metadata_value(details, context.REQUEST_ID_HEADER) or context.new_request_id()
        sid = _metadata_value(details, context.SESSION_ID_HEADER)
        method = details.method

        def bind(ctx: grpc.aio.ServicerContext) -> None:
            context.request_id.set(rid)
            context.session_id.set(sid)
            check_caller(ctx, method, self._allowed)

        async def abort(ctx: grpc.aio.ServicerContext, err: Exception) -> None:
            if not isinstance(err, DomainError):
                # The reply names no detail: exception text can carry calldata, and calldata secrets.
                log.error("rpc failed", extra={"method": method, "error": redact(repr(err))})
                err = DomainError(f"internal error (request {rid})", reason="INTERNAL")
            else:
                log.info("rpc rejected", extra={"method": method, "reason": err.reason, "error": err.message})
            await ctx.abort_with_status(rpc_status.to_status(err.to_status()))

        def observe(started: float, ctx: grpc.aio.ServicerContext) -> None:
            code = ctx.code() if hasattr(ctx, "code") else None
            name = code.name if isinstance(code, grpc.StatusCode) else "OK"
            RPC_LATENCY.labels(self._service, method, name).observe(time.perf_counter() - started)

        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                try:
                    bind(ctx)
                    return await inner_unary(request, ctx)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as err:
                    await abort(ctx, err)
                finally:
                    observe(started, ctx)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                started = time.perf_counter()
                try:
                    bind(ctx)
                    async for item in inner_stream(request, ctx):
                        yield item
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as err:
                    await abort(ctx, err)
                finally:
                    observe(started, ctx)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


async def build_when_available(name: str, build: Callable[[], Awaitable[T]], max_delay_s: float = 5.0) -> T:
    """`build()`, tried again for as long as it takes while what it needs does not answer (an Unavailable:
    a chain RPC cut off, a node still starting), 0.5 s apart and doubling up to `max_delay_s`, each wait
    logged. A service started while its chain is down then comes up when the chain does, as it would after a
    restart, instead of exiting and waiting for a supervisor. Any other error (a wrong chain, a bad setting)
    ends the start."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(Unavailable),
        wait=wait_exponential(multiplier=0.5, max=max_delay_s),
        before_sleep=lambda state: log.warning(
            "waiting for a dependency before starting",
            extra={"service": name, "error": redact(str(state.outcome.exception() if state.outcome else ""))},
        ),
        reraise=True,
    ):
        with attempt:
            return await build()
    raise AssertionError("unreachable: AsyncRetrying either returns or raises")


@dataclass
class GrpcService:
    """A gRPC server with the library health servicer and reflection, ready to start."""

    name: str
    service_names: Sequence[str]
    register: Register
    host: str = "127.0.0.1"
    port: int = 0
    grace_s: float = 5.0
    metrics_port: int = 0
    closers: list[Closer] = field(default_factory=list)
    # Dependency probes (RPC node, Redis, ...): while any fails, health reports NOT_SERVING.
    checks: list[Check] = field(default_factory=list)
    check_interval_s: float = 5.0
    # Mutual TLS (None: plaintext, development only) and the caller identities its methods answer (empty: any
    # certificate the CA signed).
    tls: Tls | None = None
    allowed_callers: frozenset[str] = frozenset()
    server: grpc.aio.Server | None = None
    health: health.aio.HealthServicer | None = None
    bound_port: int = 0
    _probe: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Binds (port 0 = a free port), starts, reports SERVING; returns the bound port."""
        allowed = self.allowed_callers if self.tls is not None else frozenset()
        self.server = grpc.aio.server(
            interceptors=[*server_interceptors(), ContextInterceptor(self.name, allowed)], options=SERVER_OPTIONS
        )
        self.register(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        address = f"{self.host}:{self.port}"
        if self.tls is None:
            self.bound_port = self.server.add_insecure_port(address)
        else:
            self.bound_port = self.server.add_secure_port(address, self.tls.server_credentials())
        await self.server.start()
        await self._set_health(await self._dependencies_ok())
        serve_metrics(self.metrics_port, self.host)
        if self.checks:
            self._probe = asyncio.create_task(self._probe_dependencies())
        log.info(
            "serving",
            extra={"service": self.name, "port": self.bound_port, "transport": "mtls" if self.tls else "plaintext"},
        )
        return self.bound_port

    async def _dependencies_ok(self) -> bool:
        for check in self.checks:
            try:
                if await asyncio.wait_for(check(), self.check_interval_s) is False:
                    return False
            except Exception:
                return False
        return True

    async def _set_health(self, ok: bool) -> None:
        assert self.health is not None
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        for svc in ("", *self.service_names):
            await self.health.set(svc, status)

    async def _probe_dependencies(self) -> None:
        healthy = True
        while True:
            await asyncio.sleep(self.check_interval_s)
            ok = await self._dependencies_ok()
            if ok != healthy:
                log.warning("dependency health changed", extra={"healthy": ok})
                healthy = ok
                await self._set_health(ok)

    async def stop(self) -> None:
        """Health to NOT_SERVING first so balancers move away, then drain calls, then close clients."""
        if self._probe is not None:
            self._probe.cancel()
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(self.grace_s)
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                await close()
        log.info("stopped", extra={"service": self.name})

    async def serve_until_signalled(self, *, started: bool = False) -> None:
        if not started:
            await self.start()
        heap.settle()  # the process is wired and serving: what exists now lives as long as it does
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()
