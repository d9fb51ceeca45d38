"""Between the domain's quotes and swap.quote.v1 messages."""

from __future__ import annotations

import functools
from typing import Literal

from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap_runtime.errors import InvalidArgument

from quote.model import Asset, Chain, Quote, TimelockPlan, Timelocks, Token

_CHAIN = {common_pb2.CHAIN_BASE: Chain.BASE, common_pb2.CHAIN_NEAR: Chain.NEAR}
_PB_CHAIN = {chain: pb for pb, chain in _CHAIN.items()}


def asset_from_pb(request: quote_pb2.GetQuoteRequest, side: Literal["src", "dst"]) -> Asset:
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


@functools.lru_cache(maxsize=16)
def _pb_plan(plan: TimelockPlan) -> quote_pb2.TimelockPlan:
    # The plan is the same for every quote of a process: built once (callers copy it into their message).
    return quote_pb2.TimelockPlan(
        src=_pb_timelocks(plan.src), dst=_pb_timelocks(plan.dst), reveal_margin_s=plan.reveal_margin_s
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
        timelocks=_pb_plan(q.timelocks),
        refund_guaranteed_by=q.refund_guaranteed_by,
        src_safety_deposit=str(q.src_safety_deposit),
        dst_safety_deposit=str(q.dst_safety_deposit),
    )
