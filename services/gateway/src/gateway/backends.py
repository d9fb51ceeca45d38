"""What the gateway talks to: the session and quote services over grpc.aio, Redis (rate limits, create
idempotency). Opened in the app's lifespan, closed at shutdown."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from swap.quote.v1 import quote_pb2_grpc
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_runtime.context import outgoing_metadata
from swap_runtime.tls import channel
from swap_runtime.tracing import client_interceptors

from gateway.auth import KeyRing, identity_metadata
from gateway.config import GatewaySettings
from gateway.errors import from_rpc_error, internal_error
from gateway.health import HealthMonitor
from gateway.ratelimit import RateLimiter

log = logging.getLogger(__name__)

R = TypeVar("R")

# Idempotency marks live as long as the session service remembers a request id.
_CREATE_MARK_TTL_S = 7 * 24 * 3600
# A restarted service is found again within seconds (gRPC's default backoff grows to two minutes).
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000)]


def call_metadata() -> tuple[tuple[str, str], ...]:
    """The request's ids and the tenant the guard authenticated; a call on behalf of nobody is a bug, and
    would read as the operator to the session service, so it is refused."""
    tenant = identity_metadata()
    if not tenant:
        raise internal_error()
    return (*outgoing_metadata(), *tenant)


class Backends:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.keys = KeyRing(settings.api_key_hashes, settings.api_keys, settings.operator_tenants)
        tls = settings.transport()
        self._session_channel = channel(
            settings.session_addr, tls, options=_CHANNEL_OPTIONS, interceptors=client_interceptors()
        )
        self._quote_channel = channel(
            settings.quote_addr, tls, options=_CHANNEL_OPTIONS, interceptors=client_interceptors()
        )
        self.sessions = session_pb2_grpc.SessionServiceStub(self._session_channel)
        self.quotes = quote_pb2_grpc.QuoteServiceStub(self._quote_channel)
        self.redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.limiter = RateLimiter(
            settings.rate_limit,
            settings.redis_url,
            self.redis,
            settings.key_prefix,
            anon_limit=settings.anon_rate_limit,
            fail_open_reads=settings.rate_limit_fail_open_reads,
            fail_open_writes=settings.rate_limit_fail_open_writes,
        )
        self.health = HealthMonitor(settings, tls, self._session_channel, self._quote_channel, self.redis)
        if not self.keys:
            log.warning("no API keys configured: every /api and /ws request is refused")

    async def call(self, service: str, method: Callable[..., Awaitable[R]], request: Any) -> R:
        """One unary call with the request's ids and the caller's tenant in metadata; a failure becomes the
        mapped ApiError."""
        try:
            return await method(request, timeout=self.settings.rpc_timeout_s, metadata=call_metadata())
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, service) from None

    async def get_session(self, session_id: str) -> session_pb2.Session:
        reply = await self.call(
            "session", self.sessions.GetSession, session_pb2.GetSessionRequest(session_id=session_id)
        )
        session: session_pb2.Session = reply.session
        return session

    async def first_create(self, scoped_request_id: str) -> bool:
        """True the first time a create request id is seen (201), False on a repeat (200).

        Redis failing costs only the distinction: the session service itself keeps creation idempotent."""
        try:
            fresh = await self.redis.set(
                f"{self.settings.key_prefix}create:{scoped_request_id}", "1", nx=True, ex=_CREATE_MARK_TTL_S
            )
        except RedisError as err:
            log.warning("create mark unavailable", extra={"error": repr(err)})
            return True
        return bool(fresh)

    async def forget_create(self, scoped_request_id: str) -> None:
        try:
            await self.redis.delete(f"{self.settings.key_prefix}create:{scoped_request_id}")
        except RedisError as err:
            log.warning("create mark not removed", extra={"error": repr(err)})

    async def close(self) -> None:
        for close in (self.health.close, self._session_channel.close, self._quote_channel.close, self.redis.aclose):
            try:
                await close()
            except Exception as err:
                log.warning("close failed", extra={"error": repr(err)})
