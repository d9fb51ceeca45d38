"""The swap.quote.v1.QuoteService RPC edge: validates input (naming the field), converts between protobuf
and the domain, and nothing else."""

from __future__ import annotations

from typing import Literal

import grpc
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.errors import InvalidArgument
from swap_runtime.validation import parse_amount

from quote.model import Asset, Chain, Quote, Timelocks, Token
from quote.quoter import Quoter, QuoteRequest

_CHAIN = {common_pb2.CHAIN_BASE: Chain.BASE, common_pb2.CHAIN_NEAR: Chain.NEAR}
_PB_CHAIN = {chain: pb for pb, chain in _CHAIN.items()}


def _asset(request: quote_pb2.GetQuoteRequest, side: Literal["src", "dst"]) -> Asset:
    if not request.HasField(side):
        raise InvalidArgument(side, "required: {chain, token}")
    asset: quote_pb2.Asset = getattr(request, side)
    chain = _CHAIN.get(asset.chain)
    if chain is None:
        raise InvalidArgument(f"{side}.chain", "must be CHAIN_BASE or CHAIN_NEAR")
    return Asset(chain, asset.token)


def _pb_asset(asset: Asset) -> quote_pb2.Asset:
    return quote_pb2.Asset(chain=_PB_CHAIN[asset.chain], token=asset.token)


def asset_info_pb(token: Token) -> quote_pb2.AssetInfo:
    return quote_pb2.AssetInfo(
        asset=_pb_asset(Asset(token.chain, token.token)),
        symbol=token.symbol,
        decimals=token.decimals,
        source=token.source,
        destination=token.destination,
    )


def _pb_timelocks(t: Timelocks) -> common_pb2.Timelocks:
    return common_pb2.Timelocks(
        withdrawal_after_s=t.withdrawal_after_s,
        public_withdrawal_after_s=t.public_withdrawal_after_s,
        cancellation_after_s=t.cancellation_after_s,
        public_cancellation_after_s=t.public_cancellation_after_s,
    )


def quote_to_pb(q: Quote) -> quote_pb2.Quote:
    a = q.auction
    return quote_pb2.Quote(
        quote_id=q.quote_id,
        src=_pb_asset(q.src),
        dst=_pb_asset(q.dst),
        src_amount=str(q.src_amount),
        market_rate=str(q.market_rate),
        auction=quote_pb2.Auction(
            start_amount=str(a.start_amount),
            end_amount=str(a.end_amount),
            start_time=a.start_time,
            duration_s=a.duration_s,
            current_amount=str(a.current_amount),
        ),
        protocol_fee=str(q.protocol_fee),
        network_fee=str(q.network_fee),
        slippage_bps=q.slippage_bps,
        min_received=str(q.min_received),
        issued_at=q.issued_at,
        valid_until=q.valid_until,
        timelocks=quote_pb2.TimelockPlan(
            src=_pb_timelocks(q.timelocks.src),
            dst=_pb_timelocks(q.timelocks.dst),
            reveal_margin_s=q.timelocks.reveal_margin_s,
        ),
        refund_guaranteed_by=q.refund_guaranteed_by,
        src_safety_deposit=str(q.src_safety_deposit),
        dst_safety_deposit=str(q.dst_safety_deposit),
    )


class QuoteServicer(quote_pb2_grpc.QuoteServiceServicer):
    def __init__(self, quoter: Quoter) -> None:
        self._quoter = quoter

    async def GetQuote(
        self, request: quote_pb2.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.GetQuoteResponse:
        src = _asset(request, "src")
        dst = _asset(request, "dst")
        amount = parse_amount("src_amount", request.src_amount)
        quote = await self._quoter.quote(
            QuoteRequest(src, dst, amount, slippage_bps=request.slippage_bps, urgency=request.urgency)
        )
        return quote_pb2.GetQuoteResponse(quote=quote_to_pb(quote))

    async def LookupQuote(
        self, request: quote_pb2.LookupQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.LookupQuoteResponse:
        if not request.quote_id:
            raise InvalidArgument("quote_id", "required")
        quote = await self._quoter.lookup(request.quote_id)
        return quote_pb2.LookupQuoteResponse(quote=quote_to_pb(quote))

    async def ListAssets(
        self, request: quote_pb2.ListAssetsRequest, context: grpc.aio.ServicerContext
    ) -> quote_pb2.ListAssetsResponse:
        return quote_pb2.ListAssetsResponse(assets=[asset_info_pb(t) for t in self._quoter.assets()])
