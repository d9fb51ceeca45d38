"""gateway entry point: settings -> app -> uvicorn on a socket of our own (so port 0 reports the bound port).

uvicorn handles SIGINT / SIGTERM: it stops accepting, closes WebSockets, drains requests for
GATEWAY_SHUTDOWN_GRACE_S, then the app's lifespan closes the gRPC channels and Redis."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn
import uvloop
from prometheus_client import start_http_server
from swap_runtime import heap
from swap_runtime.logs import configure_logging
from swap_runtime.tracing import configure_tracing

from gateway.app import create_app
from gateway.config import GatewaySettings

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        heap.settle()  # wired and listening: what exists now lives as long as the process


async def _run(settings: GatewaySettings) -> None:
    sock = bind(settings.host, settings.port)
    app = create_app(settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host, registry=app.state.metrics.registry)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws_ping_interval=settings.ws_ping_s,
        ws_ping_timeout=settings.ws_ping_s,
        ws_max_size=settings.max_body_bytes,
        # Compressing costs a deflate per frame and subscriber (the fan-out sends one update to every one).
        ws_per_message_deflate=settings.ws_per_message_deflate,
        # httptools parses HTTP/1.1 in C (h11 is pure Python).
        http="httptools",
        # The fan-out writes frames straight to this implementation's transport (gateway.fanout.Direct).
        ws="websockets-sansio",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) or 1,
        server_header=False,
        # The client address (rate limits of requests without a key) from X-Forwarded-For of a trusted proxy.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )
    server = _Server(config)

    def stop(sig: int, frame: FrameType | None) -> None:
        # uvicorn handles the signals while it serves and raises them again once it has shut down; ending
        # here instead lets the process exit 0 after a graceful shutdown (and stops one still starting).
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    log.info("listening", extra={"host": settings.host, "port": sock.getsockname()[1]})
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
    log.info("stopped")


def main() -> None:
    settings = GatewaySettings()
    configure_logging(
        "gateway", settings.log_level, settings.log_file, settings.log_file_max_mb, settings.log_file_backups
    )
    configure_tracing("gateway", settings.trace_exporter)
    # uvloop: the event loop in C (libuv); uvicorn's own loop setting only applies to uvicorn.run.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_run(settings))


if __name__ == "__main__":
    main()
