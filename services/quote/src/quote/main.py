"""quote entry point: settings -> wiring -> serve."""

from __future__ import annotations

import asyncio
import logging

from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.logs import configure_logging
from swap_runtime.quote_token import public_hex
from swap_runtime.server import GrpcService
from swap_runtime.tracing import configure_tracing

from quote.config import QuoteSettings
from quote.issuer import Issuer
from quote.price_source import HttpPriceSource, PriceSource, StaticPriceSource
from quote.pricing import Pricer
from quote.quoter import Quoter
from quote.servicer import QuoteServicer
from quote.store import RedisQuoteStore, WriteBehind

log = logging.getLogger(__name__)
SERVICE_NAME = quote_pb2.DESCRIPTOR.services_by_name["QuoteService"].full_name


def price_source(settings: QuoteSettings) -> PriceSource:
    if settings.price_source == "http":
        return HttpPriceSource(
            settings.price_url,
            timeout_s=settings.price_timeout_s,
            attempts=settings.price_attempts,
            cache_ttl_s=settings.price_cache_s,
        )
    return StaticPriceSource(settings.prices)


async def build(settings: QuoteSettings) -> GrpcService:
    """Wires the service from settings. Redis only keeps the record of issued quotes (written behind): the
    service starts and quotes without it."""
    tls = settings.transport()
    signer = settings.signer()
    store = WriteBehind(
        RedisQuoteStore.from_url(settings.redis_url, settings.redis_prefix),
        max_pending=settings.store_max_pending,
        max_batch=settings.store_batch,
    )
    try:
        await store.ping()
    except Exception as err:
        log.warning("quote store unavailable at start; quoting without it", extra={"error": str(err)})
    store.start()
    prices = price_source(settings)
    pricer = Pricer(
        settings.auction_policy(),
        settings.fee_policy(),
        default_slippage_bps=settings.default_slippage_bps,
        default_urgency=settings.default_urgency,
    )
    registry = settings.registry()
    quoter = Quoter(registry, prices, pricer, settings.swap_terms(), limits=settings.amount_limits())
    servicer = QuoteServicer(Issuer(quoter, signer, store))
    log.info(
        "quoting",
        extra={
            "tokens": [f"{t.symbol}@{t.chain}:{t.token}" for t in registry],
            "price_source": settings.price_source,
            "validity_s": settings.validity_s,
            "signing_key": public_hex(signer.public_key),
        },
    )
    return GrpcService(
        name="quote",
        service_names=[SERVICE_NAME],
        register=lambda server: quote_pb2_grpc.add_QuoteServiceServicer_to_server(servicer, server),
        host=settings.host,
        port=settings.port,
        grace_s=settings.shutdown_grace_s,
        metrics_port=settings.metrics_port,
        tls=tls,
        allowed_callers=settings.allowed_callers(),
        closers=[store.close, prices.close],
    )


async def _run() -> None:
    settings = QuoteSettings()
    configure_logging(
        "quote", settings.log_level, settings.log_file, settings.log_file_max_mb, settings.log_file_backups
    )
    configure_tracing("quote", settings.trace_exporter)
    service = await build(settings)
    await service.serve_until_signalled()


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
