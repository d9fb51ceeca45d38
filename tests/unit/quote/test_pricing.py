"""The auction math on exact numbers: conversion by decimals, urgency, linear decay, fees, the slippage floor,
and the rounding direction of every amount."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quote.model import NATIVE, Auction, Chain, Token
from quote.pricing import (
    AuctionPolicy,
    FeePolicy,
    LegGas,
    Pricer,
    amount_at,
    gross_auction,
    market_amount,
    market_rate,
    min_received,
    network_fee,
    protocol_fee,
)
from swap_runtime.errors import FailedPrecondition, InvalidArgument

TUSD_BASE = Token(Chain.BASE, "0x1111111111111111111111111111111111111111", "TUSD", 6)
TUSD_NEAR = Token(Chain.NEAR, "tusd.test.near", "TUSD", 6)
ETH = Token(Chain.BASE, NATIVE, "ETH", 18)
NEAR = Token(Chain.NEAR, NATIVE, "NEAR", 24)
NATIVES = {Chain.BASE: ETH, Chain.NEAR: NEAR}
USD = {"TUSD": Decimal(1), "ETH": Decimal(3000), "NEAR": Decimal(3)}
NOW = 1_700_000_000

POLICY = AuctionPolicy(premium_bps=100, discount_bps=50, duration_s=60)
NO_GAS = FeePolicy(protocol_fee_bps=0, gas={c: LegGas(0, 0, 0) for c in Chain})


def pricer(policy: AuctionPolicy = POLICY, fees: FeePolicy = NO_GAS, slippage: int = 50) -> Pricer:
    return Pricer(policy, fees, default_slippage_bps=slippage, default_urgency=1.0)


def test_market_amount_converts_through_usd_and_decimals() -> None:
    # 3 TUSD at $1 is 1 NEAR at $3: 3 * 10^6 base units -> 10^24 yoctoNEAR.
    assert market_amount(3_000_000, TUSD_BASE, NEAR, Decimal(1), Decimal(3)) == 10**24
    # 1 ETH at $3000 is 3000 TUSD.
    assert market_amount(10**18, ETH, TUSD_NEAR, Decimal(3000), Decimal(1)) == 3_000_000_000
    # Exact: one TUSD base unit is a third of 10^18 yoctoNEAR, not a float near it.
    assert market_amount(1, TUSD_BASE, NEAR, Decimal(1), Decimal(3)) == Fraction(10**18, 3)


def test_market_rate_is_per_10_18_source_units_rounded_down() -> None:
    assert market_rate(ETH, TUSD_NEAR, Decimal(3000), Decimal(1)) == 3_000_000_000
    assert market_rate(TUSD_BASE, NEAR, Decimal(1), Decimal(3)) == 10**36 // 3
    assert market_rate(NEAR, TUSD_BASE, Decimal(3), Decimal("1.01")) == 2  # 2.97..., down


def test_gross_auction_at_urgency_one() -> None:
    a = gross_auction(Fraction(1_000_000), POLICY, Fraction(1), NOW)
    assert a == Auction(
        start_amount=1_010_000, end_amount=995_000, start_time=NOW, duration_s=60, current_amount=1_010_000
    )


@pytest.mark.parametrize(
    ("urgency", "start", "duration"),
    [
        (Fraction(2), 1_005_000, 30),  # premium / 2, duration / 2
        (Fraction(4), 1_002_500, 15),
        (Fraction(1, 2), 1_020_000, 120),  # premium x 2, duration x 2
        (Fraction(3, 2), 1_006_666, 40),  # 100 / 1.5 bps = 66.66.. bps, rounded down
    ],
)
def test_urgency_scales_premium_and_duration(urgency: Fraction, start: int, duration: int) -> None:
    a = gross_auction(Fraction(1_000_000), POLICY, urgency, NOW)
    assert (a.start_amount, a.end_amount, a.duration_s) == (start, 995_000, duration)


def test_duration_never_drops_below_one_second() -> None:
    a = gross_auction(Fraction(10**6), AuctionPolicy(100, 50, 1), Fraction(4), NOW)
    assert a.duration_s == 1


def test_auction_decays_linearly_and_rounds_down() -> None:
    a = Auction(start_amount=1_000, end_amount=900, start_time=NOW, duration_s=60, current_amount=1_000)
    assert amount_at(a, NOW - 5) == 1_000
    assert amount_at(a, NOW) == 1_000
    assert amount_at(a, NOW + 30) == 950
    assert amount_at(a, NOW + 1) == 998  # 900 + 100 * 59 / 60 = 998.33.. -> 998
    assert amount_at(a, NOW + 60) == 900
    assert amount_at(a, NOW + 600) == 900
    values = [amount_at(a, NOW + t) for t in range(-2, 64)]
    assert values == sorted(values, reverse=True)
    for t in range(61):
        assert amount_at(a, NOW + t) == math.floor(900 + Fraction(100 * (60 - t), 60))


def test_fees_round_up() -> None:
    assert protocol_fee(Fraction(1_000_001), 10) == 1_001  # 1000.001 -> 1001
    assert protocol_fee(Fraction(1_000_000), 10) == 1_000
    assert protocol_fee(Fraction(10**9), 0) == 0
    # 2.5e12 wei at $3000 ($0.0075) + 6e21 yocto at $3 ($0.018) = $0.0255 -> 25_500 TUSD base units.
    legs = [(2_500_000_000_000, ETH, Decimal(3000)), (6 * 10**21, NEAR, Decimal(3))]
    assert network_fee(legs, TUSD_NEAR, Decimal(1)) == 25_500
    # $0.0255 in NEAR at $3 is 0.0085 NEAR, in ETH at $3000 is 8.5e-6 ETH.
    assert network_fee(legs, NEAR, Decimal(3)) == 85 * 10**20
    assert network_fee([(1, ETH, Decimal(3000))], TUSD_BASE, Decimal(1)) == 1  # 3e-15 $, up to one unit


def test_min_received_rounds_down() -> None:
    assert min_received(1_000_000, 50) == 995_000
    assert min_received(999, 50) == 994  # 994.005 -> 994
    assert min_received(1_000, 0) == 1_000


def test_price_deducts_both_fees_from_every_amount() -> None:
    fees = FeePolicy(
        protocol_fee_bps=10,
        gas={Chain.BASE: LegGas(250_000, 200_000, 10_000_000), Chain.NEAR: LegGas(60 * 10**12, 60 * 10**12, 10**8)},
    )
    p = pricer(fees=fees).price(
        TUSD_BASE, TUSD_NEAR, 100_000_000, USD, NATIVES, slippage_bps=50, urgency=Fraction(1), now=NOW
    )
    # market 100 TUSD; protocol 0.1 TUSD; network: BASE source leg 2.5e12 wei ($0.0075) + NEAR dst leg 6e21 ($0.018)
    assert p.market_amount == 100_000_000
    assert p.protocol_fee == 100_000
    assert p.network_fee == 25_500
    fee = 125_500
    assert p.auction == Auction(
        start_amount=101_000_000 - fee,
        end_amount=99_500_000 - fee,
        start_time=NOW,
        duration_s=60,
        current_amount=101_000_000 - fee,
    )
    assert p.min_received == (99_500_000 - fee) * 9_950 // 10_000
    assert p.market_rate == 10**18


def test_network_fee_uses_the_source_leg_on_the_source_chain() -> None:
    fees = FeePolicy(0, {Chain.BASE: LegGas(src_leg=1_000, dst_leg=1, price=10**9), Chain.NEAR: LegGas(1, 0, 1)})
    p = pricer(fees=fees).price(
        TUSD_BASE, TUSD_NEAR, 100_000_000, USD, NATIVES, slippage_bps=50, urgency=Fraction(1), now=NOW
    )
    # 1000 gas x 1 gwei = 1e12 wei = $0.003 = 3000 TUSD units; the NEAR dst leg is free.
    assert p.network_fee == 3_000
    back = pricer(fees=fees).price(
        TUSD_NEAR, TUSD_BASE, 100_000_000, USD, NATIVES, slippage_bps=50, urgency=Fraction(1), now=NOW
    )
    # BASE destination leg: 1 gas x 1 gwei = $3e-6 = 3 units; the NEAR source leg's 1 yocto rounds that up to 4.
    assert back.network_fee == 4


def test_amount_too_small_to_cover_fees() -> None:
    fees = FeePolicy(0, {Chain.BASE: LegGas(250_000, 200_000, 10**9), Chain.NEAR: LegGas(0, 0, 0)})
    # 250k gas x 1 gwei = 2.5e14 wei = $0.75, more than 0.5 TUSD.
    with pytest.raises(FailedPrecondition) as err:
        pricer(fees=fees).price(
            TUSD_BASE, TUSD_NEAR, 500_000, USD, NATIVES, slippage_bps=50, urgency=Fraction(1), now=NOW
        )
    assert err.value.reason == "AMOUNT_TOO_SMALL"
    assert err.value.metadata["network_fee"] == "750000"


@pytest.mark.parametrize("bps", [5_001, 10_000, 2**32 - 1])
def test_slippage_bound(bps: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        pricer().slippage(bps)
    assert err.value.field == "slippage_bps"


def test_slippage_and_urgency_defaults() -> None:
    p = Pricer(POLICY, NO_GAS, default_slippage_bps=75, default_urgency=2.0)
    assert p.slippage(0) == 75
    assert p.slippage(5_000) == 5_000
    assert p.urgency(0) == 2
    assert p.urgency(1.1) == Fraction(11, 10)


@pytest.mark.parametrize("value", [0.49, 4.01, -1.0, float("nan"), float("inf")])
def test_urgency_bound(value: float) -> None:
    with pytest.raises(InvalidArgument) as err:
        pricer().urgency(value)
    assert err.value.field == "urgency"


def test_amounts_are_ordered_for_any_amount_and_urgency() -> None:
    rng = random.Random(7)
    fees = FeePolicy(
        protocol_fee_bps=25,
        gas={Chain.BASE: LegGas(250_000, 200_000, 10_000_000), Chain.NEAR: LegGas(60 * 10**12, 60 * 10**12, 10**8)},
    )
    p = pricer(fees=fees)
    pairs = [(TUSD_BASE, NEAR), (NEAR, TUSD_BASE), (ETH, TUSD_NEAR), (TUSD_NEAR, ETH), (TUSD_BASE, TUSD_NEAR)]
    for _ in range(500):
        src, dst = rng.choice(pairs)
        amount = rng.randrange(10**src.decimals // 10, 10**src.decimals * 10**6)
        urgency = Fraction(rng.randrange(50, 401), 100)
        slippage = rng.randrange(0, 5_001)
        q = p.price(src, dst, amount, USD, NATIVES, slippage_bps=slippage, urgency=urgency, now=NOW)
        a = q.auction
        assert a.start_amount >= a.current_amount >= a.end_amount >= q.min_received > 0
        market = market_amount(amount, src, dst, USD[src.symbol], USD[dst.symbol])
        # What the receiver gets never exceeds the exact value of the formulas.
        assert a.end_amount <= market * (10_000 - POLICY.discount_bps) / 10_000 - q.protocol_fee - q.network_fee
        assert (
            a.start_amount <= market * (10_000 + POLICY.premium_bps / urgency) / 10_000 - q.protocol_fee - q.network_fee
        )
        assert q.protocol_fee >= market * 25 / 10_000


@settings(max_examples=400, deadline=None)
@given(
    pair=st.sampled_from([(TUSD_BASE, NEAR), (NEAR, TUSD_BASE), (ETH, TUSD_NEAR), (TUSD_NEAR, ETH)]),
    amount=st.integers(1, 10**30),
    prices=st.tuples(*[st.decimals(Decimal("0.0001"), Decimal(100_000), places=4)] * 3),
    urgency=st.fractions(Fraction(1, 2), Fraction(4), max_denominator=100),
    policy=st.builds(AuctionPolicy, st.integers(0, 5_000), st.integers(0, 9_999), st.integers(1, 600)),
    fee_bps=st.integers(0, 9_999),
    slippage=st.integers(0, 5_000),
)
def test_the_integer_pricing_is_the_exact_formulas(
    pair: tuple[Token, Token],
    amount: int,
    prices: tuple[Decimal, Decimal, Decimal],
    urgency: Fraction,
    policy: AuctionPolicy,
    fee_bps: int,
    slippage: int,
) -> None:
    """Pricer.price works in integers with a per-pair cache; its every amount is the module's Fraction formula."""
    src, dst = pair
    usd = dict(zip(("TUSD", "ETH", "NEAR"), prices, strict=True))
    fees = FeePolicy(
        fee_bps, {Chain.BASE: LegGas(250_000, 200_000, 10**7), Chain.NEAR: LegGas(6 * 10**13, 6 * 10**13, 10**8)}
    )
    market = market_amount(amount, src, dst, usd[src.symbol], usd[dst.symbol])
    gross = gross_auction(market, policy, urgency, NOW)
    legs = [
        (fees.gas[src.chain].src_leg * fees.gas[src.chain].price, NATIVES[src.chain], usd[NATIVES[src.chain].symbol]),
        (fees.gas[dst.chain].dst_leg * fees.gas[dst.chain].price, NATIVES[dst.chain], usd[NATIVES[dst.chain].symbol]),
    ]
    total = protocol_fee(market, fee_bps) + network_fee(legs, dst, usd[dst.symbol])
    floor = min_received(gross.end_amount - total, slippage)
    p = pricer(policy, fees)
    if floor <= 0:
        with pytest.raises(FailedPrecondition):
            p.price(src, dst, amount, usd, NATIVES, slippage_bps=slippage, urgency=urgency, now=NOW)
        return
    q = p.price(src, dst, amount, usd, NATIVES, slippage_bps=slippage, urgency=urgency, now=NOW)
    assert q.market_amount == math.floor(market)
    assert q.market_rate == market_rate(src, dst, usd[src.symbol], usd[dst.symbol])
    assert q.protocol_fee == protocol_fee(market, fee_bps)
    assert q.network_fee == network_fee(legs, dst, usd[dst.symbol])
    assert q.auction == Auction(
        gross.start_amount - total, gross.end_amount - total, NOW, gross.duration_s, gross.current_amount - total
    )
    assert q.min_received == floor
