"""The swap.quote.v1.QuoteService RPC edge: validates input (naming the field), converts between protobuf
and the domain, and nothing else."""

from __future__ import annotations

import grpc
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.errors import InvalidArgument
from swap_runtime.validation import parse_amount

from quote.issuer import Issuer
from quote.quoter import QuoteRequest
from quote.wire import asset_from_pb, asset_info_pb


class QuoteServicer(quote_pb2_grpc.QuoteServiceServicer):
    def __init__(self, issuer: Issuer) -> None:
        self._issuer = issuer

    async def GetQuote(
        self, request: quote_pb2.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.GetQuoteResponse:
        src = asset_from_pb(request, "src")
        dst = asset_from_pb(request, "dst")
        amount = parse_amount("src_amount", request.src_amount)
        quote = await self._issuer.issue(
            QuoteRequest(src, dst, amount, slippage_bps=request.slippage_bps, urgency=request.urgency)
        )
        return quote_pb2.GetQuoteResponse(quote=quote)

    async def LookupQuote(
        self, request: quote_pb2.LookupQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.LookupQuoteResponse:
        if not request.quote_id:
            raise InvalidArgument("quote_id", "required")
        return quote_pb2.LookupQuoteResponse(quote=await self._issuer.lookup(request.quote_id))

    async def ListAssets(
        self, request: quote_pb2.ListAssetsRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.ListAssetsResponse:
        return quote_pb2.ListAssetsResponse(assets=[asset_info_pb(t) for t in self._issuer.assets()])
