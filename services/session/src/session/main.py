"""session entry point: settings -> wiring -> resume open sessions -> serve."""

from __future__ import annotations

import asyncio
import socket

import redis.asyncio as aioredis
from swap.chain.v1 import chain_pb2_grpc
from swap.quote.v1 import quote_pb2_grpc
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_runtime import tls as transport
from swap_runtime.logs import configure_logging
from swap_runtime.server import GrpcService
from swap_runtime.tracing import client_interceptors, configure_tracing

from session.chains import GrpcChain
from session.config import SessionSettings
from session.metrics import SESSIONS_ACTIVE
from session.quotes import GrpcQuotes
from session.runner import Runner
from session.saga import Heads, Saga, SagaSettings
from session.secrets import SecretBox
from session.service import Sessions
from session.servicer import SessionServicer
from session.store import SessionStore
from session.watchers import Watchers

SERVICE_NAME = session_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name


async def build(settings: SessionSettings) -> tuple[GrpcService, Runner]:
    tls = settings.transport()
    # The saga, the leases and the unary RPCs hold connections only for a command or a transaction:
    # a burst waits briefly for one instead of failing.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, timeout=10, socket_timeout=10
    )
    store = SessionStore(aioredis.Redis(connection_pool=pool), settings.key_prefix, settings.retention_s)
    # WatchSession streams hold a connection for as long as they block on an update stream, so they get a
    # pool of their own: however many watch, they cannot take a connection the saga needs.
    watch_pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.watch_redis_max_connections,
        timeout=settings.watch_pool_timeout_s,
        socket_timeout=10,
    )
    watchers = Watchers(
        aioredis.Redis(connection_pool=watch_pool),
        settings.key_prefix,
        max_streams=settings.watch_max_streams,
        max_per_client=settings.watch_max_per_client,
    )
    channels = {
        name: transport.channel(addr, tls, interceptors=client_interceptors())
        for name, addr in (
            ("base", settings.chain_base_addr),
            ("near", settings.chain_near_addr),
            ("quote", settings.quote_addr),
        )
    }
    chains = {
        name: GrpcChain(
            name, chain_pb2_grpc.ChainServiceStub(channels[name]), settings.rpc_attempts, settings.rpc_timeout_s
        )
        for name in ("base", "near")
    }
    quotes = GrpcQuotes(
        quote_pb2_grpc.QuoteServiceStub(channels["quote"]), settings.rpc_timeout_s, settings.quote_verifier()
    )
    box = SecretBox(settings.key_bytes())
    heads = Heads()
    saga = Saga(
        store,
        chains,
        box,
        SagaSettings(
            retry_delay_s=settings.retry_delay_s,
            sweep_interval_s=settings.sweep_interval_s,
            clock_skew_s=settings.clock_skew_s,
            head_stale_s=settings.head_stale_s,
        ),
        heads=heads,
        schedule=store.schedule,
    )
    # Port 0 (tests) says nothing about who we are: a random id then, never a shared one.
    replica = settings.replica_id or (f"{socket.gethostname()}:{settings.port}" if settings.port else "")
    runner = Runner(
        saga,
        store,
        lease_ttl_s=settings.lease_ttl_s,
        replica_id=replica,
        chains=chains,
        heads=heads,
        sweep_interval_s=settings.sweep_interval_s,
    )
    sessions = Sessions(
        store,
        chains,
        quotes,
        box,
        saga,
        runner,
        order_deadline_s=settings.order_deadline_s,
        max_active_per_maker=settings.max_active_per_maker,
        max_active_per_tenant=settings.max_active_per_tenant,
        max_active_total=settings.max_active_total,
        clock_skew_s=settings.clock_skew_s,
    )
    servicer = SessionServicer(sessions, watchers)

    async def redis_answers() -> bool:
        # The probe also refreshes the active-sessions gauge: one SCARD every few seconds.
        SESSIONS_ACTIVE.set(await store.count_active())
        return True

    async def close_channels() -> None:
        for channel in channels.values():
            await channel.close()

    service = GrpcService(
        name="session",
        service_names=[SERVICE_NAME],
        register=lambda server: session_pb2_grpc.add_SessionServiceServicer_to_server(servicer, server),
        host=settings.host,
        port=settings.port,
        grace_s=settings.shutdown_grace_s,
        metrics_port=settings.metrics_port,
        tls=tls,
        allowed_callers=settings.allowed_callers(),
        closers=[store.close, watchers.close, close_channels, runner.stop],
        checks=[redis_answers],
    )
    return service, runner


async def _run() -> None:
    settings = SessionSettings()
    configure_logging(
        "session", settings.log_level, settings.log_file, settings.log_file_max_mb, settings.log_file_backups
    )
    configure_tracing("session", settings.trace_exporter)
    service, runner = await build(settings)
    await service.start()
    await runner.resume_all()
    await service.serve_until_signalled(started=True)


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
