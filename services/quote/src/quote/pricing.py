"""Pricing of a swap: the market amount, the Dutch auction over the destination amount, fees and the floor.

Arithmetic is exact (fractions.Fraction over integer base units and Decimal USD prices) and is rounded only
where a value becomes base units: down for what the receiver gets, up for fees, so that rounding never
favours the receiver at the resolver's expense.

With A the source amount in base units, P_x the USD price of token x and d_x its decimals:

    market amount   M = A * P_src / 10^d_src * 10^d_dst / P_dst               (destination base units, exact)
    market rate       = floor(10^18 * P_src / 10^d_src * 10^d_dst / P_dst)      (per 10^18 source base units)

Urgency u (1 = normal, allowed 0.5..4) makes the auction start lower and run shorter when u > 1:

    premium         p = premium_bps / u                 (bps)
    duration        T = max(1, floor(duration_s / u))   (seconds)
    gross start     S = floor(M * (10^4 + p) / 10^4)
    gross end       E = floor(M * (10^4 - discount_bps) / 10^4)
    gross at t      X(t) = S                                        for t <= t0
                    X(t) = E + floor((S - E) * (t0 + T - t) / T)    for t0 <= t <= t0 + T
                    X(t) = E                                        for t >= t0 + T

where t0 is the issue time of the quote, so the current amount of a fresh quote is S.

    protocol fee    F_p = ceil(M * protocol_fee_bps / 10^4)
    network fee     F_n = ceil(sum over both legs of  gas_leg * gas_price_chain * P_native_chain
                                                      / 10^d_native_chain * 10^d_dst / P_dst)

The source leg (lock and withdrawal on the source chain) pays the source chain's gas price in its native token,
the destination leg the destination chain's. Both fees come off every auction amount:

    start_amount    = S - F_p - F_n
    end_amount      = E - F_p - F_n
    current_amount  = X(now) - F_p - F_n
    min_received    = floor(end_amount * (10^4 - slippage_bps) / 10^4)

A quote whose min_received is not positive is refused (AMOUNT_TOO_SMALL): the fees eat the whole amount.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from swap_runtime.errors import FailedPrecondition, InvalidArgument

from quote.model import Auction, Chain, Token

BPS = 10_000
RATE_SCALE = 10**18
MAX_SLIPPAGE_BPS = 5_000
MIN_URGENCY = Fraction(1, 2)
MAX_URGENCY = Fraction(4)


@dataclass(frozen=True)
class AuctionPolicy:
    premium_bps: int
    discount_bps: int
    duration_s: int


@dataclass(frozen=True)
class LegGas:
    """Gas the resolver's transactions of one swap leg burn on a chain, and the price it pays per unit."""

    src_leg: int  # creating the source lock and withdrawing from it
    dst_leg: int  # creating the destination lock and the receiver's withdrawal
    price: int  # native base units per gas unit


@dataclass(frozen=True)
class FeePolicy:
    protocol_fee_bps: int
    gas: Mapping[Chain, LegGas]


@dataclass(frozen=True)
class _Pair:
    """A pair at given prices: the market amount of A source base units is A * num / den destination units."""

    num: int
    den: int
    market_rate: int
    network_fee: int


@dataclass(frozen=True)
class Pricing:
    market_amount: int
    market_rate: int
    auction: Auction
    protocol_fee: int
    network_fee: int
    slippage_bps: int
    min_received: int


def unit(token: Token) -> int:
    """Base units in one whole token."""
    one: int = 10**token.decimals
    return one


def market_amount(src_amount: int, src: Token, dst: Token, src_usd: Decimal, dst_usd: Decimal) -> Fraction:
    """What src_amount of src is worth in destination base units at the USD prices, exactly."""
    return Fraction(src_amount) * Fraction(src_usd) * unit(dst) / (Fraction(dst_usd) * unit(src))


def market_rate(src: Token, dst: Token, src_usd: Decimal, dst_usd: Decimal) -> int:
    return math.floor(market_amount(RATE_SCALE, src, dst, src_usd, dst_usd))


def gross_auction(market: Fraction, policy: AuctionPolicy, urgency: Fraction, start_time: int) -> Auction:
    """The auction before fees; current_amount is its value at start_time."""
    premium = Fraction(policy.premium_bps) / urgency
    duration = max(1, math.floor(Fraction(policy.duration_s) / urgency))
    start = math.floor(market * (BPS + premium) / BPS)
    end = math.floor(market * (BPS - policy.discount_bps) / BPS)
    return Auction(start, end, start_time, duration, start)


def amount_at(auction: Auction, t: int) -> int:
    """The auction's destination amount at unix time t: linear from start to end, rounded down."""
    if t <= auction.start_time:
        return auction.start_amount
    remaining = auction.start_time + auction.duration_s - t
    if remaining <= 0:
        return auction.end_amount
    spread = auction.start_amount - auction.end_amount
    return auction.end_amount + spread * remaining // auction.duration_s


def protocol_fee(market: Fraction, fee_bps: int) -> int:
    return math.ceil(market * fee_bps / BPS)


def network_fee(legs: list[tuple[int, Token, Decimal]], dst: Token, dst_usd: Decimal) -> int:
    """Native costs (base units of the given native token, at its USD price) in destination base units."""
    usd = sum((Fraction(cost) * Fraction(price) / unit(native) for cost, native, price in legs), Fraction(0))
    return math.ceil(usd * unit(dst) / Fraction(dst_usd))


def min_received(end_amount: int, slippage_bps: int) -> int:
    return end_amount * (BPS - slippage_bps) // BPS


def check_slippage(bps: int) -> int:
    if not 0 <= bps <= MAX_SLIPPAGE_BPS:
        raise InvalidArgument("slippage_bps", f"must be between 0 and {MAX_SLIPPAGE_BPS}, got {bps}")
    return bps


def check_urgency(value: float) -> Fraction:
    """The urgency as an exact fraction of its shortest decimal spelling (1.1 is 11/10, not a binary float)."""
    if not math.isfinite(value) or not MIN_URGENCY <= Fraction(repr(value)) <= MAX_URGENCY:
        raise InvalidArgument("urgency", f"must be between {float(MIN_URGENCY)} and {float(MAX_URGENCY)}, got {value}")
    return Fraction(repr(value))


class Pricer:
    def __init__(
        self,
        auction: AuctionPolicy,
        fees: FeePolicy,
        *,
        default_slippage_bps: int,
        default_urgency: float,
    ) -> None:
        self._auction = auction
        self._fees = fees
        self._default_slippage_bps = check_slippage(default_slippage_bps)
        self._default_urgency = check_urgency(default_urgency)

    def slippage(self, bps: int) -> int:
        """The request's tolerance; 0 stands for the service default."""
        return self._default_slippage_bps if bps == 0 else check_slippage(bps)

    def urgency(self, value: float) -> Fraction:
        """The request's urgency; 0 stands for the service default."""
        return self._default_urgency if value == 0 else check_urgency(value)

    def price(
        self,
        src: Token,
        dst: Token,
        src_amount: int,
        usd: Mapping[str, Decimal],
        natives: Mapping[Chain, Token],
        *,
        slippage_bps: int,
        urgency: Fraction,
        now: int,
    ) -> Pricing:
        """Prices src_amount of src into dst at the USD prices by symbol (natives included) at unix time now.

        The formulas of the module docstring, in integers: the market amount is src_amount * num / den, every
        rounding is a floor or ceiling of one integer quotient (the same values as the Fraction functions
        above, which the tests hold it to), and what does not depend on the amount is computed once per pair
        and prices."""
        src_usd, dst_usd = usd[src.symbol], usd[dst.symbol]
        src_native, dst_native = natives[src.chain], natives[dst.chain]
        pair = self._pair(
            src, dst, src_usd, dst_usd, src_native, usd[src_native.symbol], dst_native, usd[dst_native.symbol]
        )
        policy = self._auction
        un, ud = urgency.numerator, urgency.denominator
        value = src_amount * pair.num  # market = value / pair.den
        # premium = premium_bps / urgency: start = floor(market * (BPS + premium) / BPS)
        start = value * (BPS * un + policy.premium_bps * ud) // (pair.den * BPS * un)
        end = value * (BPS - policy.discount_bps) // (pair.den * BPS)
        duration = max(1, policy.duration_s * ud // un)
        fee = -(-value * self._fees.protocol_fee_bps // (pair.den * BPS))
        gas_fee = pair.network_fee
        fees = fee + gas_fee
        gross = Auction(start, end, now, duration, start)
        auction = Auction(
            start_amount=start - fees,
            end_amount=end - fees,
            start_time=now,
            duration_s=duration,
            current_amount=amount_at(gross, now) - fees,
        )
        floor = min_received(auction.end_amount, slippage_bps)
        if floor <= 0:
            raise FailedPrecondition(
                f"src_amount {src_amount} is too small: fees of {fees} {dst.symbol} base units "
                f"(protocol {fee}, network {gas_fee}) leave nothing to receive",
                reason="AMOUNT_TOO_SMALL",
                metadata={"protocol_fee": str(fee), "network_fee": str(gas_fee)},
            )
        return Pricing(
            market_amount=value // pair.den,
            market_rate=pair.market_rate,
            auction=auction,
            protocol_fee=fee,
            network_fee=gas_fee,
            slippage_bps=slippage_bps,
            min_received=floor,
        )

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one Pricer per process, kept for its whole life
    def _pair(
        self,
        src: Token,
        dst: Token,
        src_usd: Decimal,
        dst_usd: Decimal,
        src_native: Token,
        src_native_usd: Decimal,
        dst_native: Token,
        dst_native_usd: Decimal,
    ) -> _Pair:
        """What every amount of a pair at these prices shares: the market ratio, the rate, the network fee."""
        ratio = Fraction(src_usd) * unit(dst) / (Fraction(dst_usd) * unit(src))
        gas = self._fees.gas
        legs = [
            (gas[src.chain].src_leg * gas[src.chain].price, src_native, src_native_usd),
            (gas[dst.chain].dst_leg * gas[dst.chain].price, dst_native, dst_native_usd),
        ]
        return _Pair(
            num=ratio.numerator,
            den=ratio.denominator,
            market_rate=market_rate(src, dst, src_usd, dst_usd),
            network_fee=network_fee(legs, dst, dst_usd),
        )
