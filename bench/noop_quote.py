"""`python -m bench.noop_quote`: a QuoteService whose GetQuote returns one constant reply, on the same
server setup as the real service (swap_runtime.server.GrpcService: interceptors, health, reflection), on
the port in BENCH_NOOP_QUOTE_PORT, with mutual TLS when BENCH_TLS_DIR names a certificate directory. The
floor a GetQuote call costs through gRPC in Python.

With BENCH_NOOP_QUOTE_SIGNED=1 every call signs instead: the constant quote's terms are signed with Ed25519
exactly as the quote service signs a quote (swap_runtime.quote_token.QuoteSigner) and the token goes into a
copy of the constant reply (the same token every time, since Ed25519 signatures are deterministic). The
floor of a service that hands out signed quotes: the signature and nothing else of a quote's work."""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

import grpc
from nacl.signing import SigningKey
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.quote_token import KEY_ID_BYTES, SIGNATURE_BYTES, QuoteSigner
from swap_runtime.server import GrpcService
from swap_runtime.tls import Tls

SERVICE_NAME = quote_pb2.DESCRIPTOR.services_by_name["QuoteService"].full_name

BASE_TOKEN, NEAR_TOKEN = "0x" + "ab" * 20, "tusd.test.near"
# A quote of the real service's shape and size (10 TUSD BASE -> NEAR), its quote_id the serial a token holds.
TERMS = quote_pb2.Quote(
    quote_id="0" * 32,
    src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=BASE_TOKEN),
    dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=NEAR_TOKEN),
    src_amount="10000000",
    market_rate="1000000000000000000",
    auction=quote_pb2.Auction(
        start_amount="10064500", end_amount="9914500", start_time=1796137596, duration_s=60, current_amount="10064500"
    ),
    protocol_fee="10000",
    network_fee="25500",
    slippage_bps=50,
    min_received="9864927",
    issued_at=1796137596,
    valid_until=1796137626,
    timelocks=quote_pb2.TimelockPlan(
        src=common_pb2.Timelocks(
            withdrawal_after_s=2,
            public_withdrawal_after_s=240,
            cancellation_after_s=360,
            public_cancellation_after_s=420,
        ),
        dst=common_pb2.Timelocks(
            withdrawal_after_s=1,
            public_withdrawal_after_s=120,
            cancellation_after_s=240,
            public_cancellation_after_s=300,
        ),
        reveal_margin_s=60,
    ),
    refund_guaranteed_by=1796138076,
    src_safety_deposit="1000000000000000",
    dst_safety_deposit="10000000000000000000000",
)
TERMS_BYTES = TERMS.SerializeToString(deterministic=True)
# As long as a token of those terms: base64url of a 73-byte header and signature, then the terms.
TOKEN_CHARS = math.ceil((1 + KEY_ID_BYTES + SIGNATURE_BYTES + len(TERMS_BYTES)) * 4 / 3)
REPLY = quote_pb2.GetQuoteResponse(quote=TERMS)
REPLY.quote.quote_id = "n" * TOKEN_CHARS


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


class SignedNoopQuoteServicer(NoopQuoteServicer):
    def __init__(self) -> None:
        self._signer = QuoteSigner(SigningKey.generate())

    async def GetQuote(
        self, request: quote_pb2.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.GetQuoteResponse:
        reply = quote_pb2.GetQuoteResponse()
        reply.CopyFrom(REPLY)
        reply.quote.quote_id = self._signer.seal(TERMS_BYTES)
        return reply


async def _serve(port: int, tls_dir: str | None, signed: bool) -> None:
    servicer = SignedNoopQuoteServicer() if signed else NoopQuoteServicer()
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
    asyncio.run(
        _serve(
            int(os.environ["BENCH_NOOP_QUOTE_PORT"]),
            os.environ.get("BENCH_TLS_DIR"),
            os.environ.get("BENCH_NOOP_QUOTE_SIGNED") == "1",
        )
    )
