"""Making quotes: checks the pair and the amount, prices it and attaches the swap terms (timelocks, safety
deposits, validity). Signing, keeping and looking up issued quotes is quote.issuer's."""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from swap_runtime.errors import InvalidArgument

from quote.model import NATIVE, Asset, Chain, Clock, Quote, TimelockPlan, Token
from quote.price_source import PriceSource
from quote.pricing import Pricer
from quote.tokens import TokenRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AmountLimit:
    """Bounds of the source amount of one token symbol, in whole tokens (None = unbounded)."""

    min: Decimal | None = None
    max: Decimal | None = None


@dataclass(frozen=True)
class SwapTerms:
    validity_s: int
    timelocks: TimelockPlan
    # Time the maker's source lock may take to land after the quote is issued.
    lock_allowance_s: int
    safety_deposits: Mapping[Chain, int]


@dataclass(frozen=True)
class QuoteRequest:
    src: Asset
    dst: Asset
    src_amount: int
    slippage_bps: int = 0
    urgency: float = 0.0


def _wrong_side(token: Token, side: str) -> str:
    role = "source" if side == "src" else "destination"
    name = f"native {token.symbol}" if token.token == NATIVE else f"{token.symbol} ({token.token})"
    if side == "src" and token.chain is Chain.BASE and token.token == NATIVE:
        why = "source locks hold ERC-20 tokens"
    else:
        why = f"this service quotes it only as a {'destination' if side == 'src' else 'source'}"
    return f"{name} cannot be a swap's {role} on {token.chain}: {why}"


def new_serial() -> str:
    """32 lowercase hex digits: what a quote is kept and looked up by; its id is the signed token of it."""
    return secrets.token_hex(16)


class Quoter:
    def __init__(
        self,
        registry: TokenRegistry,
        prices: PriceSource,
        pricer: Pricer,
        terms: SwapTerms,
        *,
        limits: Mapping[str, AmountLimit] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._registry = registry
        self._prices = prices
        self._pricer = pricer
        self._terms = terms
        self._limits = dict(limits or {})
        self._clock = clock
        # Per token: its source amount bounds in base units (None = unbounded), worked out once.
        self._bounds: dict[Token, tuple[int | None, int | None]] = {}

    def _token(self, side: str, asset: Asset) -> Token:
        if not asset.token:
            raise InvalidArgument(f"{side}.token", 'required: a token address / account id, or "native"')
        token = self._registry.find(asset.chain, asset.token)
        if token is None:
            raise InvalidArgument(f"{side}.token", f"{asset.token} is not a token quoted on {asset.chain}")
        if not (token.source if side == "src" else token.destination):
            raise InvalidArgument(f"{side}.token", _wrong_side(token, side))
        return token

    def _check_limits(self, token: Token, amount: int) -> None:
        bounds = self._bounds.get(token)
        if bounds is None:
            limit = self._limits.get(token.symbol, AmountLimit())
            scale = 10**token.decimals
            bounds = (
                None if limit.min is None else math.ceil(limit.min * scale),
                None if limit.max is None else math.floor(limit.max * scale),
            )
            self._bounds[token] = bounds
        low, high = bounds
        if low is not None and amount < low:
            limit = self._limits[token.symbol]
            raise InvalidArgument("src_amount", f"below the minimum of {low} ({limit.min} {token.symbol})")
        if high is not None and amount > high:
            limit = self._limits[token.symbol]
            raise InvalidArgument("src_amount", f"above the maximum of {high} ({limit.max} {token.symbol})")

    async def quote(self, request: QuoteRequest) -> Quote:
        if request.src.chain == request.dst.chain:
            raise InvalidArgument("dst.chain", f"must differ from src.chain ({request.src.chain})")
        src = self._token("src", request.src)
        dst = self._token("dst", request.dst)
        if request.src_amount <= 0:
            raise InvalidArgument("src_amount", "must be greater than zero")
        self._check_limits(src, request.src_amount)
        slippage_bps = self._pricer.slippage(request.slippage_bps)
        urgency = self._pricer.urgency(request.urgency)

        natives = {chain: self._registry.native(chain) for chain in (src.chain, dst.chain)}
        symbols = sorted({src.symbol, dst.symbol, *(t.symbol for t in natives.values())})
        usd = await self._prices.usd_prices(symbols)

        now = self._clock()
        issued_at = math.floor(now)
        priced = self._pricer.price(
            src, dst, request.src_amount, usd, natives, slippage_bps=slippage_bps, urgency=urgency, now=issued_at
        )
        terms = self._terms
        quote = Quote(
            quote_id=new_serial(),
            src=Asset(src.chain, src.token),
            dst=Asset(dst.chain, dst.token),
            src_amount=request.src_amount,
            market_rate=priced.market_rate,
            auction=priced.auction,
            protocol_fee=priced.protocol_fee,
            network_fee=priced.network_fee,
            slippage_bps=priced.slippage_bps,
            min_received=priced.min_received,
            issued_at=issued_at,
            valid_until=issued_at + terms.validity_s,
            timelocks=terms.timelocks,
            refund_guaranteed_by=issued_at + terms.timelocks.src.public_cancellation_after_s + terms.lock_allowance_s,
            src_safety_deposit=terms.safety_deposits[src.chain],
            dst_safety_deposit=terms.safety_deposits[dst.chain],
        )
        return quote

    def assets(self) -> list[Token]:
        """The registry's tokens, with the sides of a swap each can be on."""
        return list(self._registry)
