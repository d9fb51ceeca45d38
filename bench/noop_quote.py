"""`python -m bench.noop_quote`: a QuoteService whose GetQuote returns one constant reply, on the same
server setup as the real service (swap_runtime.server.GrpcService: interceptors, health, reflection), on
the port in BENCH_NOOP_QUOTE_PORT, with mutual TLS when BENCH_TLS_DIR names a certificate directory. The
floor a GetQuote call costs through gRPC in Python."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.server import GrpcService
from swap_runtime.tls import Tls

SERVICE_NAME = quote_pb2.DESCRIPTOR.services_by_name["QuoteService"].full_name

REPLY = quote_pb2.GetQuoteResponse(
    quote=quote_pb2.Quote(
        quote_id="n" * 480,
        src_amount="10000000",
        market_rate="1000000000000000000",
        auction=quote_pb2.Auction(
            start_amount="10050000", end_amount="9950000", start_time=1, duration_s=60, current_amount="10050000"
        ),
        protocol_fee="0",
        network_fee="0",
        slippage_bps=50,
        min_received="9900000",
        issued_at=1,
        valid_until=61,
    )
)


class NoopQuoteServicer(quote_pb2_grpc.QuoteServiceServicer):
    async def GetQuote(
        self, request: quote_pb2.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.GetQuoteResponse:
        return REPLY

    async def LookupQuote(
        self, request: quote_pb2.LookupQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.LookupQuoteResponse:
        return quote_pb2.LookupQuoteResponse(quote=REPLY.quote)

    async def ListAssets(
        self, request: quote_pb2.ListAssetsRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.ListAssetsResponse:
        return quote_pb2.ListAssetsResponse()


async def _serve(port: int, tls_dir: str | None) -> None:
    servicer = NoopQuoteServicer()
    service = GrpcService(
        name="quote-noop",
        service_names=[SERVICE_NAME],
        register=lambda server: quote_pb2_grpc.add_QuoteServiceServicer_to_server(servicer, server),
        port=port,
        tls=Tls.load(Path(tls_dir)) if tls_dir else None,
        # The callers the real quote service answers (QUOTE_TLS_CLIENTS' default): each call's certificate is
        # checked here as there.
        allowed_callers=frozenset({"session", "gateway", "envoy", "operator"}),
    )
    await service.serve_until_signalled()


if __name__ == "__main__":
    asyncio.run(_serve(int(os.environ["BENCH_NOOP_QUOTE_PORT"]), os.environ.get("BENCH_TLS_DIR")))
